"""Training text for the embedded model: plain documents to pretrain on, chat conversations for SFT, for
the recipe's task family.

Each family's text comes from its task's own splits (``pretrain`` and ``sft``), so no RL or eval question
is ever trained on.
"""

from __future__ import annotations

import random

from rlsys.bootstrap.recipes import Recipe
from rlsys.tasks.arithmetic import bare_solution, chat_messages, problems, worked_solution


def pretrain_documents(recipe: Recipe, seed: int) -> list[str]:
    """The pretraining documents of the recipe's family."""
    return _FAMILIES[recipe.family][0](recipe, seed)


def sft_conversations(recipe: Recipe, seed: int) -> list[list[dict[str, str]]]:
    """The SFT conversations of the recipe's family."""
    return _FAMILIES[recipe.family][1](recipe, seed)


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


# Family name -> (pretraining documents, SFT conversations), each a function of (recipe, seed).
_FAMILIES = {"arithmetic": (arithmetic_documents, arithmetic_conversations)}
