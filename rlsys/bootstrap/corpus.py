"""Training text for the embedded model: plain documents to pretrain on, chat conversations for SFT, for
the recipe's task family.

Each family's text comes from its task's own splits (``pretrain`` and ``sft``), so no RL or eval question
is ever trained on. Every family's SFT mix leaves RL headroom the same way: a ``recipe.bare_share`` of the
answers skips what makes an answer reliable (the steps of a word problem, the lines of a function, the
tool), so the model starts out often choosing the shortcut, and RL can teach it the better habit.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

from rlsys import tools
from rlsys.bootstrap.recipes import Recipe
from rlsys.tasks import arithmetic, code, tool_arithmetic
from rlsys.tasks.arithmetic import bare_solution, chat_messages, problems, worked_solution

Conversation = list[dict[str, str]]


@dataclass(frozen=True)
class Family:
    """A task family's training text, each a function of (recipe, seed), and the modules that write it (their
    source is part of the build's cache key)."""

    documents: Callable[[Recipe, int], list[str]]
    conversations: Callable[[Recipe, int], list[Conversation]]
    modules: tuple[ModuleType, ...]


def pretrain_documents(recipe: Recipe, seed: int) -> list[str]:
    """The pretraining documents of the recipe's family."""
    return _FAMILIES[recipe.family].documents(recipe, seed)


def sft_conversations(recipe: Recipe, seed: int) -> list[Conversation]:
    """The SFT conversations of the recipe's family."""
    return _FAMILIES[recipe.family].conversations(recipe, seed)


def family_modules(recipe: Recipe) -> tuple[ModuleType, ...]:
    """The modules whose code writes the recipe's training text."""
    return _FAMILIES[recipe.family].modules


def arithmetic_documents(recipe: Recipe, seed: int) -> list[str]:
    """Shuffled plain-text documents: worked problems (question, then solution) and arithmetic fact sheets.

    Fact sheets are lines of ``a op b = c`` on the operand ranges the task uses; they teach the
    single-step arithmetic that every worked solution is made of, in far fewer tokens than whole problems.
    """
    rng = random.Random(f"pretrain-documents:{seed}")
    docs = [
        f"{p.question}\n{worked_solution(p)}" for p in problems("pretrain", recipe.pretrain_problems, seed)
    ]
    docs += [_fact_sheet(rng) for _ in range(recipe.pretrain_fact_sheets)]
    rng.shuffle(docs)
    return docs


def arithmetic_conversations(recipe: Recipe, seed: int) -> list[list[dict[str, str]]]:
    """``recipe.sft_examples`` chat conversations (user question, assistant answer) from the SFT split.

    A ``recipe.bare_share`` of the answers is a bare ``#### N`` without steps. The model then answers some
    questions without working them out and is often wrong there: the headroom RL can win back by
    learning to write the steps.
    """
    rng = random.Random(f"sft-conversations:{seed}")
    conversations = []
    for p in problems("sft", recipe.sft_examples, seed):
        answer = bare_solution(p) if rng.random() < recipe.bare_share else worked_solution(p)
        conversations.append([*chat_messages(p), {"role": "assistant", "content": answer}])
    return conversations


def _fact_sheet(rng: random.Random, lines: int = 8) -> str:
    """A few lines of single-operation facts, each operator on the operand ranges the task draws from."""
    facts = []
    for _ in range(lines):
        op = rng.choice("+-*/")
        if op == "+":
            a, b = rng.randint(0, 87), rng.randint(1, 12)
            facts.append(f"{a} + {b} = {a + b}")
        elif op == "-":
            b = rng.randint(1, 12)
            a = rng.randint(b, 99)
            facts.append(f"{a} - {b} = {a - b}")
        elif op == "*":
            b = rng.randint(2, 4)
            a = rng.randint(1, 99 // b)
            facts.append(f"{a} * {b} = {a * b}")
        else:
            b = rng.randint(2, 5)
            c = rng.randint(1, 99 // b)
            facts.append(f"{b * c} / {b} = {c}")
    return "\n".join(facts)


def code_documents(recipe: Recipe, seed: int) -> list[str]:
    """Programming problems followed by a solution, worked (a line per stage) or compact (one nested
    `return`) in equal shares: the model reads both styles before SFT picks its habit."""
    rng = random.Random(f"code-documents:{seed}")
    return [
        f"{p.question}\n{rng.choice((code.worked_solution, code.compact_solution))(p)}"
        for p in code.problems("pretrain", recipe.pretrain_problems, seed)
    ]


def code_conversations(recipe: Recipe, seed: int) -> list[Conversation]:
    """``recipe.sft_examples`` problems answered with a function; a ``recipe.bare_share`` of the answers
    compact, the rest worked. Nesting the stages backwards is harder than writing them one per line, so the
    compact answers are more often wrong: the headroom RL can win back."""
    rng = random.Random(f"code-conversations:{seed}")
    conversations = []
    for p in code.problems("sft", recipe.sft_examples, seed):
        answer = code.compact_solution(p) if rng.random() < recipe.bare_share else code.worked_solution(p)
        conversations.append([*code.chat_messages(p), {"role": "assistant", "content": answer}])
    return conversations


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


_FAMILIES: dict[str, Family] = {
    "arithmetic": Family(arithmetic_documents, arithmetic_conversations, (arithmetic,)),
    "code": Family(code_documents, code_conversations, (code,)),
    "tools": Family(tool_documents, tool_conversations, (tool_arithmetic, tools)),
}
