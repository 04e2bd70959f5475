"""`verify` and `verify_batch`: extract, decide what needs no sympy in-process, else ask a killable worker."""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from verifiers.math.choice import as_option_verdict, gold_choice, judge_choice
from verifiers.math.extract import extract_answer, gold_answer
from verifiers.math.fastpath import judge_fast
from verifiers.math.pool import WorkerPool
from verifiers.math.verdict import MathVerdict

# An extracted answer longer than this is not a final answer but a runaway generation; it is
# judged incorrect without parsing (parsing it could only burn the time limit).
MAX_ANSWER_CHARS = 2000

_pool: WorkerPool | None = None
_pool_pid = 0
_pool_lock = threading.Lock()


def default_workers() -> int:
    """Worker processes used when the caller does not say: the usable CPUs, at most 4."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else 1))


def verify(gold: str, response: str, timeout_s: float = 5.0) -> MathVerdict:
    """Judge whether the final answer in `response` equals the `gold` answer.

    `gold` is an answer (`"42"`, `"\\frac{1}{2}"`) or a full solution with a `\\boxed{}` or `####`
    answer. Parsing and comparison run in a worker process killed after `timeout_s` seconds
    (the verdict is then `timeout`); plain numbers, clock times and choice letters are decided
    in-process. The verdict's `rule` says which comparison decided.
    """
    return verify_batch([(gold, response)], timeout_s=timeout_s)[0]


def verify_batch(
    pairs: Sequence[tuple[str, str]], timeout_s: float = 5.0, workers: int | None = None
) -> list[MathVerdict]:
    """Judge many `(gold, response)` pairs; verdicts come back in input order.

    Pairs that need sympy are spread over `workers` worker processes (default `default_workers()`),
    each with its own `timeout_s` limit.
    """
    if timeout_s <= 0:
        raise ValueError(f"timeout_s must be positive, got {timeout_s}")
    verdicts: list[MathVerdict | None] = []
    pending: list[_Pending] = []
    for index, (gold, response) in enumerate(pairs):
        start = time.perf_counter()
        decided = _decide_locally(gold, response)
        if isinstance(decided, MathVerdict):
            decided = replace(decided, elapsed_s=time.perf_counter() - start)
        else:
            pending.append(replace(decided, index=index, spent_s=time.perf_counter() - start))
            decided = None
        verdicts.append(decided)
    if pending:
        n_workers = min(workers or default_workers(), len(pending))
        pool = _shared_pool(n_workers)
        if n_workers == 1:
            results = [_judge_in_worker(pool, item, timeout_s) for item in pending]
        else:
            with ThreadPoolExecutor(n_workers) as executor:
                results = list(executor.map(lambda item: _judge_in_worker(pool, item, timeout_s), pending))
        for item, verdict in zip(pending, results, strict=True):
            verdicts[item.index] = verdict
    return verdicts  # type: ignore[return-value]  # every slot is filled above


def shutdown() -> None:
    """Stop the shared worker processes (they restart on the next call that needs them)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


@dataclass(frozen=True)
class _Pending:
    """A pair for a worker: the gold's answer (or the gold option's text) and the extracted answer."""

    gold: str
    extracted: str
    option: bool = False
    index: int = 0
    spent_s: float = 0.0


def _decide_locally(gold: str, response: str) -> MathVerdict | _Pending:
    """A verdict needing no worker (no answer, oversized answer, a choice letter, plain numbers,
    clock times), else the pair a worker must judge."""
    extracted = extract_answer(response)
    choice = gold_choice(gold)
    if choice is not None:
        decided = judge_choice(choice, response, extracted)
        if decided is not None:
            return decided
    gold_text = choice.option if choice is not None else gold_answer(gold)
    if extracted is None:
        return MathVerdict("no_answer", detail="no final answer found in the response")
    if len(extracted) > MAX_ANSWER_CHARS:
        detail = f"extracted answer has {len(extracted)} characters (limit {MAX_ANSWER_CHARS})"
        return MathVerdict("incorrect", extracted=extracted[:200], detail=detail)
    fast = judge_fast(gold_text, extracted)
    if fast is not None:
        return as_option_verdict(fast) if choice is not None else fast
    return _Pending(gold_text, extracted, option=choice is not None)


def _judge_in_worker(pool: WorkerPool, item: _Pending, timeout_s: float) -> MathVerdict:
    start = time.perf_counter()
    outcome = pool.run((item.gold, item.extracted), timeout_s)
    elapsed = item.spent_s + time.perf_counter() - start
    if outcome.kind == "timeout":
        return MathVerdict("timeout", item.extracted, elapsed_s=elapsed, detail=outcome.detail)
    if outcome.kind == "crashed":
        return MathVerdict("error", item.extracted, elapsed_s=elapsed, detail=outcome.detail)
    kind, payload = outcome.reply
    if kind == "error":
        return MathVerdict("error", item.extracted, elapsed_s=elapsed, detail=payload)
    verdict = replace(payload, extracted=item.extracted, elapsed_s=elapsed)
    return as_option_verdict(verdict) if item.option else verdict


def _shared_pool(size: int) -> WorkerPool:
    """The process-wide pool, grown to `size`; a forked child gets its own (pipes cannot be shared)."""
    global _pool, _pool_pid
    with _pool_lock:
        if _pool is None or _pool_pid != os.getpid():
            _pool, _pool_pid = WorkerPool(size), os.getpid()
        else:
            _pool.grow(size)
        return _pool


atexit.register(shutdown)
