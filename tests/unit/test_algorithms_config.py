"""`algorithm.name` presets, explicit keys over presets, impossible combinations named with their fix, and
`training_batch` turning scored groups into advantages for each estimator, by hand."""

import math

import pytest

from rlsys.batch import training_batch
from rlsys.config import AlgorithmConfig, load_job
from rlsys.errors import ConfigError
from rlsys.types import Reward, Sample


@pytest.mark.parametrize(
    "name, expected",
    [
        ("grpo", dict(advantage="group_mean", scale_by_std=True, policy_loss="ppo_clip",
                      aggregation="token_mean", clip_range=(0.2, 0.2), kl_estimator="k3", kl_in_reward=False,
                      overlong_buffer=0.0)),
        ("dr_grpo", dict(advantage="group_mean", scale_by_std=False, aggregation="seq_mean_token_sum_norm")),
        ("rloo", dict(advantage="rloo", scale_by_std=False, aggregation="seq_mean_token_sum_norm")),
        ("reinforce_pp", dict(advantage="batch_norm", kl_estimator="k1", kl_in_reward=True)),
        ("dapo", dict(clip_range=(0.2, 0.28), aggregation="token_mean", overlong_buffer=0.2)),
        ("gspo", dict(policy_loss="gspo", aggregation="seq_mean_token_mean", clip_range=(3e-4, 4e-4))),
        ("cispo", dict(policy_loss="cispo", aggregation="token_mean", clip_range=(1.0, 0.28))),
        ("ppo", dict(advantage="gae", scale_by_std=False, policy_loss="ppo_clip",
                     drop_uninformative_groups=False, gamma=1.0, gae_lambda=0.95, value_clip=0.2)),
        ("rft", dict(advantage="rejection", policy_loss="nll", drop_uninformative_groups=False,
                     min_reward=1.0)),
    ],
)  # fmt: skip
def test_name_presets_the_knobs(name, expected):
    algorithm = load_job(None, [f"algorithm.name={name}"]).algorithm
    assert {key: getattr(algorithm, key) for key in expected} == expected


def test_a_key_set_in_the_job_wins_over_the_preset():
    algorithm = load_job(
        None,
        ["algorithm.name=dapo", "algorithm.clip_eps_high=0.3", "algorithm.aggregation=seq_mean_token_mean"],
    ).algorithm
    assert algorithm.clip_range == (0.2, 0.3) and algorithm.aggregation == "seq_mean_token_mean"
    assert algorithm.overlong_buffer == 0.2  # the rest of the preset stays
    assert AlgorithmConfig(name="gspo", clip_eps_low=0.1).clip_range == (0.1, 4e-4)
    assert AlgorithmConfig(clip_eps=0.1).clip_range == (0.1, 0.1)


def test_the_response_budget_defaults_to_the_rollouts():
    assert load_job(None, ["rollout.max_new_tokens=64"]).algorithm.max_response_tokens == 64
    explicit = load_job(None, ["rollout.max_new_tokens=64", "algorithm.max_response_tokens=32"])
    assert explicit.algorithm.max_response_tokens == 32
    assert load_job(None).flat()["algorithm.max_response_tokens"] == 128  # logged resolved


@pytest.mark.parametrize(
    "overrides, key, fix",
    [
        (["algorithm.name=a2c"], "algorithm.name", "Input should be"),
        (["algorithm.name=rloo", "algorithm.scale_by_std=true"], "algorithm.scale_by_std",
         "set scale_by_std=false"),
        (["algorithm.advantage=batch_norm"], "algorithm.scale_by_std", "set scale_by_std=false"),
        (["algorithm.name=rft", "algorithm.drop_uninformative_groups=true"],
         "algorithm.drop_uninformative_groups", "set drop_uninformative_groups=false"),
        (["algorithm.name=gspo", "algorithm.kl_in_reward=true"], "algorithm.kl_in_reward",
         "set kl_in_reward=false"),
        (["algorithm.kl_estimator=k1", "algorithm.kl_coef=0.1"], "algorithm.kl_estimator", "use k2 or k3"),
        (["algorithm.clip_eps_low=1.5"], "algorithm.clip_eps_low", "less than or equal to 1"),
        (["algorithm.overlong_buffer=0.01", "rollout.max_new_tokens=16"], "algorithm.overlong_buffer",
         "raise it or set 0"),
    ],
)  # fmt: skip
def test_impossible_combinations_name_the_key_and_the_fix(overrides, key, fix):
    with pytest.raises(ConfigError) as err:
        load_job(None, overrides)
    assert f"  {key}:" in str(err.value) and fix in str(err.value)


