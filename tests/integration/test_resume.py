"""Kill the driver with SIGKILL mid-run, resume it, and get exactly the run an uninterrupted job makes: the
same prompts, the same rewards step by step, the same final weights (so no optimizer, KL or loop state was
lost on the way).

Drivers connect to a Ray head of the test's own, as on a cluster: when a driver dies, Ray ends its actors.
"""

import json
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
from conftest import free_port, ray_free_env, ray_head
from safetensors.torch import load_file

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
STEPS, EVERY = 6, 2


@pytest.fixture(scope="module")
def head_address(tmp_path_factory):
    port = free_port()
    env = {**ray_free_env(), "RAY_AUTH_MODE": "disabled"}
    log = tmp_path_factory.mktemp("resume-head") / "ray-start.log"
    with ray_head(["--num-cpus=2", f"--port={port}", "--include-dashboard=false"], env, log):
        yield f"127.0.0.1:{port}"


def _command(model_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "rlsys.cli",
        "run",
        str(ROOT / "jobs" / "quickstart.yaml"),
        "name=resume",
        f"model.path={model_dir}",
        f"train.output_dir={output_dir}",
        f"train.steps={STEPS}",
        f"train.checkpoint_every={EVERY}",
        "train.prompts_per_step=4",
        "train.eval_every=0",
        "train.eval_samples=1",
        "task.eval_size=8",
        "task.train_size=200",
        "rollout.samples_per_prompt=2",
        "rollout.max_new_tokens=12",
        "rollout.kv_cache_gib=0.05",
        # The noise the tiny model answers with scores alike under math and the hidden preference, so no
        # step trained and no loss was logged; this reward tells any two answers apart: every step trains,
        # and the final weights depend on every optimizer state a resume must carry.
        "verifier.rewards={math: 1.0, 'tests.integration.distinct_reward:distinct': 1.0}",
        "learner.lr=1e-3",
        "algorithm.kl_coef=0.05",
        "algorithm.kl_target=0.01",
        "tracking.registered_model=null",
        *extra,
    ]


def _env(head_address: str, store: Path) -> dict[str, str]:
    return {**ray_free_env(), "RAY_ADDRESS": head_address, "MLFLOW_TRACKING_URI": f"sqlite:///{store}"}


def _steps(output_dir: Path) -> list[tuple[int, list[str]]]:
    (prompts_file,) = output_dir.glob("resume/*/prompts.jsonl")
    return [
        (row["step"], row["prompt_ids"]) for row in map(json.loads, prompts_file.read_text().splitlines())
    ]


def test_sigkilled_driver_resumes_where_it_stopped(tiny_model_dir, head_address, tmp_path):
    env = _env(head_address, tmp_path / "mlflow.db")
    whole = subprocess.run(
        _command(tiny_model_dir, tmp_path / "whole"), env=env, capture_output=True, text=True, timeout=900
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    whole_run = re.search(r"mlflow run id: (\w+)", whole.stdout).group(1)

    cut = tmp_path / "cut"
    driver = subprocess.Popen(
        _command(tiny_model_dir, cut), env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    output = []
    for line in driver.stdout:  # the first checkpoint is at step 2; kill after step 3, before the next
        output.append(line)
        if f"step 3/{STEPS}" in line:
            driver.send_signal(signal.SIGKILL)
            break
    driver.wait(timeout=60)
    assert driver.returncode == -signal.SIGKILL, "".join(output)[-3000:]
    (pointer,) = cut.glob("resume/*/latest.json")  # the run's own pointer
    checkpoint = json.loads(pointer.read_text())
    assert checkpoint["step"] == EVERY

    time.sleep(2)  # let the head reap the dead driver's actors and free their CPUs
    resumed = subprocess.run(
        _command(tiny_model_dir, cut, "--resume"), env=env, capture_output=True, text=True, timeout=900
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert f"mlflow run id: {checkpoint['run_id']}" in resumed.stdout

    reference = dict(_steps(tmp_path / "whole"))
    logged = _steps(cut)
    after_resume = dict(logged)  # a redone step's second entry wins
    assert after_resume == reference  # the same prompts, step by step
    redone = len(logged) - len(after_resume)
    assert 1 <= redone <= EVERY  # step 3 ran twice: at most one checkpoint interval is repeated

    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    run = client.get_run(checkpoint["run_id"])
    assert run.info.status == "FINISHED"

    def by_step(run_id: str, key: str) -> dict[int, float]:
        history = sorted(client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
        return {m.step: m.value for m in history}  # a redone step's later value wins

    trained = by_step(run.info.run_id, "train/trained_samples")
    assert set(trained) == set(range(1, STEPS + 1)) and all(trained.values()), trained  # every step trained
    for key in ("train/reward_mean", "train/kl_coef", "train/response_length", "train/policy_loss"):
        resumed_values, whole_values = by_step(run.info.run_id, key), by_step(whole_run, key)
        assert set(resumed_values) == set(range(1, STEPS + 1)), key
        assert resumed_values == pytest.approx(whole_values, abs=1e-6), key
    final = load_file(cut / "resume" / checkpoint["run_id"] / "policy" / "model.safetensors")
    (reference_dir,) = (tmp_path / "whole").glob("resume/*/policy")
    expected = load_file(reference_dir / "model.safetensors")
    assert final.keys() == expected.keys()
    assert max((final[k] - expected[k]).abs().max().item() for k in final) < 1e-5
    initial = load_file(next(tiny_model_dir.glob("*.safetensors")))
    assert max((final[k] - initial[k]).abs().max().item() for k in final if k in initial) > 1e-4  # it trained
