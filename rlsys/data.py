"""Prompts for training and evaluation, and the order training sees them in.

The order is a pure function of (seed, step): a resumed run sees exactly the prompts an uninterrupted run
would have, with no iterator state to save.
"""

import random
from collections.abc import Sequence

from rlsys.config import TaskConfig
from rlsys.tasks import arithmetic
from rlsys.types import Prompt


def task_prompts(task: TaskConfig, split: str, n: int) -> list[Prompt]:
    """`n` prompts of the task's `split` ("rl" for training, "eval" for held-out evaluation)."""
    return [
        Prompt(
            id=f"{split}-{index}",
            messages=tuple(arithmetic.chat_messages(problem)),
            gold=str(problem.answer),
            kind="math",
        )
        for index, problem in enumerate(arithmetic.problems(split, n, task.seed))
    ]


def step_batch(prompts: Sequence[Prompt], step: int, batch_size: int, seed: int) -> list[Prompt]:
    """The prompts of training step `step`: consecutive slices of a per-epoch shuffle of `prompts`."""
    picked = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, len(prompts))
        order = list(range(len(prompts)))
        random.Random(seed * 1_000_003 + epoch).shuffle(order)
        picked.append(prompts[order[offset]])
    return picked


def request_seed(seed: int, step: int, index: int) -> int:
    """The sampling seed of prompt `index` at `step`: the same rollout whichever engine serves it."""
    return (seed * 1_000_003 + step * 10_007 + index) % (2**31 - 1)
