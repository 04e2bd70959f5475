"""Training text of the `code` family (`rlsys.tasks.code`): programming problems to pretrain on, answered ones
for SFT, each from the task's own splits.

As in every family, a ``recipe.bare_share`` of the SFT answers skips what makes an answer reliable, here the
lines of the function: the model starts out often choosing the shortcut, and RL can teach it the better habit.
"""

from __future__ import annotations

import random

from rlsys.bootstrap.recipes import Recipe
from rlsys.tasks import code

Conversation = list[dict[str, str]]


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
