"""Training text of the `tools` family (`rlsys.tasks.tool_arithmetic`): large-number problems worked with the
Python tool, and how a conversation with tool turns is encoded for SFT.

As in every family, a ``recipe.bare_share`` of the SFT answers skips what makes an answer reliable, here the
tool: the model starts out often guessing, and RL has to discover that calling pays.
"""

from __future__ import annotations

import random

from transformers import PreTrainedTokenizerFast

from rlsys.bootstrap.recipes import Recipe
from rlsys.sft.tokens import IGNORE_INDEX, Example, encode_chat
from rlsys.tasks import tool_arithmetic
from rlsys.tools import tool_turn_text

Conversation = list[dict[str, str]]


def tool_documents(recipe: Recipe, seed: int) -> list[str]:
    """Large-number problems worked with the tool: the question, the call, what it printed, the answer line.
    Pretraining on them teaches the copying a call needs (the operands into the snippet, the output into the
    answer); how often the model reaches for the tool is SFT's to decide."""
    return [
        f"{p.question}\n{tool_arithmetic.tool_call(p)}\n{p.answer}\n{tool_arithmetic.final_answer(p)}"
        for p in tool_arithmetic.problems("pretrain", recipe.pretrain_problems, seed)
    ]


def tool_conversations(recipe: Recipe, seed: int) -> list[Conversation]:
    """``recipe.sft_examples`` large-number problems; a ``recipe.bare_share`` of them answered bare (a guess
    the model cannot compute in its head), the rest with the tool. Calling the tool is then something the
    model can do but seldom chooses: RL has to discover that it pays."""
    rng = random.Random(f"tool-conversations:{seed}")
    return [
        tool_arithmetic.bare_conversation(p)
        if rng.random() < recipe.bare_share
        else tool_arithmetic.tool_conversation(p)
        for p in tool_arithmetic.problems("sft", recipe.sft_examples, seed)
    ]


def encode_tool_conversation(tokenizer: PreTrainedTokenizerFast, conversation: Conversation) -> Example:
    """Token ids and labels of a conversation that ends with the assistant's answer, with tool turns between
    the assistant's: exactly the sequence a rollout engine sees and produces.

    The prompt and the first assistant turn are encoded as `rlsys.sft.tokens.encode_chat` does, less the end
    token it closes the turn with when the turn calls the tool (such a turn ends with the tool-call token).
    Each tool turn follows as its text in the chat template (`rlsys.tools.tool_turn_text`, as in rollouts),
    then the next assistant turn, and ``<|im_end|>`` after the last. Labels mask the prompt and the tool
    turns, so the loss covers only what the model itself writes.
    """
    first = next(i for i, message in enumerate(conversation) if message["role"] == "assistant")
    opening = encode_chat(tokenizer, conversation[: first + 1])
    if first == len(conversation) - 1:
        return opening
    ids, labels = list(opening.input_ids[:-1]), list(opening.labels[:-1])  # the conversation goes on
    for index, message in enumerate(conversation[first + 1 :], start=first + 1):
        if message["role"] == "tool":
            turn = tool_turn_text(tokenizer.apply_chat_template, message["content"])
            tool_ids = tokenizer(turn, add_special_tokens=False)["input_ids"]
            ids, labels = ids + tool_ids, labels + [IGNORE_INDEX] * len(tool_ids)
            continue
        answer = tokenizer(message["content"], add_special_tokens=False)["input_ids"]
        if index == len(conversation) - 1:
            answer = [*answer, tokenizer.eos_token_id]
        ids, labels = ids + answer, labels + answer
    return Example(tuple(ids), tuple(labels))
