"""Small programming problems: write a list function from a description and two examples; hidden tests.

A problem is a pipeline over a list of integers: one to three stages, each keeping some numbers (a filter)
or changing each number (a map), then a reduction (sum, count, largest, smallest, or the list itself), e.g.

    Write a Python function solve(nums) that takes a list of integers, keeps the numbers greater than 3,
    multiplies each by 2 and returns their sum. For example, solve([1, 5, 7]) returns 24 and solve([2])
    returns 0.

Its hidden tests are five `assert` lines on other inputs (the `code` reward: the share that pass, correct
when all do). Two solutions are written for each problem:

- worked: one line per stage, in the order the description gives them (`nums = [x * 2 for x in nums]`);
- constant: the first example's answer returned whatever the input (`return 24`), nothing computed, so the
  hidden tests fail: the code counterpart of a bare guess at a word problem, and a habit code models do
  pick up (answering the example they are shown).

Splits are disjoint on the pipeline itself, not its wording: a function to write belongs to the split its
canonical form hashes to (`rlsys.tasks.splits`), so no held-out function is ever trained on, however phrased.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

from rlsys.tasks.splits import Split, bucket_split, draw_split

_FUNCTION_NAMES = ("solve", "compute", "process", "result")
_PARAMETERS = ("nums", "xs", "values", "items")
_HIDDEN_TESTS = 5


# Stage kinds: (Python expression of x with the constant {k}, what it does to x, phrasings). A "keep" stage
# keeps the numbers whose expression is true; a "map" stage replaces each number by its expression.
_KEEPS: dict[str, tuple[str, Callable[[int, int], bool], tuple[str, ...]]] = {
    "above": ("x > {k}", lambda x, k: x > k, ("keeps the numbers greater than {k}", "keeps those above {k}")),
    "below": ("x < {k}", lambda x, k: x < k, ("keeps the numbers less than {k}", "keeps those below {k}")),
    "even": ("x % 2 == 0", lambda x, k: x % 2 == 0, ("keeps the even numbers", "drops the odd numbers")),
    "odd": ("x % 2 == 1", lambda x, k: x % 2 == 1, ("keeps the odd numbers", "drops the even numbers")),
    "multiple": ("x % {k} == 0", lambda x, k: x % k == 0, ("keeps the multiples of {k}",)),
    "other": ("x != {k}", lambda x, k: x != k, ("removes every {k}", "drops the numbers equal to {k}")),
}
_MAPS: dict[str, tuple[str, Callable[[int, int], int], tuple[str, ...]]] = {
    "add": ("x + {k}", lambda x, k: x + k, ("adds {k} to each", "increases each by {k}")),
    "subtract": ("x - {k}", lambda x, k: x - k, ("subtracts {k} from each", "decreases each by {k}")),
    "times": ("x * {k}", lambda x, k: x * k, ("multiplies each by {k}", "makes each {k} times larger")),
    "square": ("x * x", lambda x, k: x * x, ("squares each", "replaces each by its square")),
    "remainder": ("x % {k}", lambda x, k: x % k, ("replaces each by its remainder after division by {k}",)),
    "half": ("x // 2", lambda x, k: x // 2, ("halves each, rounding down",)),
}
# Kinds whose constant divides or multiplies take 2-5; the others 1-9.
_SMALL_CONSTANT = {"multiple", "times", "remainder"}
# What the function returns of the final list: (Python expression of the list {0}, the function, phrasings).
_REDUCTIONS: dict[str, tuple[str, Callable[[list[int]], object], tuple[str, ...]]] = {
    "sum": ("sum({0})", sum, ("returns their sum", "returns the total")),
    "count": ("len({0})", len, ("returns how many there are", "returns the count of them")),
    "max": (
        "max({0}, default=0)",
        lambda v: max(v, default=0),
        ("returns the largest, or 0 if there is none",),
    ),
    "min": (
        "min({0}, default=0)",
        lambda v: min(v, default=0),
        ("returns the smallest, or 0 if there is none",),
    ),
    "list": ("{0}", list, ("returns the resulting list",)),
}


@dataclass(frozen=True)
class Stage:
    """One step of a pipeline: keeping some numbers (a `_KEEPS` kind) or changing each (a `_MAPS` kind)."""

    kind: str
    k: int
    phrase: str

    @property
    def keeps(self) -> bool:
        return self.kind in _KEEPS

    @property
    def expression(self) -> str:
        """The condition (keep) or the new value (map), as Python in terms of x."""
        return (_KEEPS if self.keeps else _MAPS)[self.kind][0].format(k=self.k)

    def apply(self, numbers: list[int]) -> list[int]:
        if self.keeps:
            return [x for x in numbers if _KEEPS[self.kind][1](x, self.k)]
        return [_MAPS[self.kind][1](x, self.k) for x in numbers]


@dataclass(frozen=True)
class Pipeline:
    """The function a problem asks for, with the words and names it is asked in."""

    name: str
    parameter: str
    stages: tuple[Stage, ...]
    reduction: str  # a `_REDUCTIONS` key
    description: str  # what it does, in words: "keeps ..., adds 3 to each and returns their sum"

    @property
    def canonical(self) -> str:
        """The pipeline without its wording or names: what the splits are keyed on."""
        stages = (s.expression if s.keeps else f"map {s.expression}" for s in self.stages)
        return " | ".join([*stages, self.reduction])

    def __call__(self, numbers: list[int]) -> object:
        """What the function returns for `numbers`."""
        for stage in self.stages:
            numbers = stage.apply(numbers)
        return _REDUCTIONS[self.reduction][1](numbers)


@dataclass(frozen=True)
class Problem:
    """One programming problem: the function asked for, the prompt and the hidden tests."""

    pipeline: Pipeline
    question: str
    tests: str  # `assert name(...) == ...` lines, one per hidden test
    examples: tuple[tuple[list[int], object], ...] = ()  # (input, what the function returns) in the prompt


def worked_solution(problem: Problem) -> str:
    """One line per stage, in the description's order, then the reduction."""
    pipeline = problem.pipeline
    var = pipeline.parameter
    lines = [f"def {pipeline.name}({var}):"]
    for stage in pipeline.stages:
        if stage.keeps:
            lines.append(f"    {var} = [x for x in {var} if {stage.expression}]")
        else:
            lines.append(f"    {var} = [{stage.expression} for x in {var}]")
    lines.append(f"    return {_REDUCTIONS[pipeline.reduction][0].format(var)}")
    return "\n".join(lines)


