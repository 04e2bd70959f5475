"""Ctrl-C (or SIGTERM) stops a run within seconds: one line says the step reached, the last complete
checkpoint and how to resume; the MLflow run is KILLED; the exit status is 130; no Ray process is left."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _ray_processes(temp_root: Path) -> list[str]:
    """Processes of Ray sessions under `temp_root` (their command lines name their session folder)."""
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            if str(temp_root) in cmdline and "pytest" not in cmdline:
                found.append(f"{proc.name}: {cmdline[:120]}")
    return found


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_stops_cleanly_and_says_how_to_resume(tiny_model_dir, tmp_path, signum):
    temp_root = Path("/tmp") / f"rlsys-int-{os.getpid()}-{signum}"  # short: Ray's socket paths are limited
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAY_")},
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "RAY_TMPDIR": str(temp_root),
        "PYTHONPATH": str(ROOT),  # this checkout's rlsys, though the job runs in tmp_path
    }
    command = [
        sys.executable,
        "-m",
        "rlsys.cli",
        "run",
        str(ROOT / "jobs" / "quickstart.yaml"),
        f"model.path={tiny_model_dir}",
        "train.steps=1000",  # far more than the signal needs: a tiny step takes 0.05 s
        "train.checkpoint_every=1",
        "train.prompts_per_step=2",
        "rollout.samples_per_prompt=2",
        "rollout.max_new_tokens=8",
        "rollout.kv_cache_gib=0.05",
        "task.eval_size=4",
        "task.train_size=100",
        "train.eval_every=0",
        "train.eval_samples=1",
        "tracking.registered_model=null",
        f"train.output_dir={tmp_path / 'runs'}",
    ]
    driver = subprocess.Popen(
        command,
        env=env,
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
        # A test runner started in the background (`cmd &` without job control) ignores SIGINT, and so would
        # the run it starts: Python keeps an ignored SIGINT ignored, as a background job should.
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines = []
    for line in driver.stderr:
        lines.append(line)
        if "checkpoint at step 2" in line:
            break
    stopped = time.monotonic()
    driver.send_signal(signum)
    _, rest = driver.communicate(timeout=120)
    took = time.monotonic() - stopped
    err = "".join(lines) + rest
    assert driver.returncode == 130, err[-3000:]
    # Ray's own shutdown may still log a line after it (seen: "services.py ... internal_kv_get").
    final = [line for line in rest.strip().splitlines() if line.startswith("rlsys: ")][-1]
    assert final.startswith("rlsys: error: interrupted after step "), err[-3000:]
    assert "the last complete checkpoint is step" in final and "--resume" in final
    assert "Traceback" not in rest
    assert took < 60, f"took {took:.0f}s to stop"
    (run,) = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"]).search_runs(["0", "1"])
    assert run.info.status == "KILLED"
    deadline = time.monotonic() + 30
    while _ray_processes(temp_root) and time.monotonic() < deadline:
        time.sleep(1)
    assert _ray_processes(temp_root) == []
