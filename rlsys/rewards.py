"""The verifier: scores samples with the weighted sum of the job's reward functions.

`verifier.rewards` in a job maps reward functions to weights: registry names or `module:function`, your
own, logged as `reward/<function>` (`rlsys.reward_registry`). Every function has the batched signature of
`verifiers.rewards`:

    fn(responses, golds, timeout_s, *, prompts, **columns) -> list[Score | float]

`prompts` is each response's chat; `columns` are the other fields of each prompt's dataset row (one list per
column, aligned with `responses`). A function of your own runs in a worker process with a hard limit of
`timeout_s` per response; a function that raises or overruns is an `error` verdict for the samples it could
not score (a batch that fails is retried sample by sample, so one bad answer does not void its batch), and
the loop stops a step whose error rate passes `verifier.max_error_rate`.

A prompt may name the one reward that applies to it (a dataset's `reward_key` column); otherwise every
function of the job scores it.
"""

import math
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from rlsys.config import VerifierConfig
from rlsys.killable import KillableFunction
from rlsys.reward_registry import REWARD_FUNCTIONS, component_name
from rlsys.tools import ToolLimits, run_tool
from rlsys.types import Prompt, Reward, ToolCall
from verifiers.code.limits import SandboxConfig
from verifiers.rewards import Score, abstain_reward, code_reward


class RewardFailure(Exception):
    """A reward function raised, overran its limit, or returned something other than one score each."""


class Verifier:
    """Scores responses with the job's reward functions (its `verifier` section); the verifier pool's actors
    each hold one. The `code` reward runs its programs under the section's sandbox policy, as many at once as
    the actor has CPUs; rollouts' tool calls run under the same policy (`run_tool`)."""

    def __init__(self, config: VerifierConfig) -> None:
        self.weights = {component_name(key): weight for key, weight in config.rewards.items()}
        self.sandbox = sandbox = SandboxConfig(
            allow_missing=tuple(config.sandbox_allow_missing), cgroup_parent=config.sandbox_cgroup_parent
        )
        self.functions: dict[str, Callable] = {}
        abstention = config.abstention
        for key in config.rewards:
            if key == "code":
                function = partial(code_reward, sandbox=sandbox, max_parallel=max(1, int(config.num_cpus)))
            elif key == "abstain":
                function = partial(
                    abstain_reward,
                    phrases=abstention.phrases,
                    right=abstention.right,
                    abstain=abstention.abstain,
                    wrong=abstention.wrong,
                    judge=abstention.judge,
                )
            elif key in REWARD_FUNCTIONS:
                function = REWARD_FUNCTIONS[key]
            else:
                function = KillableFunction(key)
                function.start()
            self.functions[component_name(key)] = function
        self.timeout_s = config.timeout_s

    def ready(self) -> None:
        """Returns once the verifier is constructed (the pool's start-up check)."""

    def run_tool(self, code: str, limits: ToolLimits) -> ToolCall:
        """One tool call of a rollout, in the calling thread's sandbox (`rlsys.tools.run_tool`)."""
        return run_tool(code, limits, self.sandbox)

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
