"""The reward registry: a job names its reward functions and weights in YAML (`verifier.rewards`).

A reward function scores a batch: `fn(responses, golds, timeout_s, **columns) -> list[Score]`, where
`columns` are further per-response lists a caller may pass (`prompts`: the chat each response answers) and
a function may ignore. Batches let a verifier share its worker processes across answers. Each score keeps
its verdict word for metrics, and `correct` where the function decides correctness (it feeds
`train/accuracy`).
"""

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the sandbox is imported where code runs, not with the registry
    from verifiers.code import SandboxConfig


@dataclass(frozen=True)
class Score:
    value: float
    verdict: str
    correct: bool | None = None  # None: this function does not judge correctness


RewardFn = Callable[..., list[Score]]


def math_reward(responses: Sequence[str], golds: Sequence[str], timeout_s: float, **_columns) -> list[Score]:
    """1.0 when the final answer is mathematically equal to the gold answer (sympy), else 0.0. The verdict
    names the rule that decided it, `correct:numeric_tolerance` or `incorrect:choice`, so a reward can be
    audited in the samples table."""
    from verifiers.math import verify_batch

    verdicts = verify_batch(list(zip(golds, responses, strict=True)), timeout_s=timeout_s)
    return [
        Score(1.0 if v.correct else 0.0, f"{v.status}:{v.rule}" if v.rule else v.status, v.correct)
        for v in verdicts
    ]


_FINAL_ANSWER = re.compile(r"(^####\s*\S.*$)|(\\boxed\{)", re.MULTILINE)


def format_reward(
    responses: Sequence[str], golds: Sequence[str], timeout_s: float, **_columns
) -> list[Score]:
    """1.0 when the response states a final answer in a recognised form (`#### x` line or `\\boxed{x}`)."""
    return [
        Score(1.0, "formatted") if _FINAL_ANSWER.search(r) else Score(0.0, "unformatted") for r in responses
    ]


_CODE_BLOCK = re.compile(r"```(?:python|py)?[ \t]*\n(.*?)```", re.DOTALL)


def extract_code(response: str) -> str:
    """The program in a response: its last fenced code block, or the whole text when there is none."""
    blocks = _CODE_BLOCK.findall(response)
    return blocks[-1] if blocks else response


def parse_code_gold(gold: str) -> tuple[str, str | None]:
    """A code task's gold: plain test source (`assert ...` lines), or for HumanEval-style
    `check(candidate)` tests the JSON `{"tests": ..., "entry_point": ...}`."""
    if gold.lstrip().startswith("{"):
        spec = json.loads(gold)
        return spec["tests"], spec.get("entry_point")
    return gold, None


def code_reward(
    responses: Sequence[str],
    golds: Sequence[str],
    timeout_s: float,
    *,
    entry_point: Sequence[str | None] | None = None,
    sandbox: "SandboxConfig | None" = None,
    max_parallel: int | None = None,
    **_columns,
) -> list[Score]:
    """The share of tests the response's program passes, run in the sandbox; correct when all pass.

    `entry_point` (a dataset column, as HumanEval's): the function `check(candidate)` tests are given.
    `sandbox`: the sandbox's policy (what isolation it may lack); `max_parallel`: programs run at once (the
    CPUs the caller was given). A program repeated against the same tests (samples of one prompt often agree)
    runs once and every copy gets its verdict.
    """
    from verifiers.code import CodeJob, run_tests_batch

    entry_points = entry_point or [None] * len(responses)
    jobs = []
    for response, gold, column in zip(responses, golds, entry_points, strict=True):
        tests, from_gold = parse_code_gold(gold)
        jobs.append(
            CodeJob(extract_code(response), tests, entry_point=column or from_gold, timeout_s=timeout_s)
        )
    unique = list(dict.fromkeys(jobs))  # CodeJob is frozen, hence hashable; order kept
    verdicts = dict(zip(unique, run_tests_batch(unique, sandbox, max_parallel), strict=True))
    return [Score(verdicts[job].pass_fraction, verdicts[job].status, verdicts[job].passed) for job in jobs]


REWARDS: dict[str, RewardFn] = {"math": math_reward, "code": code_reward, "format": format_reward}
