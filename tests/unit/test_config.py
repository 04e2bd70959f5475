"""Job config validation: bad input names the key and the fix; the CLI exits with status 2."""

from pathlib import Path

import pytest

from rlsys.cli import main
from rlsys.config import JobConfig, apply_override, describe_schema, load_job
from rlsys.errors import ConfigError

JOBS = Path(__file__).resolve().parents[2] / "jobs"


def test_quickstart_job_validates():
    config = load_job(JOBS / "quickstart.yaml")
    assert config.model.path == "embedded"
    assert config.rollout.samples_per_prompt >= 2


def test_overrides_are_parsed_as_yaml_values():
    config = load_job(
        JOBS / "quickstart.yaml", ["train.steps=7", "learner.lr=3e-5", "verifier.rewards={math: 2}"]
    )
    assert config.train.steps == 7
    assert config.learner.lr == pytest.approx(3e-5)
    assert config.verifier.rewards == {"math": 2}


@pytest.mark.parametrize(
    "override, key, hint",
    [
        ("learner.lrr=1", "learner.lrr", "unknown key"),
        ("rollout.replicas=0", "rollout.replicas", "greater than or equal to 1"),
        ("train.steps=many", "train.steps", "valid integer"),
        ("verifier.rewards={nope: 1}", "verifier.rewards", "choose from"),
        ("model.path=/no/such/model", "model.path", "no Hugging Face model"),
        ("learner.zero_stage=4", "learner.zero_stage", "zero_stage"),
        ("verifier.max_replicas=1", "verifier.max_replicas", "below replicas"),
    ],
)
def test_invalid_values_name_the_key(override, key, hint):
    with pytest.raises(ConfigError) as err:
        load_job(JOBS / "quickstart.yaml", [override, "verifier.replicas=2"])
    assert key in str(err.value)
    assert hint in str(err.value)


@pytest.mark.parametrize("pool", ["rollout", "verifier", "reward_model"])
def test_elastic_pools_declare_their_bounds_once_and_check_them(pool, tmp_path):
    model = tmp_path / "rm"
    model.mkdir()
    (model / "config.json").write_text("{}")
    base = [f"reward_model.path={model}", f"{pool}.replicas=2"]
    config = load_job(JOBS / "quickstart.yaml", [*base, f"{pool}.max_replicas=3"])
    assert getattr(config, pool).max_replicas == 3
    assert load_job(JOBS / "quickstart.yaml", base).model_dump()[pool]["max_replicas"] is None  # fixed size
    with pytest.raises(ConfigError, match=rf"{pool}.max_replicas: below replicas \(2\)"):
        load_job(JOBS / "quickstart.yaml", [*base, f"{pool}.max_replicas=1"])


def test_override_without_equals_sign_is_rejected():
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "train.steps")


def test_missing_and_malformed_job_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_job(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_job(bad)
    listing = tmp_path / "list.yaml"
    listing.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_job(listing)


def test_learner_ranks_cannot_exceed_batch():
    with pytest.raises(ConfigError, match="learner.replicas"):
        load_job(None, ["train.prompts_per_step=1", "rollout.samples_per_prompt=2", "learner.replicas=3"])


def test_cli_exits_2_with_the_key_on_bad_config(capsys):
    assert main(["run", str(JOBS / "quickstart.yaml"), "learner.lrr=1"]) == 2
    assert "learner.lrr: unknown key" in capsys.readouterr().err


def test_cli_dry_run_prints_resolved_config(capsys):
    assert main(["run", str(JOBS / "quickstart.yaml"), "train.steps=3", "--dry-run"]) == 0
    assert "train.steps = 3" in capsys.readouterr().out


def test_every_field_is_described(tmp_path):
    (tmp_path / "config.json").write_text("{}")
    with_optional_sections = load_job(
        None,
        [
            f"reward_model.path={tmp_path}",
            "monitor.every=5",
            "learner.lora.rank=8",
            "algorithm.name=ppo",
        ],
    )
    lines = describe_schema()
    assert [line.split(" ", 1)[0] for line in lines] == list(with_optional_sections.flat())
    assert all(not line.endswith("None") for line in lines)


def test_flat_config_round_trips_sections():
    flat = JobConfig().flat()
    assert flat["learner.zero_stage"] == 2
    assert flat["verifier.rewards"] == {"math": 1.0}


def test_an_override_value_is_never_cut_at_a_hash():
    config = load_job(None, ["task.system_prompt=End with #### N.", "tracking.run_name=run #3"])
    assert config.task.system_prompt == "End with #### N." and config.tracking.run_name == "run #3"


def test_the_embedded_recipe_is_named_from_the_registry():
    assert load_job(None).model.recipe == "arithmetic"
    with pytest.raises(ConfigError, match=r"model.recipe: no embedded recipe 'cod': choose from \["):
        load_job(None, ["model.recipe=cod"])
