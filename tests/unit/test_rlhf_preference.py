"""The quickstart's hidden preference: its formula on hand-made answers, ties, perturbations, and the
reward-model job's pure helpers (config errors, held-out split, batching), and how a reward model's score
joins the verifiers' reward."""

import random

import pytest
import torch

from rlsys.errors import ConfigError
from rlsys.rlhf.config import load_rm_config
from rlsys.rlhf.data import PreferenceDataError, Ranking, split_heldout
from rlsys.rlhf.losses import bradley_terry_loss, pair_metrics
from rlsys.rlhf.preference import (
    hidden_preference_reward,
    judge,
    operations_in,
    perturb,
    preference_scores,
    rank,
)
from rlsys.rlhf.reward_model import (
    EncodedRanking,
    heldout_metrics,
    ranking_micro_batches,
    ranking_tensors,
    unflatten,
)
from rlsys.tasks.arithmetic import Problem, bare_solution, problems, worked_solution
from rlsys.types import Reward

PROBLEM = Problem(
    question="Sam has 6 coins. Sam finds 2 more coins. The number of coins becomes 3 times as large. "
    "How many coins are there at the end?",
    steps=("6 + 2 = 8", "8 * 3 = 24"),
    answer=24,
)


def test_operations_are_read_from_the_question():
    assert operations_in(PROBLEM.question) == 2
    assert all(operations_in(p.question) == len(p.steps) for p in problems("eval", 300, 0))


@pytest.mark.parametrize(
    "response, score",
    [
        ("6 + 2 = 8\n8 * 3 = 24\n#### 24", 1.75),  # correct, complete, concise: the best
        ("#### 24", 1.0),  # bare but right
        ("6 + 2 = 8\n#### 24", 1.5),  # half the work shown
        ("6 + 2 = 8\n8 * 3 = 25\n#### 25", 0.25 + 0.25 - 0.1),  # one true step, one false, wrong answer
        ("6 + 2 = 8\n8 * 3 = 24\n6 + 2 = 8\n8 * 3 = 24\n#### 24", 1.75 - 0.5),  # two padding lines
        ("#### 7", 0.0),
        ("the the the", -0.25),  # no final answer at all
        ("16 / 2 = 8\n8 * 3 = 24\n#### 24", 1.75),  # exact division counts as true
    ],
)
def test_judge_by_hand(response, score):
    assert judge(PROBLEM.question, response, PROBLEM.answer).score == pytest.approx(score)


def test_rank_ties_equal_scores_and_orders_best_first():
    responses = ["#### 24", "6 + 2 = 8\n8 * 3 = 24\n#### 24", "#### 7", "#### 24"]
    ranking = rank(PROBLEM, responses)
    assert ranking.ranks == (1, 0, 2, 1)
    assert ranking.prompt == ({"role": "user", "content": PROBLEM.question},)
    assert preference_scores([PROBLEM.question], ["#### 24"], ["24"]) == [1.0]


def test_perturbations_never_help():
    rng = random.Random(0)
    for p in problems("eval", 200, 0):
        for response in (worked_solution(p), bare_solution(p)):
            worse = perturb(response, p, rng)
            assert judge(p.question, worse, p.answer).score < judge(p.question, response, p.answer).score


