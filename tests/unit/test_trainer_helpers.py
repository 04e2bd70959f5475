"""The learner loop's small pure helpers: when periodic work is due, and what a step's batch logs."""

import json
from pathlib import Path

import pytest

from rlsys.config import load_job
from rlsys.rlhf.combine import add_component
from rlsys.rlhf.kl import KLController
from rlsys.trainer import is_due, training_batch
from rlsys.types import Reward, Sample

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    "step, every, at_zero, due",
    [(0, 5, False, False), (0, 5, True, True), (5, 5, False, True), (7, 5, True, False), (5, 0, True, False)],
)
def test_is_due(step, every, at_zero, due):
    assert is_due(step, every, at_zero=at_zero) is due


def _group(prompt_id: str, n: int) -> list[Sample]:
    return [Sample(prompt_id, (1, 2), (3, 4, 5), f"answer {i}", (-0.1,) * 3, "stop", 0) for i in range(n)]


def test_training_batch_logs_the_reward_model_component_next_to_the_verifiers():
    config = load_job(None, ["verifier.rewards={math: 0.0}"])
    groups = [_group("a", 2), _group("b", 2)]
    verified = [[Reward(0.0, {"math": 1.0}, True), Reward(0.0, {"math": 0.0})] for _ in groups]
    scores = [[0.5, -0.5], [2.0, 1.0]]
    rewards = [
        add_component(group, values, name="reward_model", weight=1.0)
        for group, values in zip(verified, scores, strict=True)
    ]
    sequences, metrics = training_batch(groups, rewards, config)
    assert metrics["reward/reward_model"] == pytest.approx(0.75) and metrics["reward/math"] == 0.5
    assert metrics["train/reward_mean"] == pytest.approx(0.75)  # math has weight 0: the RM is the reward
    assert metrics["train/accuracy"] == 0.5
    # Within each group the higher reward-model score gets the positive advantage.
    assert [s.advantage > 0 for s in sequences] == [True, False, True, False]


def test_kl_controller_is_fixed_without_a_target():
    config = load_job(None, ["algorithm.kl_coef=0.05"])
    controller = KLController(
        config.algorithm.kl_coef, config.algorithm.kl_target, config.algorithm.kl_horizon
    )
    assert controller.update(kl=10.0, n_samples=128) == 0.05


def test_a_reward_model_from_another_base_is_pointed_out(tmp_path, capsys):
    from rlsys.trainer import check_reward_model_base

    policy, other = tmp_path / "policy", tmp_path / "other"
    (tmp_path / "rm").mkdir()
    (tmp_path / "rm" / "reward_model.json").write_text(json.dumps({"base_model": str(policy)}))
    check_reward_model_base(str(tmp_path / "rm"), str(policy))
    assert "retrain" not in capsys.readouterr().err
    check_reward_model_base(str(tmp_path / "rm"), str(other))
    assert "retrain it" in capsys.readouterr().err


def test_resource_shortfall_names_the_pools_that_do_not_fit():
    from rlsys.trainer import resource_shortfall

    config = load_job(
        ROOT / "jobs" / "quickstart.yaml",
        ["rollout.replicas=3", "learner.num_gpus=1", "verifier.resources={verifier_node: 1}"],
    )
    lines = resource_shortfall(config, {"CPU": 2.0, "GPU": 1.0})
    # rollout 3 x 0.5 + verifier 0.25 + learner 0.75 = 2.5 CPUs; the GPU fits; no node has verifier_node.
    assert lines == [
        "CPU: the pools reserve 2.5 (rollout 3 x 0.5, verifier 1 x 0.25, learner 1 x 0.75), "
        "the cluster has 2",
        "verifier_node: the pools reserve 1 (verifier 1 x 1), the cluster has 0",
    ]
    assert resource_shortfall(load_job(ROOT / "jobs" / "quickstart.yaml"), {"CPU": 2.0}) == []
