"""The embedded model's task families: what each pretrains and fine-tunes on, how its SFT conversations are
encoded, the special tokens its tokenizer adds, and the modules whose source is part of its cache key.

A recipe's cache key (`rlsys.bootstrap.build.recipe_key`) hashes only its own family's modules: adding or
editing one family's code rebuilds that family's models and leaves every other family's cached models valid
(the default arithmetic model keeps its key while the code and tool families grow beside it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from transformers import PreTrainedTokenizerFast

from rlsys import schedule, tools
from rlsys.bootstrap import code_corpus, corpus, fact_corpus, tokenizer, tool_corpus, train
from rlsys.bootstrap.recipes import Recipe
from rlsys.sft import packing
from rlsys.sft import tokens as sft_tokens
from rlsys.sft.tokens import Example, encode_chat
from rlsys.tasks import arithmetic, code, facts, splits, tool_arithmetic

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class Family:
    """A task family's training text, each a function of (recipe, seed), and how its model is built."""

    documents: Callable[[Recipe, int], list[str]]
    conversations: Callable[[Recipe, int], list[Conversation]]
    modules: tuple[ModuleType, ...]
    """The code that writes the family's text, tokenizes it and trains on it, in hashing order."""
    encode: Callable[[PreTrainedTokenizerFast, Conversation], Example] = encode_chat
    special_tokens: tuple[str, ...] = ()
    """Special tokens beyond the chat's (the tool-call markers of the `tools` family)."""

    def train_tokenizer(self, docs: list[str], vocab_size: int) -> PreTrainedTokenizerFast:
        """The BPE tokenizer of `rlsys.bootstrap.tokenizer` over ``docs``, the family's special tokens added
        after its ``vocab_size`` (each one id, never split)."""
        tok = tokenizer.train_tokenizer(docs, vocab_size)
        if self.special_tokens:
            tok.add_special_tokens({"additional_special_tokens": list(self.special_tokens)})
        return tok


# The code every family is built with: the tokenizer, the training loops, and the SFT encoding, batching, loss
# and schedule they share with `rlsys sft`.
BUILD_MODULES: tuple[ModuleType, ...] = (tokenizer, train, schedule, sft_tokens, packing)

FAMILIES: dict[str, Family] = {
    "arithmetic": Family(
        corpus.arithmetic_documents, corpus.arithmetic_conversations, (arithmetic, corpus, *BUILD_MODULES)
    ),
    "code": Family(
        code_corpus.code_documents,
        code_corpus.code_conversations,
        (code, splits, code_corpus, *BUILD_MODULES),
    ),
    "tools": Family(
        tool_corpus.tool_documents,
        tool_corpus.tool_conversations,
        (tool_arithmetic, splits, tools, tool_corpus, *BUILD_MODULES),
        encode=tool_corpus.encode_tool_conversation,
        special_tokens=(tools.TOOL_CALL_START, tools.TOOL_CALL_END),
    ),
    "facts": Family(
        fact_corpus.fact_documents,
        fact_corpus.fact_conversations,
        (facts, splits, fact_corpus, *BUILD_MODULES),
    ),
}
