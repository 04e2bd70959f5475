"""The order training sees its prompts in, and the seed each prompt is sampled with.

The order is a pure function of (seed, step): a resumed run sees exactly the prompts an uninterrupted run
would have, with no iterator state to save. Choosing a step's prompts costs the same for a million rows as
for a thousand: each epoch's order is a keyed permutation of the row indices, computed index by index.
"""

import hashlib
from collections.abc import Sequence
from typing import TypeVar

from rlsys.types import Prompt

_FEISTEL_ROUNDS = 4
T = TypeVar("T")
_MAX_ROUNDS = 16  # dynamic sampling's rounds per step at most (algorithm.dynamic_sampling_rounds)


def permuted_index(position: int, size: int, key: int) -> int:
    """Where `position` goes in a pseudo-random permutation of range(size) keyed by `key`.

    A balanced Feistel network over the smallest even number of bits that holds `size`, keyed by blake2b;
    values outside range(size) walk the cycle until they land inside ("cycle walking"), so the map stays a
    bijection on range(size). Each call costs a few hashes, whatever `size` is.
    """
    if not 0 <= position < size:
        raise IndexError(f"position {position} outside range({size})")
    half_bits = max(1, (max(size - 1, 1).bit_length() + 1) // 2)
    mask = (1 << half_bits) - 1
    value = position
    while True:
        left, right = value >> half_bits, value & mask
        for round_ in range(_FEISTEL_ROUNDS):
            digest = hashlib.blake2b(f"{key}:{round_}:{right}".encode(), digest_size=8).digest()
            left, right = right, left ^ (int.from_bytes(digest, "big") & mask)
        value = (left << half_bits) | right
        if value < size:
            return value


def step_batch(prompts: Sequence[T], step: int, batch_size: int, seed: int) -> list[T]:
    """The prompts (or SFT conversations) of training step `step`: consecutive slices of a per-epoch
    permutation of `prompts`."""
    picked = []
    for position in range(step * batch_size, (step + 1) * batch_size):
        epoch, offset = divmod(position, len(prompts))
        picked.append(prompts[permuted_index(offset, len(prompts), seed * 1_000_003 + epoch)])
    return picked


def request_seed(seed: int, step: int, index: int) -> int:
    """The sampling seed of prompt `index` at `step`: the same rollout whichever engine serves it."""
    return (seed * 1_000_003 + step * 10_007 + index) % (2**31 - 1)


def extra_batch(
    prompts: Sequence[Prompt], step: int, round_: int, batch_size: int, seed: int
) -> list[Prompt]:
    """The prompts of round `round_` (from 1) of dynamic sampling at step `step`: a stream of its own, so
    topping a step up never moves the prompts of a later step, and a resumed run draws the same ones."""
    picked = []
    start = (step * _MAX_ROUNDS + round_ - 1) * batch_size
    for position in range(start, start + batch_size):
        epoch, offset = divmod(position, len(prompts))
        picked.append(prompts[permuted_index(offset, len(prompts), seed * 1_000_003 + 7_777_777 + epoch)])
    return picked
