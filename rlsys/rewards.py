"""The job's reward functions, and the verifier that scores samples with their weighted sum.

`verifier.rewards` in a job maps reward functions to weights. A function is named by the registry
(`REWARD_FUNCTIONS`: the verifiers' built-ins `math`, `code`, `format`, and the quickstart's people
`hidden_preference`) or given as `module:function`, your own, logged as `reward/<function>`. Every function
has the batched signature of `verifiers.rewards`:

    fn(responses, golds, timeout_s, *, prompts, **columns) -> list[Score | float]

`prompts` is each response's chat; `columns` are the other fields of each prompt's dataset row (one list per
column, aligned with `responses`). A function of your own runs in a worker process with a hard limit of
`timeout_s` per response; a function that raises or overruns is an `error` verdict for the samples it could
not score (a batch that fails is retried sample by sample, so one bad answer does not void its batch), and
the loop stops a step whose error rate passes `verifier.max_error_rate`.

A prompt may name the one reward that applies to it (a dataset's `reward_key` column); otherwise every
function of the job scores it. `gold_problem` says why a gold answer is unusable by a reward (a code reward
given a bare number), so bad rows are refused when the data is loaded, with their row number.
"""

import ast
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

from rlsys.errors import RlsysError
from rlsys.killable import KillableFunction, import_target
from rlsys.rlhf.preference import hidden_preference_reward
from rlsys.types import Prompt, Reward
from verifiers.rewards import REWARDS, RewardFn, Score, parse_code_gold

REWARD_FUNCTIONS: dict[str, RewardFn] = {**REWARDS, "hidden_preference": hidden_preference_reward}


class RewardNotFound(RlsysError):
    """A reward name that is neither in the registry nor an importable `module:function`."""


def component_name(key: str) -> str:
    """The name a reward is logged under: its registry name, or the function's own name for
    `module:function` (which must import and be callable)."""
    if key in REWARD_FUNCTIONS:
        return key
    module, sep, attribute = key.partition(":")
    if not sep or not module or not attribute:
        raise RewardNotFound(
            f"unknown reward '{key}': choose from {sorted(REWARD_FUNCTIONS)} or give your own as "
            f"'module:function'"
        )
    try:
        function = import_target(key)
    except (ImportError, AttributeError) as err:
        raise RewardNotFound(
            f"reward '{key}' cannot be imported ({type(err).__name__}: {err}): the module must be "
            f"importable from the directory the job runs in"
        ) from None
    if not callable(function):
        raise RewardNotFound(f"reward '{key}' is not a function")
    return attribute


def _code_gold_problem(gold: str) -> str | None:
    tests, _ = parse_code_gold(gold)
    try:
        tree = ast.parse(tests)
    except SyntaxError as err:
        return f"its tests are not valid Python ({err.msg}, line {err.lineno})"
    if not any(isinstance(node, ast.Assert) for node in ast.walk(tree)):
        return "its tests hold no assert statement, so any program would pass them"
    return None


def _integer_gold_problem(gold: str) -> str | None:
    return None if gold.strip().lstrip("-").isdigit() else "the hidden preference needs an integer answer"


_GOLD_CHECKS: dict[str, Callable[[str], str | None]] = {
    "code": _code_gold_problem,
    "hidden_preference": _integer_gold_problem,
}


def gold_problem(key: str, gold: str) -> str | None:
    """Why reward `key` cannot score against `gold` (None: it can). A function of your own may define
    `check_gold(gold) -> str | None` to refuse golds it cannot use."""
    if not gold.strip():
        return "its gold answer is empty"
    if key in REWARD_FUNCTIONS:
        check = _GOLD_CHECKS.get(key)
    else:
        check = getattr(import_target(key), "check_gold", None)  # optional by contract
    return check(gold) if check is not None else None


class RewardFailure(Exception):
    """A reward function raised, overran its limit, or returned something other than one score each."""


