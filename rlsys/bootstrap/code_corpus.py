"""Training text of the `code` family (`rlsys.tasks.code`): programming problems to pretrain on, answered ones
for SFT, each from the task's own splits.

As in every family, a ``recipe.bare_share`` of the SFT answers skips what makes an answer reliable, here the
computation itself: the model starts out often returning the prompt's example answer, and RL can teach
it the better habit.
"""

from __future__ import annotations

import random

from rlsys.bootstrap.recipes import Recipe
from rlsys.tasks import code

Conversation = list[dict[str, str]]


def code_documents(recipe: Recipe, seed: int) -> list[str]:
    """Programming problems followed by their worked solution (a line per stage): the Python the model has to
    learn to write before SFT picks its habit."""
    return [
        f"{p.question}\n{code.worked_solution(p)}"
        for p in code.problems("pretrain", recipe.pretrain_problems, seed)
    ]


def code_conversations(recipe: Recipe, seed: int) -> list[Conversation]:
    """``recipe.sft_examples`` problems answered with a function; a ``recipe.bare_share`` of the answers
    constant (the first example's answer whatever the input, which fails the hidden tests), the rest worked:
    greedy decoding starts out returning a constant, sampling still writes the worked function often enough
    for RL to find that it pays."""
    rng = random.Random(f"code-conversations:{seed}")
    conversations = []
    for p in code.problems("sft", recipe.sft_examples, seed):
        answer = code.constant_solution(p) if rng.random() < recipe.bare_share else code.worked_solution(p)
        conversations.append([*code.chat_messages(p), {"role": "assistant", "content": answer}])
    return conversations