def constant_solution(problem: Problem) -> str:
    """The first example's answer, returned whatever the input: right on that example only, so the hidden
    tests fail (they take at least three different answers)."""
    pipeline = problem.pipeline
    return f"def {pipeline.name}({pipeline.parameter}):\n    return {problem.examples[0][1]!r}"


def chat_messages(problem: Problem) -> list[dict[str, str]]:
    """The prompt as chat messages (a single user turn holding the problem)."""
    return [{"role": "user", "content": problem.question}]


def split_of(problem: Problem) -> Split:
    """The split a problem belongs to, from a stable hash of its pipeline (independent of its wording)."""
    return bucket_split(problem.pipeline.canonical)  # type: ignore[return-value]


def problems(split: Split, n: int, seed: int) -> list[Problem]:
    """``n`` distinct problems of ``split``, deterministic for ``(split, n, seed)``; a larger ``n`` extends a
    smaller one. A function belongs to one split only, however it is worded; the eval split asks for each
    function once, the others may ask for one function in several wordings."""
    pipelines = draw_split(
        "code",
        split,
        n,
        seed,
        make=_random_pipeline,
        # Held out: every problem a different function. Elsewhere wordings of one function may repeat.
        key=(lambda p: p.canonical)
        if split == "eval"
        else (lambda p: f"{p.name}({p.parameter}): {p.description}"),
        split_key=lambda p: p.canonical,
    )
    # Examples and tests come from each problem's own stream, drawn only for the pipelines kept.
    return [_problem(p, random.Random(f"code:{split}:{seed}:{i}")) for i, p in enumerate(pipelines)]


def _random_list(rng: random.Random, shortest: int) -> list[int]:
    return [rng.randint(0, 12) for _ in range(rng.randint(shortest, 6))]


def _random_stage(rng: random.Random) -> Stage:
    """One random stage; constants are small, so every value stays a one- or two-digit number."""
    kind = rng.choice([*_KEEPS, *_MAPS])
    k = rng.randint(2, 5) if kind in _SMALL_CONSTANT else rng.randint(1, 9)
    phrase = rng.choice((_KEEPS if kind in _KEEPS else _MAPS)[kind][2]).format(k=k)
    return Stage(kind, k, phrase)


# Inputs every pipeline is tried on: one answering the same for all of them is too easy to guess.
_PROBES = ([], [0], [1, 2, 3], [4, 5, 6, 7], [8, 9, 10], [11, 12], [3, 6, 9, 12], [2, 7, 1, 8, 2, 8])


def _random_pipeline(rng: random.Random) -> Pipeline:
    """One to three stages and a reduction, in words; drawn again while it answers fewer than four distinct
    values on `_PROBES` (a near-constant function would pass its tests by a guess)."""
    while True:
        stages = tuple(_random_stage(rng) for _ in range(rng.choice((1, 2, 2, 3, 3))))
        reduction = rng.choice(list(_REDUCTIONS))
        phrases = [s.phrase for s in stages] + [rng.choice(_REDUCTIONS[reduction][2])]
        description = ", ".join(phrases[:-1]) + " and " + phrases[-1]
        name, parameter = rng.choice(_FUNCTION_NAMES), rng.choice(_PARAMETERS)
        pipeline = Pipeline(name, parameter, stages, reduction, description)
        if len({repr(pipeline(probe)) for probe in _PROBES}) >= 4:
            return pipeline


def _problem(pipeline: Pipeline, rng: random.Random) -> Problem:
    """The pipeline with two examples in its prompt and up to five hidden tests on other, distinct inputs
    (drawn again, a few times, while the tests take fewer than three distinct answers)."""
    for _ in range(20):
        hidden = list(
            {repr(numbers): numbers for numbers in (_random_list(rng, 0) for _ in range(8))}.values()
        )
        hidden = hidden[:_HIDDEN_TESTS]
        outputs = [pipeline(numbers) for numbers in hidden]
        if len({repr(output) for output in outputs}) >= 3:
            break
    examples = tuple((numbers, pipeline(numbers)) for numbers in (_random_list(rng, 2) for _ in range(2)))
    name = pipeline.name
    shown = " and ".join(f"{name}({numbers}) returns {output}" for numbers, output in examples)
    question = (
        f"Write a Python function {name}({pipeline.parameter}) that takes a list of integers, "
        f"{pipeline.description}. For example, {shown}."
    )
    tests = "\n".join(
        f"assert {name}({numbers}) == {output!r}" for numbers, output in zip(hidden, outputs, strict=True)
    )
    return Problem(pipeline, question, tests, examples)
