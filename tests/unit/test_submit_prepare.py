"""What `rlsys submit` sends to Ray, built without a cluster."""

import shlex
from pathlib import Path

import pytest

from rlsys.errors import ConfigError
from rlsys.submit import DEFAULT_ADDRESS, EXCLUDES, prepare, resolve_address

ROOT = Path(__file__).resolve().parents[2]
QUICKSTART = str(ROOT / "jobs" / "quickstart.yaml")


def test_entrypoint_runs_the_job_relative_to_the_working_dir_with_its_overrides():
    submission = prepare(QUICKSTART, ["train.steps=20", "tracking.run_name=a b"], working_dir=ROOT, env={})
    assert shlex.split(submission.entrypoint) == [
        "rlsys",
        "run",
        "jobs/quickstart.yaml",
        "train.steps=20",
        "tracking.run_name=a b",
    ]
    assert submission.runtime_env["working_dir"] == str(ROOT)
    assert submission.metadata == {"rlsys_job": "quickstart"}


def test_check_only_runs_a_dry_run_on_the_cluster():
    submission = prepare(QUICKSTART, [], working_dir=ROOT, env={}, check_only=True)
    assert submission.entrypoint == "rlsys run jobs/quickstart.yaml --dry-run"


def test_runtime_env_skips_outputs_and_caches_and_passes_tracking_through():
    env = {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "HOME": "/root", "RLSYS_CACHE_DIR": ""}
    submission = prepare(QUICKSTART, [], working_dir=ROOT, env=env, extra_env={"EXTRA": "1"})
    assert submission.runtime_env["env_vars"] == {"MLFLOW_TRACKING_URI": "http://mlflow:5000", "EXTRA": "1"}
    for pattern in (".git", "runs/", "mlruns/", "mlflow.db", "__pycache__/"):
        assert pattern in submission.runtime_env["excludes"]
    assert submission.runtime_env["excludes"] == EXCLUDES
    assert not any("MLFLOW_TRACKING_URI" in note for note in submission.notes)


def test_missing_tracking_uri_is_noted():
    submission = prepare(QUICKSTART, [], working_dir=ROOT, env={})
    assert any("MLFLOW_TRACKING_URI is not set" in note for note in submission.notes)
    configured = prepare(QUICKSTART, ["tracking.tracking_uri=http://m:5000"], working_dir=ROOT, env={})
    assert not configured.notes


def test_bad_config_raises_before_anything_is_built():
    with pytest.raises(ConfigError, match=r"rollout.replicas: Input should be greater than or equal to 1"):
        prepare(QUICKSTART, ["rollout.replicas=0"], working_dir=ROOT, env={})


def test_model_path_only_on_the_cluster_is_a_note_but_other_errors_still_fail():
    submission = prepare(QUICKSTART, ["model.path=/cluster/models/x"], working_dir=ROOT, env={})
    assert any("/cluster/models/x" in note and "cluster's nodes" in note for note in submission.notes)
    with pytest.raises(ConfigError, match="learner.lrr: unknown key"):
        prepare(QUICKSTART, ["model.path=/cluster/models/x", "learner.lrr=1"], working_dir=ROOT, env={})


def test_job_file_outside_the_working_dir_is_refused(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text("name: elsewhere\n")
    with pytest.raises(ConfigError, match="outside the working dir"):
        prepare(str(job), [], working_dir=ROOT, env={})
    assert prepare(str(job), [], working_dir=tmp_path, env={}).entrypoint == "rlsys run job.yaml"


@pytest.mark.parametrize(
    ("flag", "env", "expected"),
    [
        ("http://flag:8265", {"RAY_ADDRESS": "http://env:8265"}, "http://flag:8265"),
        (None, {"RAY_ADDRESS": "http://env:8265"}, "http://env:8265"),
        (
            None,
            {"RAY_ADDRESS": "http://env:8265", "RAY_API_SERVER_ADDRESS": "http://api:8265"},
            "http://api:8265",
        ),
        (None, {}, DEFAULT_ADDRESS),
    ],
)
def test_address_resolution(flag, env, expected):
    assert resolve_address(flag, env) == expected


@pytest.mark.parametrize(
    "extra, env, message",
    [
        ({"HF_TOKEN": "hf_abc"}, {}, "--env HF_TOKEN: a secret would travel in the job's runtime_env"),
        ({"MY_API_KEY": "x"}, {}, "--env MY_API_KEY"),
        ({}, {"MLFLOW_TRACKING_URI": "https://me:hunter2@mlflow.example:5000"}, "its URI holds a password"),
    ],
)
def test_secrets_never_travel_in_the_runtime_env(extra, env, message):
    with pytest.raises(ConfigError, match=message):
        prepare(QUICKSTART, [], working_dir=ROOT, env=env, extra_env=extra)
    plain = prepare(
        QUICKSTART, [], working_dir=ROOT, env={"MLFLOW_TRACKING_URI": "https://mlflow.example:5000"}
    )
    assert plain.runtime_env["env_vars"] == {"MLFLOW_TRACKING_URI": "https://mlflow.example:5000"}


def test_without_a_working_dir_the_cluster_runs_its_own_code(tmp_path):
    job = tmp_path / "job.yaml"
    job.write_text(Path(QUICKSTART).read_text())
    submission = prepare(str(job), ["train.steps=3"], working_dir=None, env={})
    assert shlex.split(submission.entrypoint) == ["rlsys", "run", str(job), "train.steps=3"]
    assert "working_dir" not in submission.runtime_env and "excludes" not in submission.runtime_env