def test_rm_config_errors_name_key_and_fix(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_rm_config(None, ["train.lrr=3", "data.path=/no/such.jsonl", "train.loss=hinge"])
    message = str(caught.value)
    assert "train.lrr: unknown key; remove it or check its spelling" in message
    assert "data.path: no file at '/no/such.jsonl': give a JSONL file of rankings or pairs" in message
    assert "train.loss: Input should be 'bradley_terry' or 'plackett_luce'" in message


def test_heldout_split_keeps_each_prompt_on_one_side():
    rankings = [
        Ranking(({"role": "user", "content": f"q{i % 50}"},), ("a", "b"), (0, 1), id=str(i))
        for i in range(200)
    ]
    train, heldout = split_heldout(rankings, 0.2)
    assert len(train) + len(heldout) == 200
    assert not {r.prompt[0]["content"] for r in train} & {r.prompt[0]["content"] for r in heldout}
    with pytest.raises(PreferenceDataError, match="change data.heldout_share"):
        split_heldout(rankings[:1], 0.2)


def test_ranking_tensors_pad_variable_k():
    batch = [EncodedRanking(((1, 2), (3,), (4, 5, 6)), (0, 1, 1)), EncodedRanking(((7,), (8, 9)), (1, 0))]
    input_ids, mask, ranks, valid, sizes = ranking_tensors(batch, pad_id=0)
    assert input_ids.shape == (5, 3) and mask.sum().item() == 9 and sizes == [3, 2]
    assert ranks.tolist() == [[0, 1, 1], [1, 0, 0]] and valid.tolist() == [[True] * 3, [True, True, False]]
    assert unflatten(torch.arange(5.0), sizes).tolist() == [[0.0, 1.0, 2.0], [3.0, 4.0, 0.0]]


def test_micro_batches_keep_rankings_whole_under_both_caps():
    short = EncodedRanking(((1, 2), (3,)), (0, 1))  # 2 responses, longest 2
    long = EncodedRanking(((1,) * 10, (2,) * 4, (3,)), (0, 1, 2))  # 3 responses, longest 10
    rankings = [short, short, long, short]
    assert [len(chunk) for chunk in ranking_micro_batches(rankings, max_rankings=2)] == [2, 2]
    # 30 padded tokens at most: the long ranking (3 x 10) goes alone, and alone it may exceed a lower cap.
    assert [len(chunk) for chunk in ranking_micro_batches(rankings, 8, max_tokens=30)] == [2, 1, 1]
    assert [len(chunk) for chunk in ranking_micro_batches(rankings, 8, max_tokens=4)] == [1, 1, 1, 1]
    assert ranking_micro_batches([], 4) == []


def test_heldout_metrics_over_rankings_of_different_sizes():
    scores, ranks = [[2.0, 0.0, 1.0], [0.5, 1.5]], [(0, 1, 2), (1, 0)]
    metrics = heldout_metrics("bradley_terry", scores, ranks)
    rewards = torch.tensor([[2.0, 0.0, 1.0], [1.5, 0.5, 0.0]])  # the second reordered: padding goes last
    padded_ranks = torch.tensor([[0, 1, 2], [0, 1, 0]])
    valid = torch.tensor([[True, True, True], [True, True, False]])
    loss, _ = bradley_terry_loss(rewards, padded_ranks, valid)
    assert metrics["loss"] == pytest.approx(loss.item())
    assert {k: metrics[k] for k in ("pair_accuracy", "margin", "pairs")} == pair_metrics(
        rewards, padded_ranks, valid
    )
    assert metrics["score_median"] == 1.0 and metrics["score_scale"] > 0


def test_rewards_of_several_scorers_combine_into_one():
    verified = Reward(1.0, {"math": 1.0}, correct=True, verdict="correct")
    modelled = Reward(0.5 * 2.0, {"reward_model": 2.0})  # weight 0.5, score 2.0; judges nothing
    combined = Reward.combine([verified, modelled])
    assert combined.score == 2.0 and combined.correct is True and combined.verdict == "correct"
    assert combined.components == {"math": 1.0, "reward_model": 2.0}
    wrong = Reward.combine([Reward(0.0, {"math": 0.0}, correct=False), modelled])
    assert wrong.correct is False
    assert Reward.combine([modelled]).correct is None  # no scorer judged correctness
    with pytest.raises(ValueError, match="scored twice"):
        Reward.combine([combined, modelled])


def test_the_hidden_preference_is_a_reward_function_of_the_question():
    problem = problems("eval", 1, seed=0)[0]
    texts = [worked_solution(problem), bare_solution(problem), "no idea"]
    chats = [[{"role": "user", "content": problem.question}]] * 3
    scores = hidden_preference_reward(texts, [str(problem.answer)] * 3, 1.0, prompts=chats)
    assert [s.value for s in scores] == preference_scores([problem.question] * 3, texts, [problem.answer] * 3)
    assert scores[0].value > scores[1].value > scores[2].value and scores[0].correct is None
