"""Benchmark: `verifiers.math` against `math-verify` on the same labelled public cases.

Run locally from the repository root (about two minutes on 2 cores):

    PYTHONPATH=$PWD python bench/math_verifier.py [--cases bench/data/math_cases.jsonl] [--workers 2]
        [--repeat 3] [--heavy 240] [--show-errors]

Each case in the data file is `{"gold", "response", "expected", "source"}`, with `source` naming
the public test suite it was taken from (and `note` where a label is disputed or corrected).
Cases marked `"set": "extended"` were added after the original comparison; accuracy is reported
for the original set and the extended set separately, and the last line covers the original set.
Both verifiers run in this process on the same cases: ours through `verify_batch` (persistent
worker pool, in-process fast path), math-verify through its documented
`verify(parse(gold), parse(response))`. Throughput is measured after one warm-up pass, over
`--repeat` passes. A separate set of adversarial inputs checks that ours never hangs.

Plain numbers never reach sympy (ours decides them in-process), so the public cases flatter the
throughput. A second, sympy-heavy mix (`--heavy` cases, generated with known labels from a fixed
seed, no plain integers) times the path where both verifiers parse and compare symbolically:
factored and expanded polynomials, rational functions, radicals, trigonometric identities,
decimals against exact constants, matrices, intervals against inequalities, lines, sets,
logarithms and plain-text expressions, half of them equal and half a near miss.
The last line is machine-readable.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from collections.abc import Callable
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


def _factored(rng: random.Random) -> tuple[str, str, str]:
    a, b = rng.sample([k for k in range(-9, 10) if k], 2)
    if a + b == 0:
        b += 1 if b != -1 else 2
    expanded = f"x^2{a + b:+d}x{a * b:+d}"
    return f"(x{a:+d})(x{b:+d})", expanded, f"x^2{a + b:+d}x{a * b + 1:+d}"


def _cubed(rng: random.Random) -> tuple[str, str, str]:
    a = rng.choice([k for k in range(-6, 7) if k])
    expanded = f"x^3{3 * a:+d}x^2{3 * a * a:+d}x{a**3:+d}"
    return f"(x{a:+d})^3", expanded, f"x^3{3 * a:+d}x^2{3 * a * a:+d}x{a**3 - 1:+d}"


def _rational(rng: random.Random) -> tuple[str, str, str]:
    a = rng.randint(2, 12)
    return f"x+{a}", f"\\frac{{x^2-{a * a}}}{{x-{a}}}", f"\\frac{{x^2-{a * a}}}{{x+{a}}}"


def _radical(rng: random.Random) -> tuple[str, str, str]:
    a, b, c = rng.randint(2, 9), rng.choice([2, 3, 5, 6, 7, 10]), rng.randint(2, 11)
    return (
        f"\\frac{{{a}\\sqrt{{{b}}}}}{{{c}}}",
        f"\\frac{{\\sqrt{{{a * a * b}}}}}{{{c}}}",
        (f"\\frac{{\\sqrt{{{a * a * b + 1}}}}}{{{c}}}"),
    )


_IDENTITIES = [
    ("\\sin^2 x", "1-\\cos^2 x", "1-\\sin^2 x"),
    ("\\sin 2x", "2\\sin x\\cos x", "2\\sin x"),
    ("\\sec^2 x", "1+\\tan^2 x", "1+\\cot^2 x"),
    ("\\cos 2x", "\\cos^2 x-\\sin^2 x", "\\cos^2 x+\\sin^2 x"),
    ("\\tan x", "\\frac{\\sin x}{\\cos x}", "\\frac{\\cos x}{\\sin x}"),
    ("\\sin x", "\\cos(\\frac{\\pi}{2}-x)", "\\cos(\\pi-x)"),
]


def _trig(rng: random.Random) -> tuple[str, str, str]:
    k = rng.randint(2, 9)
    gold, right, wrong = rng.choice(_IDENTITIES)
    return f"{k}({gold})", f"{k}({right})", f"{k}({wrong})"


_CONSTANTS: list[tuple[str, float]] = [
    *((f"\\frac{{{a}\\pi}}{{{b}}}", a * math.pi / b) for a in (1, 3, 5) for b in (4, 6, 7)),
    *((f"\\sqrt{{{n}}}", math.sqrt(n)) for n in (2, 3, 5, 7, 11)),
    *((f"e^{{{k}}}", math.exp(k)) for k in (2, 3)),
    *((f"\\ln {n}", math.log(n)) for n in (2, 3, 10)),
]


def _decimal(rng: random.Random) -> tuple[str, str, str]:
    exact, value = rng.choice(_CONSTANTS)
    return exact, f"{value:.4f}", f"{value + 0.001:.4f}"


def _matrix(rng: random.Random) -> tuple[str, str, str]:
    p, q, r, s = (rng.randint(1, 9) for _ in range(4))
    d = rng.randint(2, 9)

    def written(entries: tuple[str, ...]) -> str:
        return (
            "\\begin{pmatrix}"
            + f"{entries[0]} & {entries[1]}\\\\ {entries[2]} & {entries[3]}"
            + "\\end{pmatrix}"
        )

    gold = written((f"\\frac{{{p}}}{{{d}}}", str(q), f"-\\frac{{{r}}}{{{d}}}", f"\\sqrt{{{s * s}}}"))
    right = written(
        (f"\\frac{{{2 * p}}}{{{2 * d}}}", f"\\frac{{{q * d}}}{{{d}}}", f"\\frac{{-{r}}}{{{d}}}", str(s))
    )
    wrong = written(
        (f"\\frac{{{2 * p}}}{{{2 * d}}}", f"\\frac{{{q * d}}}{{{d}}}", f"\\frac{{{r}}}{{{d}}}", str(s))
    )
    return gold, right, wrong


def _interval(rng: random.Random) -> tuple[str, str, str]:
    a, b = sorted(rng.sample(range(-20, 21), 2))
    return f"({a}, {b}]", f"{a} < x \\le {b}", f"{a} \\le x \\le {b}"


def _line(rng: random.Random) -> tuple[str, str, str]:
    m, c = rng.randint(2, 9), rng.choice([k for k in range(-9, 10) if k])
    return f"y = {m}x{c:+d}", f"{2 * m}x - 2y{2 * c:+d} = 0", f"{2 * m}x - 2y{2 * c + 1:+d} = 0"


def _set(rng: random.Random) -> tuple[str, str, str]:
    a, b, c = rng.sample(range(2, 30), 3)
    items = [f"\\frac{{1}}{{{a}}}", f"\\sqrt{{{b}}}", f"-{c}"]
    shuffled = rng.sample(items, 3)
    return (
        "\\{" + ", ".join(items) + "\\}",
        "\\{" + ", ".join(shuffled) + "\\}",
        ("\\{" + ", ".join([*shuffled[:2], f"{c}" if shuffled[2] == items[2] else "0"]) + "\\}"),
    )


def _logarithm(rng: random.Random) -> tuple[str, str, str]:
    a, b = rng.sample(range(2, 12), 2)
    return f"\\ln {a * b}", f"\\ln {a} + \\ln {b}", f"\\ln {a} \\cdot \\ln {b}"


def _plain_text(rng: random.Random) -> tuple[str, str, str]:
    a, b = rng.randint(1, 9), rng.randint(2, 9)
    if rng.random() < 0.5:
        return f"\\frac{{{a}\\pi}}{{{b}}}", f"{a}*pi/{b}", f"{a}*pi/{b + 1}"
    return f"\\frac{{\\sqrt{{{a + 1}}}}}{{{b}}}", f"sqrt({a + 1})/{b}", f"sqrt({a + 2})/{b}"


_FAMILIES: list[Callable[[random.Random], tuple[str, str, str]]] = [
    _factored,
    _cubed,
    _rational,
    _radical,
    _trig,
    _decimal,
    _matrix,
    _interval,
    _line,
    _set,
    _logarithm,
    _plain_text,
]
_TEMPLATES = ["So the answer is $\\boxed{%s}$.", "The final answer is $%s$.", "Therefore\n$$%s$$"]


def _heavy_mix(count: int, seed: int = 0) -> list[dict]:
    """`count` sympy-heavy cases (see the module docstring): the families in turn, equal and near miss
    alternating. Golds are written in `$...$`, the form math-verify's default extraction reads."""
    rng = random.Random(seed)
    cases = []
    for i in range(count):
        family = _FAMILIES[i % len(_FAMILIES)]
        gold, right, wrong = family(rng)
        equal = (i // len(_FAMILIES)) % 2 == 0
        answer = right if equal else wrong
        template = "The answer is %s." if family is _plain_text else rng.choice(_TEMPLATES)
        source = f"generated by bench/math_verifier.py: {family.__name__.lstrip('_')}"
        cases.append(
            {"gold": f"${gold}$", "response": template % answer, "expected": equal, "source": source}
        )
    return cases


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
    parser.add_argument("--heavy", type=int, default=240, help="cases in the sympy-heavy mix")
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

    heavy_cases = _heavy_mix(args.heavy)
    heavy_statuses, heavy_rate = _run_ours(heavy_cases, args.workers, args.repeat)
    heavy_theirs, heavy_theirs_rate = _run_math_verify(heavy_cases, args.repeat)
    heavy_ours = _score(heavy_cases, [s == "correct" for s in heavy_statuses])
    heavy_mv = _score(heavy_cases, heavy_theirs)
    if args.show_errors:
        for case, status in zip(heavy_cases, heavy_statuses, strict=True):
            if (status == "correct") != case["expected"]:
                print(f"[heavy, ours wrong] expected={case['expected']} ours={status}")
                print(f"   gold={case['gold']!r}\n   response={case['response']!r}\n   {case['source']}")

    start = time.perf_counter()
    adversarial = verify_batch(_ADVERSARIAL, timeout_s=2.0, workers=args.workers)
    adversarial_s = time.perf_counter() - start
    print(f"load average (1, 5, 15 min): {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
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
        f"sympy-heavy mix ({len(heavy_cases)} generated cases): ours accuracy {heavy_ours['accuracy']:.3f} "
        f"fp {heavy_ours['fp']} fn {heavy_ours['fn']} timeouts {heavy_statuses.count('timeout')} "
        f"{heavy_rate:.0f} cases/s; math-verify accuracy {heavy_mv['accuracy']:.3f} fp {heavy_mv['fp']} "
        f"fn {heavy_mv['fn']} {heavy_theirs_rate:.0f} cases/s; ratio {heavy_rate / heavy_theirs_rate:.2f}x"
    )
    print(
        f"adversarial ({len(_ADVERSARIAL)} inputs, 2 s limit): "
        f"{[v.status for v in adversarial]} in {adversarial_s:.1f} s total"
    )
    print(
        f"accuracy={ours['accuracy']:.4f} fp={ours['fp']} fn={ours['fn']} timeouts={timeouts} "
        f"cases_per_s={ours_rate:.1f} mathverify_accuracy={mv['accuracy']:.4f} "
        f"mathverify_cases_per_s={theirs_rate:.1f} heavy_cases_per_s={heavy_rate:.1f} "
        f"heavy_mathverify_cases_per_s={heavy_theirs_rate:.1f}"
    )


if __name__ == "__main__":
    main()
