"""Abstention: what counts as abstaining, the abstain reward's ordering, the probe's sorting of answers into
right / wrong / abstaining, the data it writes, and the evaluation's metrics and calibration."""

import pytest

from rlsys.abstention import (
    abstention_examples,
    abstention_metrics,
    calibration_error,
    calibration_points,
    calibration_table,
    knowledge,
    outcome,
)
from rlsys.config import AbstentionConfig, VerifierConfig, load_job
from rlsys.errors import ConfigError
from rlsys.rewards import Verifier
from rlsys.types import Prompt, Reward, Sample
from verifiers.rewards import abstain_reward, abstains, accepted_answers, match_reward, normalize_answer

PHRASES = ["I don't know", "I do not know"]


def _reward(responses, golds, **weights):
    settings = {"right": 1.0, "abstain": 0.3, "wrong": 0.0, "judge": "match", **weights}
    return abstain_reward(responses, golds, 5.0, phrases=PHRASES, **settings)


@pytest.mark.parametrize(
    "response, expected",
    [
        ("I don't know.", True),
        ("i dont know", True),
        ("Sorry, I do not know who that is.", True),
        ("I don't knowingly lie: Dover", False),  # the words must match whole
        ("Dover", False),
        ("I know: Dover", False),
    ],
)
def test_what_counts_as_abstaining(response, expected):
    assert abstains(response, PHRASES) is expected


def test_match_reads_aliases_and_unanswerable_golds():
    assert normalize_answer("The  Dover!") == "dover"
    assert accepted_answers('["NYC", "New York"]') == ["NYC", "New York"] and accepted_answers("[]") == []
    scores = match_reward(
        ["Dover.", "dover", "#### new york", "York"], ["Dover", "[]", '["NYC", "New York"]', "[]"], 1
    )
    assert [s.correct for s in scores] == [True, False, True, False]


@pytest.mark.parametrize("weights", [{}, {"right": 2.0, "abstain": -0.5, "wrong": -1.0}])
def test_the_reward_orders_right_above_abstain_above_wrong(weights):
    scores = _reward(["Dover", "I don't know.", "York"], ["Dover", "Dover", "Dover"], **weights)
    assert scores[0].value > scores[1].value > scores[2].value
    assert [s.verdict for s in scores] == ["right", "abstained", "wrong"]
    assert [s.correct for s in scores] == [True, False, False]  # accuracy counts right answers only


def test_abstaining_beats_any_answer_to_an_unanswerable_question():
    scores = _reward(["Dover", "I don't know"], ["[]", "[]"])
    assert scores[1].value > scores[0].value and scores[0].verdict == "wrong"


def test_the_job_sets_the_weights_and_the_verifier_uses_them():
    config = VerifierConfig(rewards={"abstain": 1.0}, abstention={"abstain": 0.5, "wrong": -1.0})
    prompt = Prompt("q", ({"role": "user", "content": "Where does Tavik live?"},), gold="Dover")
    rewards = Verifier(config).score([prompt] * 3, ["Dover", "I don't know", "York"])
    assert [r.score for r in rewards] == [1.0, 0.5, -1.0]
    assert [outcome(r) for r in rewards] == ["right", "abstained", "wrong"]


@pytest.mark.parametrize(
    "override, message",
    [
        ("verifier.abstention.abstain=1.5", "right > abstain > wrong"),
        ("verifier.abstention.wrong=0.5", "right > abstain > wrong"),
        ("verifier.abstention.phrases=['...']", "at least one phrase"),
        ("verifier.abstention.judge=code", "verifier.abstention.judge"),
    ],
)
def test_bad_abstention_settings_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_job(None, ["verifier.rewards={abstain: 1.0}", override])
    assert AbstentionConfig().right > AbstentionConfig().abstain > AbstentionConfig().wrong