def test_k1_is_allowed_where_it_is_a_reward_or_unused():
    load_job(None, ["algorithm.name=reinforce_pp", "algorithm.kl_coef=0.1"])
    load_job(None, ["algorithm.kl_estimator=k1"])


def _scored(scores: list[list[float]], lengths: list[list[int]] | None = None):
    """Groups of samples with these rewards and response lengths (3 tokens unless given)."""
    lengths = lengths or [[3] * len(row) for row in scores]
    groups = [
        [
            Sample(f"p{p}", (1, 2), tuple(range(10, 10 + n)), f"answer {g}", (-0.1,) * n, "stop", 0)
            for g, n in enumerate(row)
        ]
        for p, row in enumerate(lengths)
    ]
    return groups, [[Reward(score) for score in row] for row in scores]


def _advantages(name: str, scores, lengths=None, *overrides: str) -> tuple[list[float], float]:
    algorithm = load_job(None, [f"algorithm.name={name}", *overrides]).algorithm
    sequences, kept = training_batch(*_scored(scores, lengths), algorithm)
    return [s.advantage for s in sequences], kept


SCORES = [[1, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 1]]


def test_grpo_and_dr_grpo_batches_by_hand():
    third = 0.25 / (math.sqrt(3) / 4)
    grpo, kept = _advantages("grpo", SCORES)
    assert grpo == pytest.approx([1, -1, -1, 1, -third, -third, -third, 3 * third], abs=1e-5)
    assert kept == pytest.approx(2 / 3)
    dr_grpo, _ = _advantages("dr_grpo", SCORES)
    assert dr_grpo == pytest.approx([0.5, -0.5, -0.5, 0.5, -0.25, -0.25, -0.25, 0.75])


def test_rloo_batch_by_hand():
    rloo, kept = _advantages("rloo", SCORES)
    assert rloo == pytest.approx([2 / 3, -2 / 3, -2 / 3, 2 / 3, -1 / 3, -1 / 3, -1 / 3, 1.0])
    assert kept == pytest.approx(2 / 3)


def test_reinforce_pp_batch_normalises_over_the_kept_tokens():
    # The all-equal group is dropped; the rest, group-centred: [.5, -.5, -.5, .5] and [-.25 x3, .75], mean 0
    # over equal lengths, variance (4 * .25 + 3 * .0625 + .5625) / 8 = 0.21875.
    advantages, _ = _advantages("reinforce_pp", SCORES)
    centred = [0.5, -0.5, -0.5, 0.5, -0.25, -0.25, -0.25, 0.75]
    assert advantages == pytest.approx([c / math.sqrt(0.21875) for c in centred], abs=1e-5)


def test_rft_keeps_the_correct_samples_with_weight_one():
    advantages, kept = _advantages("rft", [[1, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 0]])
    assert advantages == [1.0] * 6  # 2 of the first group, all 4 of the solved one
    assert kept == pytest.approx(2 / 3)
    strict, _ = _advantages("rft", [[1, 0.5], [0.5, 0.0]], None, "algorithm.min_reward=0.5")
    assert strict == [1.0, 1.0, 1.0]


def test_dapo_shapes_overlong_answers_before_the_baseline():
    # Budget 4 tokens, buffer 2: lengths 2, 3, 4 lose 0, 0.5, 1. Group 1 scores [1, 1] at lengths [2, 4] ->
    # [1, 0]: informative, ±1. Group 2 scores [0, 0] at lengths [2, 2] stays equal: dropped.
    advantages, kept = _advantages(
        "dapo",
        [[1, 1], [0, 0]],
        [[2, 4], [2, 2]],
        "algorithm.max_response_tokens=4",
        "algorithm.overlong_buffer=0.5",
    )
    assert advantages == pytest.approx([1.0, -1.0], abs=1e-5)
    assert kept == 0.5
    unshaped, _ = _advantages("grpo", [[1, 1], [0, 0]], [[2, 4], [2, 2]])
    assert unshaped == []
