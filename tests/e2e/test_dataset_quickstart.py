"""Your data and your reward through the command line: `rlsys export-task` writes the arithmetic task in
verl's layout, `rlsys run jobs/dataset_quickstart.yaml` trains on it with a reward function of your own
(`module:function`), and MLflow has it as reward/<function>. The full run (`-m slow`) gains like the
quickstart."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import mlflow
import pytest

ROOT = Path(__file__).resolve().parents[2]
SHAPING = '''
def brevity(responses, golds, timeout_s, **columns):
    """A small bonus for short answers; reaches the job as reward/brevity."""
    return [1.0 / (1 + len(r.split())) for r in responses]
'''


def _rlsys(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"}
    result = subprocess.run(
        [sys.executable, "-m", "rlsys.cli", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    return result


def _dataset_job(tmp_path: Path, *overrides: str) -> tuple[str, str]:
    _rlsys(tmp_path, "export-task", "data/arithmetic", "--layout", "verl")
    result = _rlsys(tmp_path, "run", str(ROOT / "jobs" / "dataset_quickstart.yaml"), *overrides)
    return result.stdout, re.search(r"mlflow run id: (\w+)", result.stdout).group(1)


def test_a_dataset_job_with_a_reward_of_your_own(tmp_path):
    (tmp_path / "shaping.py").write_text(textwrap.dedent(SHAPING))
    stdout, run_id = _dataset_job(
        tmp_path,
        "train.steps=2",
        "task.eval_size=32",
        "train.eval_samples=1",
        "verifier.rewards={math: 1.0, 'shaping:brevity': 0.1}",
    )
    assert re.search(r"eval/accuracy: \d\.\d{3} -> \d\.\d{3}", stdout)
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert client.get_run(run_id).info.status == "FINISHED"
    brevity = client.get_metric_history(run_id, "reward/brevity")
    assert sorted(m.step for m in brevity) == [1, 2] and all(0 < m.value <= 1 for m in brevity)
    assert [m.value for m in client.get_metric_history(run_id, "verifier/error_rate")] == [0.0, 0.0]
    assert {m.step for m in client.get_metric_history(run_id, "eval/accuracy")} == {0, 2}


@pytest.mark.slow
@pytest.mark.timeout(5400)
def test_the_dataset_quickstart_raises_heldout_accuracy(tmp_path):
    stdout, _ = _dataset_job(tmp_path)
    before, after = map(float, re.search(r"eval/accuracy: (\d\.\d+) -> (\d\.\d+)", stdout).groups())
    assert after - before >= 0.10, stdout