def _sample(text: str) -> Sample:
    return Sample("q", (1,), (2,) * max(1, len(text) // 4), text, (0.0,), "stop", 0)


def _scored(texts: list[str], gold: str) -> tuple[list[Sample], list[Reward]]:
    prompt = Prompt("q", ({"role": "user", "content": "?"},), gold=gold)
    verifier = Verifier(VerifierConfig(rewards={"abstain": 1.0}))
    return [_sample(t) for t in texts], verifier.score([prompt] * len(texts), texts)


def test_the_probe_sorts_each_answer_into_right_wrong_or_abstaining():
    prompt = Prompt("q1", ({"role": "user", "content": "Where does Tavik live?"},), gold="Dover")
    samples, rewards = _scored(["Dover", "dover.", "York", "I don't know.", "Dover"], "Dover")
    known = knowledge(prompt, samples, rewards)
    assert (known.right, known.wrong, known.abstained) == (0.6, 0.2, 0.2)
    assert known.right_answers[0] == "Dover"  # the most common right answer, as the model wrote it
    assert known.row() == {
        "id": "q1",
        "question": "Where does Tavik live?",
        "gold": "Dover",
        "right": 0.6,
        "wrong": 0.2,
        "abstained": 0.2,
    }
    unscored = [Reward(score=1.0, verdict="correct", correct=True)] * len(samples)
    with pytest.raises(ValueError, match="abstain reward"):
        knowledge(prompt, samples, unscored)


def test_the_abstention_data_keeps_known_answers_and_abstains_on_consistent_errors():
    def entry(qid: str, texts: list[str], gold: str):
        prompt = Prompt(qid, ({"role": "user", "content": f"question {qid}?"},), gold=gold)
        return knowledge(prompt, *_scored(texts, gold))

    known = [
        entry("known", ["Dover", "Dover", "Dover", "York"], "Dover"),  # 3/4 right
        entry("unknown", ["York", "Ely", "Leek", "Ross"], "[]"),  # never right
        entry("unsure", ["Dover", "York", "Ely", "Dover"], "Dover"),  # half right: left out
        entry("declined", ["I don't know"] * 4, "[]"),  # already abstains, never wrong: left out
    ]
    examples = abstention_examples(known, known_at=0.75, unknown_at=1.0, abstain_answer="I don't know.")
    assert [(e["probe_id"], e["messages"][-1]["content"]) for e in examples] == [
        ("known", "Dover"),
        ("unknown", "I don't know."),
    ]
    assert examples[0]["messages"][0] == {"role": "user", "content": "question known?"}


def test_evaluation_metrics_and_calibration():
    greedy, rewards = _scored(["Dover", "York", "I don't know", "Ely"], "Dover")
    metrics = abstention_metrics(rewards)
    assert metrics == {"abstain_rate": 0.25, "hallucination_rate": pytest.approx(2 / 3)}
    assert abstention_metrics([Reward(score=1.0, verdict="correct", correct=True)]) == {}  # no abstain reward
    sampled = [
        [_sample(t) for t in ["Dover", "dover", "Dover", "York"]],  # 3/4 agree with the greedy answer
        [_sample(t) for t in ["Ely", "Leek", "Ross", "York"]],  # 1/4
        [_sample(t) for t in ["I don't know"] * 4],  # 4/4
        [_sample(t) for t in ["Ely", "Ely", "Ely", "Ely"]],  # 4/4, but wrong
    ]
    points = calibration_points(greedy, rewards, sampled)
    assert points == [(0.75, "right"), (0.25, "wrong"), (1.0, "abstained"), (1.0, "wrong")]
    # Answered: (0.75, right) in bin 3, (0.25, wrong) in bin 1, (1.0, wrong) in bin 4.
    assert calibration_error(points) == pytest.approx((0.25 + 0.25 + 1.0) / 3)
    table = calibration_table(points)
    assert [row["questions"] for row in table] == [0, 1, 0, 1, 2]
    assert table[4]["abstained"] == 0.5 and table[4]["accuracy"] == 0.0 and table[0]["accuracy"] is None