class Verifier:
    """Scores responses with the job's reward functions; the verifier pool's actors each hold one."""

    def __init__(self, weights: dict[str, float], timeout_s: float) -> None:
        self.weights = {component_name(key): weight for key, weight in weights.items()}
        self.functions: dict[str, Callable] = {
            component_name(key): REWARD_FUNCTIONS[key] if key in REWARD_FUNCTIONS else KillableFunction(key)
            for key in weights
        }
        self.timeout_s = timeout_s

    def ready(self) -> None:
        """Returns once the verifier is constructed (the pool's start-up check)."""

    def score(self, prompts: Sequence[Prompt], responses: Sequence[str]) -> list[Reward]:
        """One Reward per response to `prompts[i]`: the weighted sum of the functions that apply to that
        prompt, with its components; correct when every function that judges correctness says so."""
        start = time.perf_counter()
        scores: list[dict[str, Score]] = [{} for _ in responses]
        errors: list[list[str]] = [[] for _ in responses]
        for name in self.functions:
            rows = [i for i, prompt in enumerate(prompts) if prompt.reward in (None, name)]
            if rows:
                results = self._apply(name, [prompts[i] for i in rows], [responses[i] for i in rows])
                for i, (score, error) in zip(rows, results, strict=True):
                    scores[i][name] = score
                    if error:
                        errors[i].append(f"{name}: {error}")
        for i, prompt in enumerate(prompts):
            if prompt.reward is not None and prompt.reward not in self.functions:
                errors[i].append(
                    f"the prompt asks for reward '{prompt.reward}', which this job does not have"
                )
        elapsed = (time.perf_counter() - start) / max(len(responses), 1)
        return [self._reward(row, tuple(failed), elapsed) for row, failed in zip(scores, errors, strict=True)]

    def _reward(self, scores: dict[str, Score], errors: tuple[str, ...], elapsed: float) -> Reward:
        judged = [s.correct for s in scores.values() if s.correct is not None]
        return Reward(
            score=sum(self.weights[name] * s.value for name, s in scores.items()),
            components={name: s.value for name, s in scores.items()},
            correct=all(judged) if judged else None,
            verdict=",".join(s.verdict for s in scores.values()),
            elapsed_s=elapsed,
            errors=errors,
        )

    def _apply(self, name: str, prompts: list[Prompt], responses: list[str]) -> list[tuple[Score, str]]:
        """(score, error or "") for each response; a failed batch is retried one response at a time."""
        try:
            return [(score, "") for score in self._call(name, prompts, responses)]
        except RewardFailure as failure:
            if len(responses) == 1:
                return [(Score(0.0, "error"), str(failure))]
        return [self._apply(name, [p], [r])[0] for p, r in zip(prompts, responses, strict=True)]

    def _call(self, name: str, prompts: list[Prompt], responses: list[str]) -> list[Score]:
        columns: dict[str, list[Any]] = {key: [] for prompt in prompts for key in prompt.columns}
        for key, values in columns.items():
            values.extend(prompt.columns.get(key) for prompt in prompts)
        args = (responses, [p.gold for p in prompts], self.timeout_s)
        kwargs = {**columns, "prompts": [list(p.messages) for p in prompts]}
        function = self.functions[name]
        if isinstance(function, KillableFunction):
            outcome = function(*args, timeout_s=self.timeout_s * len(responses), **kwargs)
            if outcome.status != "ok":
                raise RewardFailure(f"{outcome.status}: {outcome.detail}")
            values = outcome.value
        else:
            try:
                values = function(*args, **kwargs)
            except Exception as err:  # a bug in a built-in is a verdict too: the step goes on, counted
                raise RewardFailure(f"{type(err).__name__}: {err}") from err
        return _scores(values, len(responses))


def _scores(values: Any, expected: int) -> list[Score]:
    """A function's return value as one finite Score per response (a plain number is a Score too)."""
    if not isinstance(values, list | tuple) or len(values) != expected:
        count = len(values) if isinstance(values, list | tuple) else type(values).__name__
        raise RewardFailure(f"returned {count} scores for {expected} responses; return one per response")
    try:
        scores = [v if isinstance(v, Score) else Score(float(v), "scored") for v in values]
    except (TypeError, ValueError) as err:
        raise RewardFailure(f"returned something that is not a number or a Score ({err})") from None
    bad = [s.value for s in scores if not math.isfinite(s.value)]
    if bad:
        raise RewardFailure(f"returned a non-finite score ({bad[0]})")
    return scores
