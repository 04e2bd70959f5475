"""`verify` and `verify_batch`: extract, try the in-process fast path, else ask a killable worker."""

from __future__ import annotations

import atexit
import os
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

from verifiers.math.extract import extract_answer, gold_answer
from verifiers.math.numeric import decimal_comma, numbers_match, parse_number_literal
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
    (the verdict is then `timeout`); plain numbers on both sides are compared in-process.
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
    pending: list[tuple[int, str, str, float]] = []
    for index, (gold, response) in enumerate(pairs):
        start = time.perf_counter()
        decided, gold_text, extracted = _decide_locally(gold, response)
        if decided is not None:
            decided = replace(decided, elapsed_s=time.perf_counter() - start)
        else:
            pending.append((index, gold_text, extracted, time.perf_counter() - start))
        verdicts.append(decided)
    if pending:
        n_workers = min(workers or default_workers(), len(pending))
        pool = _shared_pool(n_workers)
        if n_workers == 1:
            results = [_judge_in_worker(pool, item, timeout_s) for item in pending]
        else:
            with ThreadPoolExecutor(n_workers) as executor:
                results = list(executor.map(lambda item: _judge_in_worker(pool, item, timeout_s), pending))
        for (index, *_), verdict in zip(pending, results, strict=True):
            verdicts[index] = verdict
    return verdicts  # type: ignore[return-value]  # every slot is filled above


def shutdown() -> None:
    """Stop the shared worker processes (they restart on the next call that needs them)."""
    global _pool
    with _pool_lock:
        pool, _pool = _pool, None
    if pool is not None:
        pool.close()


def _decide_locally(gold: str, response: str) -> tuple[MathVerdict | None, str, str]:
    """A verdict needing no worker (no answer, oversized answer, plain numbers), else the texts to judge."""
    gold_text = gold_answer(gold)
    extracted = extract_answer(response)
    if extracted is None:
        return MathVerdict("no_answer", detail="no final answer found in the response"), gold_text, ""
    if len(extracted) > MAX_ANSWER_CHARS:
        detail = f"extracted answer has {len(extracted)} characters (limit {MAX_ANSWER_CHARS})"
        return MathVerdict("incorrect", extracted=extracted[:200], detail=detail), gold_text, extracted
    gold_number = parse_number_literal(gold_text)
    answer_number = parse_number_literal(extracted)
    # `1,22` against a single number can only be a decimal comma (a list never equals a number).
    if gold_number is None and answer_number is not None:
        gold_number = decimal_comma(gold_text)
    elif answer_number is None and gold_number is not None:
        answer_number = decimal_comma(extracted)
    if gold_number is None or answer_number is None:
        return None, gold_text, extracted
    status = "correct" if numbers_match(gold_number, answer_number) else "incorrect"
    verdict = MathVerdict(status, extracted, str(gold_number), str(answer_number), detail="fast path")
    return verdict, gold_text, extracted


def _judge_in_worker(pool: WorkerPool, item: tuple[int, str, str, float], timeout_s: float) -> MathVerdict:
    _, gold_text, extracted, spent = item
    start = time.perf_counter()
    outcome = pool.run((gold_text, extracted), timeout_s)
    elapsed = spent + time.perf_counter() - start
    if outcome.kind == "timeout":
        return MathVerdict("timeout", extracted, elapsed_s=elapsed, detail=outcome.detail)
    if outcome.kind == "crashed":
        return MathVerdict("error", extracted, elapsed_s=elapsed, detail=outcome.detail)
    kind, payload = outcome.reply
    if kind == "error":
        return MathVerdict("error", extracted, elapsed_s=elapsed, detail=payload)
    status, gold_parsed, answer_parsed, detail = payload
    return MathVerdict(status, extracted, gold_parsed, answer_parsed, elapsed, detail)


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
