"""The embedded model's families: each recipe's key hashes only its own family's code, and the tools
family's SFT conversations train on what the model writes, not on the tool's turns."""

from rlsys.bootstrap.build import recipe_key
from rlsys.bootstrap.families import FAMILIES
from rlsys.bootstrap.recipes import RECIPES
from rlsys.bootstrap.tool_corpus import encode_tool_conversation
from rlsys.sft.tokens import IGNORE_INDEX, encode_chat
from rlsys.tasks import arithmetic, tool_arithmetic
from rlsys.tools import TOOL_CALL_END, TOOL_CALL_START


def test_every_recipe_names_a_family_and_each_has_its_own_key():
    assert {recipe.family for recipe in RECIPES.values()} <= set(FAMILIES)
    assert len({recipe_key(recipe) for recipe in RECIPES.values()}) == len(RECIPES)


def test_the_arithmetic_key_does_not_hash_the_other_families_code():
    modules = FAMILIES["arithmetic"].modules
    assert arithmetic in modules and tool_arithmetic not in modules


def test_a_tool_conversation_trains_on_the_calls_and_the_answer_not_the_tool_output():
    problem = tool_arithmetic.problems("sft", 1, seed=0)[0]
    tok = FAMILIES["tools"].train_tokenizer(
        [f"{problem.question}\n{tool_arithmetic.tool_call(problem)}\n{problem.answer}"] * 20, 300
    )
    example = encode_tool_conversation(tok, tool_arithmetic.tool_conversation(problem))
    ids, labels = example.input_ids, example.labels
    trained = tok.decode([token for token, label in zip(ids, labels, strict=True) if label != IGNORE_INDEX])
    assert trained == f"{tool_arithmetic.tool_call(problem)}{tool_arithmetic.final_answer(problem)}<|im_end|>"
    assert ids.count(tok.convert_tokens_to_ids(TOOL_CALL_START)) == 1
    assert ids.count(tok.convert_tokens_to_ids(TOOL_CALL_END)) == 1
    assert "tool" in tok.decode(ids)  # the tool's turn is in the sequence, masked


def test_a_bare_conversation_encodes_as_a_single_turn_one():
    problem = tool_arithmetic.problems("sft", 1, seed=0)[0]
    tok = FAMILIES["tools"].train_tokenizer([problem.question] * 20, 300)
    conversation = tool_arithmetic.bare_conversation(problem)
    assert encode_tool_conversation(tok, conversation) == encode_chat(tok, conversation)
