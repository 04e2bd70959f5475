"""Benchmark: `verifiers.math` against `math-verify` on the same labelled public cases.

Run locally (about a minute on 2 cores):

    python bench/math_verifier.py [--cases bench/data/math_cases.jsonl] [--workers 2] [--repeat 3]

Each case in the data file is `{"gold", "response", "expected", "source"}`, with `source` naming
the public test suite it was taken from (and `note` where a label is disputed or corrected).
Cases marked `"set": "extended"` were added after the original comparison; accuracy is reported
for the original set and the extended set separately, and the last line covers the original set.
Both verifiers run in this process on the same cases: ours through `verify_batch` (persistent
worker pool, in-process fast path), math-verify through its documented
`verify(parse(gold), parse(response))`. Throughput is measured after one warm-up pass, over
`--repeat` passes. A separate set of adversarial inputs checks that ours never hangs.
The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from verifiers.math import verify_batch

_DEFAULT_CASES = Path(__file__).parent / "data" / "math_cases.jsonl"
# Inputs that hang or exhaust naive verifiers; ours must answer each within its limit.
_ADVERSARIAL = [
    ("1", "The answer is $10**10**10$."),
    ("1", "\\boxed{10^{10^{10^{10}}}}"),
    ("2", "\\boxed{" + "{" * 5000 + "1" + "}" * 5000 + "}"),
    ("2", "\\boxed{" + "\\frac{1}{" * 300 + "2" + "}" * 300 + "}"),
    ("3", "3 " * 500_000 + "\nThe answer is $\\sqrt{" + "x+" * 2000 + "1}$"),
    ("x", "\\boxed{(x+1)^{100000} - (x+1)^{100000}}"),
    ("0", "\\boxed{\\sin(10^{10^{5}})}"),
]


def _load(path: Path) -> list[dict]:
    with path.open() as f:
        return [json.loads(line) for line in f if line.strip()]


def _run_ours(cases: list[dict], workers: int, repeat: int) -> tuple[list[str], float]:
    pairs = [(c["gold"], c["response"]) for c in cases]
    verdicts = verify_batch(pairs, workers=workers)  # warm-up: starts the worker pool
    start = time.perf_counter()
    for _ in range(repeat):
        verdicts = verify_batch(pairs, workers=workers)
    return [v.status for v in verdicts], len(pairs) * repeat / (time.perf_counter() - start)


def _run_math_verify(cases: list[dict], repeat: int) -> tuple[list[bool], float]:
    from math_verify import parse, verify

    def judge(case: dict) -> bool:
        return bool(verify(parse(case["gold"]), parse(case["response"])))

    results = [judge(c) for c in cases]  # warm-up
    start = time.perf_counter()
    for _ in range(repeat):
        results = [judge(c) for c in cases]
    return results, len(cases) * repeat / (time.perf_counter() - start)


def _score(cases: list[dict], predicted: list[bool]) -> dict[str, float]:
    fp = sum(p and not c["expected"] for c, p in zip(cases, predicted, strict=True))
    fn = sum(c["expected"] and not p for c, p in zip(cases, predicted, strict=True))
    return {"accuracy": 1 - (fp + fn) / len(cases), "fp": fp, "fn": fn}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=Path, default=_DEFAULT_CASES)
    parser.add_argument(
        "--workers", type=int, default=None, help="worker processes (default: usable CPUs, max 4)"
    )
    parser.add_argument("--repeat", type=int, default=3, help="timed passes over the cases")
    parser.add_argument(
        "--show-errors", action="store_true", help="print every case either verifier gets wrong"
    )
    args = parser.parse_args()

    all_cases = _load(args.cases)
    all_statuses, ours_rate = _run_ours(all_cases, args.workers, args.repeat)
    all_theirs, theirs_rate = _run_math_verify(all_cases, args.repeat)
    extended = [i for i, c in enumerate(all_cases) if c.get("set") == "extended"]
    if extended:
        ext_cases = [all_cases[i] for i in extended]
        ext_ours = _score(ext_cases, [all_statuses[i] == "correct" for i in extended])
        ext_mv = _score(ext_cases, [all_theirs[i] for i in extended])
        both_ours = _score(all_cases, [s == "correct" for s in all_statuses])
        both_mv = _score(all_cases, all_theirs)
    original = [i for i, c in enumerate(all_cases) if c.get("set") != "extended"]
    cases = [all_cases[i] for i in original]
    statuses = [all_statuses[i] for i in original]
    theirs = [all_theirs[i] for i in original]
    ours = _score(cases, [s == "correct" for s in statuses])
    mv = _score(cases, theirs)
    timeouts = statuses.count("timeout")

    if args.show_errors:
        for case, status, their in zip(all_cases, all_statuses, all_theirs, strict=True):
            ours_wrong = (status == "correct") != case["expected"]
            if ours_wrong or their != case["expected"]:
                who = (
                    "both"
                    if ours_wrong and their != case["expected"]
                    else ("ours" if ours_wrong else "math-verify")
                )
                print(f"[{who} wrong] expected={case['expected']} ours={status} math-verify={their}")
                print(
                    f"   gold={case['gold'][:100]!r}\n"
                    f"   response={case['response'][:160]!r}\n   {case['source']}"
                )

    start = time.perf_counter()
    adversarial = verify_batch(_ADVERSARIAL, timeout_s=2.0, workers=args.workers)
    adversarial_s = time.perf_counter() - start
    print(f"original set: {len(cases)} cases (expected equal: {sum(c['expected'] for c in cases)})")
    print(
        f"ours:        accuracy {ours['accuracy']:.3f}  fp {ours['fp']}  fn {ours['fn']}  "
        f"timeouts {timeouts}  "
        f"{ours_rate:.0f} cases/s"
    )
    print(
        f"math-verify: accuracy {mv['accuracy']:.3f}  fp {mv['fp']}  fn {mv['fn']}  {theirs_rate:.0f} cases/s"
    )
    if extended:
        print(
            f"extended set ({len(extended)} cases): ours accuracy {ext_ours['accuracy']:.3f} "
            f"fp {ext_ours['fp']} fn {ext_ours['fn']}; math-verify accuracy {ext_mv['accuracy']:.3f} "
            f"fp {ext_mv['fp']} fn {ext_mv['fn']}"
        )
        print(
            f"original + extended ({len(all_cases)} cases): ours accuracy {both_ours['accuracy']:.3f}; "
            f"math-verify accuracy {both_mv['accuracy']:.3f}"
        )
    print(f"throughput ratio (all cases): {ours_rate / theirs_rate:.2f}x")
    print(
        f"adversarial ({len(_ADVERSARIAL)} inputs, 2 s limit): "
        f"{[v.status for v in adversarial]} in {adversarial_s:.1f} s total"
    )
    print(
        f"accuracy={ours['accuracy']:.4f} fp={ours['fp']} fn={ours['fn']} timeouts={timeouts} "
        f"cases_per_s={ours_rate:.1f} mathverify_accuracy={mv['accuracy']:.4f} "
        f"mathverify_cases_per_s={theirs_rate:.1f}"
    )


if __name__ == "__main__":
    main()
