"""The RLHF sections of the job config: reward_model, monitor, and the adaptive KL of the algorithm."""

from pathlib import Path

import pytest

from rlsys.cli import main
from rlsys.config import load_job
from rlsys.errors import ConfigError

JOBS = Path(__file__).resolve().parents[2] / "jobs"
RLHF = JOBS / "rlhf_quickstart.yaml"


@pytest.fixture
def reward_model_dir(tmp_path) -> Path:
    """Enough of a saved reward model for validation: a directory with a config.json."""
    (tmp_path / "config.json").write_text("{}")
    return tmp_path


def test_rlhf_quickstart_validates_with_a_reward_model(reward_model_dir):
    config = load_job(RLHF, [f"reward_model.path={reward_model_dir}"])
    assert config.reward_model.path == str(reward_model_dir)
    assert config.reward_model.name == "reward_model" and config.reward_model.weight == 1.0
    assert config.monitor.gold == "hidden_preference" and config.monitor.every >= 1
    assert config.verifier.rewards == {"math": 0.0, "hidden_preference": 0.0}  # logged, not optimised
    assert config.monitor.window == 3 and config.monitor.max_outlier_share == 0.5  # thresholds, same section


def test_rlhf_quickstart_fits_the_two_core_reference_machine(reward_model_dir):
    config = load_job(RLHF, [f"reward_model.path={reward_model_dir}"])
    pools = [config.rollout, config.verifier, config.reward_model, config.learner]
    assert sum(pool.replicas * pool.num_cpus for pool in pools) <= 2  # more would leave an actor unplaced


def test_sections_are_optional():
    config = load_job(JOBS / "quickstart.yaml")
    assert config.reward_model is None and config.monitor is None and config.algorithm.kl_target is None
    assert config.flat()["reward_model"] is None


def test_rlhf_quickstart_without_reward_model_path_says_how_to_get_one(capsys):
    assert main(["run", str(RLHF), "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "reward_model.path: no reward model given" in err and "rlsys train-rm" in err


@pytest.mark.parametrize(
    "override, key, hint",
    [
        ("reward_model.path=/no/such/dir", "reward_model.path", "no reward model at '/no/such/dir'"),
        ("reward_model.batch_size=0", "reward_model.batch_size", "greater than or equal to 1"),
        ("reward_model.replicas=0", "reward_model.replicas", "greater than or equal to 1"),
        ("reward_model.nme=x", "reward_model.nme", "unknown key"),
        ("reward_model.name=math", "reward_model.name", "also a verifier reward"),
        ("monitor.gold=judge", "monitor.gold", "'judge' is not a verifier reward of this job"),
        ("monitor.every=0", "monitor.every", "greater than or equal to 1"),
        ("monitor.window=0", "monitor.window", "greater than or equal to 1"),
        ("monitor.max_repetiton=0.2", "monitor.max_repetiton", "unknown key"),
        ("monitor.prompts=1000", "monitor.prompts", "task.eval_size = 256"),
        ("algorithm.kl_target=-1", "algorithm.kl_target", "greater than 0"),
    ],
)
def test_invalid_rlhf_values_name_the_key(reward_model_dir, override, key, hint):
    overrides = (
        [override]
        if override.startswith("reward_model.path")
        else [f"reward_model.path={reward_model_dir}", override]
    )
    with pytest.raises(ConfigError) as err:
        load_job(RLHF, overrides)
    assert f"  {key}: " in str(err.value)
    assert hint in str(err.value)


def test_adaptive_kl_needs_a_starting_beta(reward_model_dir):
    path = f"reward_model.path={reward_model_dir}"
    assert load_job(RLHF, [path, "algorithm.kl_target=0.05"]).algorithm.kl_target == 0.05
    with pytest.raises(ConfigError) as err:
        load_job(RLHF, [path, "algorithm.kl_target=0.05", "algorithm.kl_coef=0"])
    assert "  algorithm.kl_coef: an adaptive KL" in str(err.value) and "(got 0.0)" in str(err.value)


def test_monitor_gold_may_name_a_verifier_reward():
    config = load_job(JOBS / "quickstart.yaml", ["monitor.gold=math"])
    assert config.monitor.gold == "math" and config.reward_model is None
    assert load_job(JOBS / "quickstart.yaml", ["monitor.gold=null"]).monitor.gold is None


def test_cli_exits_2_naming_the_monitor_key(reward_model_dir, capsys):
    code = main(
        ["run", str(RLHF), f"reward_model.path={reward_model_dir}", "monitor.gold=people", "--dry-run"]
    )
    assert code == 2
    assert "monitor.gold: 'people' is not a verifier reward" in capsys.readouterr().err
