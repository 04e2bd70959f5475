"""The monitor's place in a job: the warning about a reward model trained from another policy, and the
reward-model component reaching the step's metrics (the loop's own monitor behaviour is in test_loop.py)."""

import json

import pytest

from rlsys.batch import training_batch
from rlsys.config import load_job
from rlsys.metrics import rollout_metrics
from rlsys.rlhf.watch import check_reward_model_base
from rlsys.types import Reward, Sample


def test_a_reward_model_from_another_base_is_pointed_out(tmp_path, capsys):
    policy, other = tmp_path / "policy", tmp_path / "other"
    (tmp_path / "rm").mkdir()
    (tmp_path / "rm" / "reward_model.json").write_text(json.dumps({"base_model": str(policy)}))
    check_reward_model_base(str(tmp_path / "rm"), str(policy))
    assert "retrain" not in capsys.readouterr().err
    check_reward_model_base(str(tmp_path / "rm"), str(other))
    assert "retrain it" in capsys.readouterr().err


def _group(prompt_id: str, n: int) -> list[Sample]:
    return [Sample(prompt_id, (1, 2), (3, 4, 5), f"answer {i}", (-0.1,) * 3, "stop", 0) for i in range(n)]


def test_the_reward_model_component_is_logged_next_to_the_verifiers():
    config = load_job(None, ["verifier.rewards={math: 0.0}"])
    groups = [_group("a", 2), _group("b", 2)]
    verified = [[Reward(0.0, {"math": 1.0}, True), Reward(0.0, {"math": 0.0}, False)] for _ in groups]
    scores = [[0.5, -0.5], [2.0, 1.0]]
    rewards = [
        [Reward.combine([v, Reward(s, {"reward_model": s})]) for v, s in zip(group, values, strict=True)]
        for group, values in zip(verified, scores, strict=True)
    ]
    metrics = rollout_metrics(groups, rewards)
    assert metrics["reward/reward_model"] == pytest.approx(0.75) and metrics["reward/math"] == 0.5
    assert metrics["train/reward_mean"] == pytest.approx(0.75)  # math has weight 0: the RM is the reward
    assert metrics["train/accuracy"] == 0.5
    sequences, _ = training_batch(groups, rewards, config.algorithm)
    # Within each group the higher reward-model score gets the positive advantage.
    assert [s.advantage > 0 for s in sequences] == [True, False, True, False]
