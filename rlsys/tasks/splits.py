"""Disjoint, deterministic splits of a generated task family.

An item belongs to the split its key hashes to (a stable SHA-256 bucket out of 100), so no held-out or RL item
can ever appear in pretraining or SFT data, whatever `n` each caller asks for. Generation is deterministic for
`(family, split, n, seed)`, and a larger `n` extends a smaller one.

The arithmetic family draws its splits by the same rule in code of its own (`rlsys.tasks.arithmetic`): that
module's source is part of the default embedded model's cache key (`rlsys.bootstrap.families`), and moving
the rule here would rebuild every cached default model without changing a single problem.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Mapping
from typing import Literal, TypeVar

T = TypeVar("T")

Split = Literal["pretrain", "sft", "rl", "eval"]

# Share of the item space (out of 100 hash buckets) each split owns. Pretraining and SFT need the most text;
# eval needs only a few thousand distinct items, RL a few tens of thousands.
SPLIT_BUCKETS: dict[str, range] = {
    "pretrain": range(0, 40),
    "sft": range(40, 70),
    "rl": range(70, 90),
    "eval": range(90, 100),
}


def bucket_split(key: str, buckets: Mapping[str, range] = SPLIT_BUCKETS) -> str:
    """The split whose buckets hold `key`'s stable hash (independent of seed and n)."""
    bucket = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big") % 100
    for split, owned in buckets.items():
        if bucket in owned:
            return split
    raise AssertionError(f"bucket {bucket} belongs to no split")


def draw_split(
    family: str,
    split: str,
    n: int,
    seed: int,
    *,
    buckets: Mapping[str, range] = SPLIT_BUCKETS,
    make: Callable[[random.Random], T],
    key: Callable[[T], str],
    split_key: Callable[[T], str] | None = None,
) -> list[T]:
    """`n` items of `split` with distinct keys, drawn by `make` from one RNG stream per (family, split, seed)
    and kept when their `split_key` (default: their key) hashes to `split`.

    A separate split key keeps variants of one item together: differently worded problems asking for the
    same function all belong to that function's split."""
    if split not in buckets:
        raise ValueError(f"unknown split {split!r}; expected one of {sorted(buckets)}")
    rng = random.Random(f"{family}:{split}:{seed}")
    seen: set[str] = set()
    out: list[T] = []
    # The item space is far larger than any n we use; the bound only turns a bug into an error.
    for _ in range(200 * n + 1000):
        if len(out) == n:
            return out
        item = make(rng)
        item_key = key(item)
        home = item_key if split_key is None else split_key(item)
        if item_key in seen or bucket_split(home, buckets) != split:
            continue
        seen.add(item_key)
        out.append(item)
    if len(out) == n:
        return out
    raise RuntimeError(f"could only generate {len(out)} of {n} distinct {split!r} {family} items")
