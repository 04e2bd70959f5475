"""Knowing what the model does not know: answers sorted into right, abstained and wrong, and what a probe and
an evaluation make of them. Pure functions over samples and rewards.

The `abstain` reward (`verifiers.rewards.abstain_reward`) gives every answer one of three verdicts; from
them:

- evaluation metrics: `abstain_rate` (answers that decline), `hallucination_rate` (wrong answers among the
  ones that answer), and a calibration error (`calibration_points`, `calibration_error`);
- the probe's knowledge map: per question the share of k sampled answers right, wrong and abstaining
  (`knowledge`), and the data that teaches the model to abstain (`abstention_examples`): its own right
  answers to questions it knows, a fixed "I don't know" to questions it gets consistently wrong.
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from rlsys.types import Prompt, Reward, Sample
from verifiers.rewards import ABSTAINED, RIGHT, WRONG, final_answer, normalize_answer

OUTCOMES = (RIGHT, ABSTAINED, WRONG)
CALIBRATION_BINS = 5


def outcome(reward: Reward) -> str | None:
    """right, abstained or wrong, by the `abstain` reward's verdict; None when no such reward scored it."""
    verdicts = reward.verdict.split(",")
    return next((name for name in OUTCOMES if name in verdicts), None)


def abstention_metrics(rewards: Sequence[Reward]) -> dict[str, float]:
    """`abstain_rate`: the share of answers that decline; `hallucination_rate`: the share of wrong answers
    among those that answer (0 when none does). Empty when the answers were not scored for abstention."""
    outcomes = [outcome(r) for r in rewards]
    if not outcomes or None in outcomes:
        return {}
    counts = Counter(outcomes)
    answered = counts[RIGHT] + counts[WRONG]
    return {
        "abstain_rate": counts[ABSTAINED] / len(outcomes),
        "hallucination_rate": counts[WRONG] / answered if answered else 0.0,
    }


def calibration_points(
    greedy: Sequence[Sample],
    greedy_rewards: Sequence[Reward],
    sampled: Sequence[Sequence[Sample]],
) -> list[tuple[float, str]]:
    """One (confidence, outcome) per question: the outcome of its greedy answer, and how sure the model is of
    that answer, measured as self-consistency: the share of its sampled answers that say the same thing (the
    same normalised final answer; any abstention is the same as another). Empty without abstention verdicts.
    """
    outcomes = [outcome(r) for r in greedy_rewards]
    if not outcomes or None in outcomes:
        return []
    points = []
    for answer, result, group in zip(greedy, outcomes, sampled, strict=True):
        key = _answer_key(answer.text)
        agree = sum(_answer_key(sample.text) == key for sample in group)
        points.append((agree / len(group), result))
    return points


def _answer_key(text: str) -> str:
    return normalize_answer(final_answer(text))


def calibration_error(points: Sequence[tuple[float, str]], bins: int = CALIBRATION_BINS) -> float:
    """Expected calibration error of the answers given (abstentions left out): over equal-width confidence
    bins, the gap between mean confidence and accuracy, weighted by the bin's share of the answers."""
    answered = [(confidence, result == RIGHT) for confidence, result in points if result != ABSTAINED]
    if not answered:
        return 0.0
    error = 0.0
    for members in _binned(answered, bins):
        if members:
            confidence = sum(c for c, _ in members) / len(members)
            accuracy = sum(r for _, r in members) / len(members)
            error += len(members) / len(answered) * abs(confidence - accuracy)
    return error


def _binned(points: Sequence[tuple[float, object]], bins: int) -> list[list[tuple[float, object]]]:
    """Points by equal-width bin of their first value in [0, 1] (1.0 falls in the last bin)."""
    grouped: list[list[tuple[float, object]]] = [[] for _ in range(bins)]
    for point in points:
        grouped[min(int(point[0] * bins), bins - 1)].append(point)
    return grouped


def calibration_table(points: Sequence[tuple[float, str]], bins: int = CALIBRATION_BINS) -> list[dict]:
    """Per confidence bin: its range, how many questions, the share of each outcome, and the accuracy of the
    answers given (None where none was) — what the calibration plot draws."""
    rows = []
    for index, members in enumerate(_binned(points, bins)):
        counts = Counter(result for _, result in members)
        answered = counts[RIGHT] + counts[WRONG]
        rows.append(
            {
                "low": index / bins,
                "high": (index + 1) / bins,
                "questions": len(members),
                **{name: counts[name] / len(members) if members else 0.0 for name in OUTCOMES},
                "accuracy": counts[RIGHT] / answered if answered else None,
            }
        )
    return rows


@dataclass(frozen=True)
class Knowledge:
    """What k sampled answers to one question show: the shares right, wrong and abstaining."""

    prompt: Prompt
    right: float
    wrong: float
    abstained: float
    right_answers: tuple[str, ...]  # the texts of the right answers, most common first

    def row(self) -> dict:
        return {
            "id": self.prompt.id,
            "question": self.prompt.messages[-1]["content"],
            "gold": self.prompt.gold,
            "right": self.right,
            "wrong": self.wrong,
            "abstained": self.abstained,
        }


def knowledge(prompt: Prompt, samples: Sequence[Sample], rewards: Sequence[Reward]) -> Knowledge:
    """The knowledge map's entry for one question from its k sampled answers and their rewards."""
    outcomes = [outcome(r) for r in rewards]
    if None in outcomes:
        raise ValueError("the answers were not scored by the abstain reward (verifier.rewards must hold it)")
    counts = Counter(outcomes)
    right = Counter(s.text.strip() for s, o in zip(samples, outcomes, strict=True) if o == RIGHT)
    return Knowledge(
        prompt=prompt,
        right=counts[RIGHT] / len(outcomes),
        wrong=counts[WRONG] / len(outcomes),
        abstained=counts[ABSTAINED] / len(outcomes),
        right_answers=tuple(text for text, _ in right.most_common()),
    )


def abstention_examples(
    known: Sequence[Knowledge], *, known_at: float, unknown_at: float, abstain_answer: str
) -> list[dict]:
    """SFT conversations (`{"messages": [...]}`) that teach the model to say what it does not know:

    - a question it answers right in at least `known_at` of its samples keeps its most common right answer,
      in its own words;
    - a question it answers wrong in at least `unknown_at` of its samples gets `abstain_answer`;
    - a question in between (sometimes right, sometimes not) is left out: neither answer is one to teach.
    """
    examples = []
    for entry in known:
        if entry.right >= known_at and entry.right_answers:
            reply = entry.right_answers[0]
        elif entry.wrong >= unknown_at:
            reply = abstain_answer
        else:
            continue
        messages = [*entry.prompt.messages, {"role": "assistant", "content": reply}]
        examples.append({"messages": messages, "probe_id": entry.prompt.id})
    return examples
