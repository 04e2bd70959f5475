"""The embedded model's tokenizer: single-id specials, one token per digit, ChatML template, round trip."""

import pytest

from rlsys.bootstrap.corpus import pretrain_documents
from rlsys.bootstrap.recipes import Recipe
from rlsys.bootstrap.tokenizer import END_OF_TEXT, IM_END, IM_START, train_tokenizer


@pytest.fixture(scope="module")
def tok():
    docs = pretrain_documents(Recipe(pretrain_problems=300, pretrain_fact_sheets=100), seed=0)
    return train_tokenizer(docs, vocab_size=400)


def test_vocabulary_size_and_eos_pad(tok):
    assert len(tok) == 400
    assert tok.eos_token == IM_END
    assert tok.pad_token == END_OF_TEXT


@pytest.mark.parametrize("special", [IM_START, IM_END, END_OF_TEXT])
def test_special_tokens_are_single_ids(tok, special):
    ids = tok(f"hi{special}there", add_special_tokens=False)["input_ids"]
    assert tok.convert_tokens_to_ids(special) in ids
    assert tok.convert_ids_to_tokens(ids).count(special) == 1


def test_every_digit_is_its_own_token(tok):
    tokens = tok.convert_ids_to_tokens(tok("x = 120 + 3457", add_special_tokens=False)["input_ids"])
    digits = [t for t in tokens if any(c.isdigit() for c in t)]
    assert digits == list("1203457")


@pytest.mark.parametrize(
    "text",
    [
        "Tom has 12 apples. How many are left?\n12 - 5 = 7\n#### 7",
        "  spaces\tand\nnew lines ",
        "ünïcödé ✓ 42",
    ],
)
def test_round_trip(tok, text):
    assert tok.decode(tok(text, add_special_tokens=False)["input_ids"]) == text


def test_chat_template_renders_chatml(tok):
    messages = [{"role": "user", "content": "Start with 2. Add 3. What is the result?"}]
    prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    assert (
        prompt
        == "<|im_start|>user\nStart with 2. Add 3. What is the result?<|im_end|>\n<|im_start|>assistant\n"
    )
    full = tok.apply_chat_template([*messages, {"role": "assistant", "content": "#### 5"}], tokenize=False)
    assert full.endswith("<|im_start|>assistant\n#### 5<|im_end|>\n")
    ids = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=True)["input_ids"]
    assert ids[0] == tok.convert_tokens_to_ids(IM_START)
    assert tok.decode(ids) == prompt


def test_save_and_reload_keeps_template_and_eos(tok, tmp_path):
    from transformers import AutoTokenizer

    tok.save_pretrained(tmp_path)
    reloaded = AutoTokenizer.from_pretrained(tmp_path)
    messages = [{"role": "user", "content": "Take the number 9. Times 2. What number do you get?"}]
    assert reloaded.eos_token == IM_END
    assert reloaded.apply_chat_template(messages, add_generation_prompt=True, tokenize=False) == (
        tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    )
