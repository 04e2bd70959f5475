"""The command line itself: its subcommands, `bootstrap` against a cache, the quiet console, and the one
exit-2 handler that every error a user can cause goes through (a run, a reward-model job, a submission).

Whole runs through the command line are in tests/integration (`train-rm`, `run --resume`, `submit`,
`status`, `logs`, `stop`) and tests/e2e (the quickstart).
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rlsys.bootstrap.build import DEFAULT_RECIPE, recipe_key
from rlsys.cli import main

ROOT = Path(__file__).resolve().parents[2]
SUBCOMMANDS = ("run", "train-rm", "bootstrap", "export-task", "submit", "status", "logs", "stop")


def _rlsys(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "rlsys.cli", *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_help_lists_every_subcommand_and_each_has_its_own():
    listed = _rlsys("--help")
    assert listed.returncode == 0
    for command in SUBCOMMANDS:
        assert command in listed.stdout
        with pytest.raises(SystemExit) as exit_:
            main([command, "--help"])
        assert exit_.value.code == 0


def test_bootstrap_prints_the_cached_model_without_building_it(tmp_path):
    cached = tmp_path / "models" / f"embedded-{recipe_key(DEFAULT_RECIPE)}-seed3"
    cached.mkdir(parents=True)
    (cached / "config.json").write_text("{}")
    result = _rlsys("bootstrap", "--seed", "3", env={"RLSYS_CACHE_DIR": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(cached)
    assert sorted(p.name for p in cached.parent.iterdir()) == [cached.name]  # no build was started


def test_bootstrap_rejects_a_seed_that_is_not_a_number():
    result = _rlsys("bootstrap", "--seed", "x")
    assert result.returncode == 2 and "invalid int value: 'x'" in result.stderr


@pytest.mark.parametrize(
    "argv, message",
    [
        (["run", "jobs/quickstart.yaml", "train.steps=[1,"], "train.steps=[1,': the value is not valid YAML"),
        (["run", "jobs/quickstart.yaml", "learner.lrr=3"], "learner.lrr: unknown key"),
        (["run"], "name a job YAML"),
        (["train-rm", "train.epochs=1"], "name a job YAML before the key=value overrides"),
        (
            ["train-rm", "jobs/rm_quickstart.yaml", "train.zero_stage=3"],
            "train.zero_stage: moved out of train: set learner.zero_stage",
        ),
        (["train-rm", "jobs/rm_quickstart.yaml", "data.path=/no/such.jsonl"], "no file at '/no/such.jsonl'"),
        (["submit", "jobs/quickstart.yaml", "--env", "NOEQUALS"], "--env 'NOEQUALS' is not KEY=VALUE"),
        (["submit", "jobs/quickstart.yaml", "--env", "WANDB_API_KEY=x"], "a secret would travel"),
        (["status", "x", "--address", "http://127.0.0.1:9"], "--address: no Ray job API at"),
        (["run", "jobs/quickstart.yaml", "learner.lr=.inf"], "learner.lr: Input should be a finite number"),
        (["run", "jobs/quickstart.yaml", "verifier.timeout_s=1e9"], "less than or equal to 3600"),
        (
            ["run", "jobs/quickstart.yaml", "rollout.temperature=.nan"],
            "rollout.temperature: Input should be a finite",
        ),
        (
            ["run", "jobs/quickstart.yaml", "algorithm.clip_eps=.inf"],
            "algorithm.clip_eps: Input should be a finite",
        ),
        (
            ["run", "jobs/quickstart.yaml", "verifier.rewards={math: .nan}"],
            "verifier.rewards.math: Input should be a finite number",
        ),
        (
            ["run", "jobs/quickstart.yaml", "task.train_size=1000000000000"],
            "task.train_size: Input should be less",
        ),
        (["run", "jobs/quickstart.yaml", "name=../.."], "name: '../..' names a folder"),
        (
            ["run", "jobs/quickstart.yaml", "train.output_dir=/proc/rlsys"],
            "train.output_dir: cannot write to",
        ),
        (["run", "jobs/quickstart.yaml", "--resume", "train.steps=3"], "write overrides before --resume"),
    ],
)
def test_bad_input_exits_2_with_one_line(argv, message, capsys, monkeypatch):
    monkeypatch.chdir(ROOT)
    assert main([*argv, "--dry-run"] if argv[0] in ("run", "train-rm") else argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("rlsys: error:") and message in err and "Traceback" not in err


@pytest.mark.parametrize(
    "content, message",
    [
        (b"\xff\xfe not text", "not UTF-8 text"),
        (b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
        (b'{"prompt": "2+2?", "responses": ["4", "5"], "ranking": [[0, 1]]}', "every response ties"),
        (b'{"prompt": "2+2?", "responses": ["4", "5"], "ranking": [0, 1]}', "rankings split into"),
    ],
)
def test_bad_rankings_exit_2_on_a_dry_run(tmp_path, capsys, content, message):
    data = tmp_path / "rankings.jsonl"
    data.write_bytes(content + b"\n")
    assert (
        main(["train-rm", str(ROOT / "jobs" / "rm_quickstart.yaml"), f"data.path={data}", "--dry-run"]) == 2
    )
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err


def test_a_job_file_that_is_not_utf8_exits_2(tmp_path, capsys):
    job = tmp_path / "job.yaml"
    job.write_bytes(b"name: caf\xe9\n")
    assert main(["run", str(job), "--dry-run"]) == 2
    assert "is not UTF-8 text (byte 9): save it as UTF-8" in capsys.readouterr().err


def test_bad_preference_data_exits_2_naming_the_line(tmp_path, capsys):
    """A data error raised while the job runs (not at validation) goes through the same handler."""
    data = tmp_path / "rankings.jsonl"
    data.write_text('{"prompt": "2 + 2?", "responses": ["#### 4", "#### 5"], "ranking": [0, 1]}\nnot json\n')
    (tmp_path / "config.json").write_text("{}")  # a model directory as far as validation goes; never loaded
    code = main(
        [
            "train-rm",
            str(ROOT / "jobs" / "rm_quickstart.yaml"),
            f"data.path={data}",
            f"model.path={tmp_path}",
            f"train.output_dir={tmp_path / 'runs'}",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"{data}:2: not valid JSON" in err and "Traceback" not in err


def test_quiet_silences_third_party_notices_here_and_in_the_actors(monkeypatch):
    import logging

    from rlsys.console import QUIET_ENV, QUIET_LOGGERS, actor_runtime_env, quiet

    monkeypatch.delenv("RLSYS_VERBOSE", raising=False)
    for key in QUIET_ENV:  # set then deleted: monkeypatch restores what was there before the test
        monkeypatch.setenv(key, "")
        monkeypatch.delenv(key)
    quiet()
    assert all(logging.getLogger(name).level == level for name, level in QUIET_LOGGERS.items())
    assert all(os.environ[key] == value for key, value in QUIET_ENV.items())
    env = actor_runtime_env()
    assert env["worker_process_setup_hook"] == "rlsys.console.quiet"
    assert env["env_vars"]["TORCH_CPP_LOG_LEVEL"] == "ERROR"
    monkeypatch.setenv("RLSYS_VERBOSE", "1")
    verbose_env = actor_runtime_env()
    assert "worker_process_setup_hook" not in verbose_env and "TQDM_DISABLE" not in verbose_env["env_vars"]


def test_export_task_writes_files_a_dataset_job_reads(tmp_path):
    result = _rlsys(
        "export-task",
        str(tmp_path / "data"),
        "--layout",
        "trl",
        "--format",
        "jsonl",
        "--train-size",
        "50",
        "--eval-size",
        "10",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "train:",
        str(tmp_path / "data" / "train.jsonl"),
        "eval:",
        str(tmp_path / "data" / "eval.jsonl"),
    ]
    dry = _rlsys(
        "run",
        str(ROOT / "jobs" / "dataset_quickstart.yaml"),
        f"task.train={tmp_path}/data/train.jsonl",
        f"task.eval={tmp_path}/data/eval.jsonl",
        "--dry-run",
    )
    assert dry.returncode == 0, dry.stderr
    assert "50 rows" in dry.stdout and "answer from 'answer' (recognised)" in dry.stdout
    bad = _rlsys("export-task", str(tmp_path / "x"), "--layout", "nope")
    assert bad.returncode == 2 and "invalid choice: 'nope'" in bad.stderr


def test_status_of_a_run_shows_its_progress_from_mlflow(mlflow_store, capsys):
    import mlflow

    with mlflow.start_run(run_name="quickstart") as run:
        mlflow.log_params({"train.steps": 150})
        for step in (1, 2, 3):
            mlflow.log_metrics({"train/reward_mean": 0.1 * step, "pool/rollout_replicas": 2}, step=step)
        mlflow.log_metrics({"eval/accuracy": 0.25, "eval/accuracy_sampled": 0.2}, step=2)
        mlflow.set_tags(
            {
                "monitor.hacking_alert": "true",
                "monitor.alert_step": "3",
                "monitor.alert_reason": "gold fell",
                "rlsys.alert.logprob_mismatch": "step 2: 0.3100",
                "rlsys.checkpoint.step-2.sha256": "abc",
            }
        )
    assert main(["status", run.info.run_id]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"mlflow run: {run.info.run_id} (quickstart), FINISHED"
    assert out[1].startswith("step: 3 of 150  train/reward_mean 0.300")
    assert out[2:] == [
        "eval at step 2: accuracy 0.250  sampled 0.200",
        "pools: rollout_replicas 2",
        "reward-hacking alert at step 3: gold fell",
        "alert logprob_mismatch: step 2: 0.3100",
        "last checkpoint: step 2",
    ]
