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


_ARTICLES = re.compile(r"\b(a|an|the)\b")
_PUNCTUATION = re.compile(r"[^\w\s]")


def normalize_answer(text: str) -> str:
    """A short answer as compared: lower case, no punctuation or articles, single spaces (SQuAD's rule)."""
    text = _PUNCTUATION.sub(" ", text.lower().replace("'", ""))
    return " ".join(_ARTICLES.sub(" ", text).split())


def accepted_answers(gold: str) -> list[str]:
    """A gold as the answers it accepts: a JSON list of aliases (`["NYC", "New York"]`; `[]` when no answer is
    right: a question that cannot be answered), else the gold text itself."""
    if gold.lstrip().startswith("["):
        answers = json.loads(gold)
        if isinstance(answers, list) and all(isinstance(a, str) for a in answers):
            return answers
    return [gold]


def final_answer(response: str) -> str:
    """The answer a response gives: what follows its last `####`, else the whole response."""
    return response.rpartition("####")[2] if "####" in response else response


def match_reward(responses: Sequence[str], golds: Sequence[str], timeout_s: float, **_columns) -> list[Score]:
    """1.0 when the response's answer (`final_answer`) equals one the gold accepts (`accepted_answers`) after
    normalising both (`normalize_answer`), else 0.0: short factual answers, as in SQuAD and TriviaQA."""
    scores = []
    for response, gold in zip(responses, golds, strict=True):
        accepted = {normalize_answer(answer) for answer in accepted_answers(gold)}
        right = normalize_answer(final_answer(response)) in accepted
        scores.append(Score(1.0 if right else 0.0, "correct" if right else "incorrect", right))
    return scores


ABSTAINED = "abstained"  # the verdict of an answer that declines: `abstain_reward`'s middle outcome
RIGHT, WRONG = "right", "wrong"


def abstains(response: str, phrases: Sequence[str]) -> bool:
    """Whether a response declines to answer: it holds one of `phrases` ("I don't know"), compared as
    normalised words (`normalize_answer`), so "I don't know." and "Sorry, I do not know who that is" count."""
    words = f" {normalize_answer(response)} "
    return any(f" {normalize_answer(phrase)} " in words for phrase in phrases)


def abstain_reward(
    responses: Sequence[str],
    golds: Sequence[str],
    timeout_s: float,
    *,
    phrases: Sequence[str],
    right: float,
    abstain: float,
    wrong: float,
    judge: str,
    **columns,
) -> list[Score]:
    """An answer that is right scores `right`, one that abstains (`abstains(response, phrases)`) `abstain`,
    any other `wrong`, with right > abstain > wrong: answering pays only where the policy is right more often
    than (abstain - wrong) / (right - wrong) of the time, so a policy maximising it answers what it knows
    and declines what it would guess. Which answers are right is `judge`'s call (a reward of `REWARDS` that
    judges correctness: `match`, `math`). Verdicts: `right`, `abstained`, `wrong`; correct only when right.
    """
    scores: list[Score | None] = [
        Score(abstain, ABSTAINED, False) if abstains(response, phrases) else None for response in responses
    ]
    answered = [i for i, score in enumerate(scores) if score is None]
    if answered:
        judged = REWARDS[judge]([responses[i] for i in answered], [golds[i] for i in answered], timeout_s)
        for i, verdict in zip(answered, judged, strict=True):
            scores[i] = Score(right, RIGHT, True) if verdict.correct else Score(wrong, WRONG, False)
    return scores


REWARDS: dict[str, RewardFn] = {
    "math": math_reward,
    "code": code_reward,
    "format": format_reward,
    "match": match_reward,
    "abstain": abstain_reward,  # bound to the job's `verifier.abstention` by the verifier
}
