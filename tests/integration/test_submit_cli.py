"""`rlsys submit | status | logs | stop` against a real Ray head that this module starts and stops.

The head runs in its own temp dir, ports and process session, with token authentication and a token of its
own, so it cannot be mistaken for (or stop) another Ray instance on the machine: teardown signals only the
`ray start --block` process it launched (which shuts its node down) and then that session's leftovers.
`ray stop` is never used: it stops every Ray process on the machine.
"""

import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from conftest import free_port, ray_free_env, ray_head

from rlsys.config import load_job

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture(scope="module")
def ray_head_api(tmp_path_factory):
    """A Ray head with a dashboard on a free port; yields the environment a client needs to reach it."""
    dashboard_port = free_port()
    env = ray_free_env()
    env.update(RAY_AUTH_MODE="token", RAY_AUTH_TOKEN=secrets.token_hex(16))
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"  # the job's entrypoint runs `rlsys`
    args = [
        "--num-cpus=2",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        f"--port={free_port()}",
    ]
    log_path = tmp_path_factory.mktemp("ray-head") / "ray-start.log"
    with ray_head(args, env, log_path) as process:
        client_env = {**env, "RAY_API_SERVER_ADDRESS": f"http://127.0.0.1:{dashboard_port}"}
        _wait_for_dashboard(client_env, process, log_path)
        yield client_env


def _api(env: dict, path: str):
    """GET a dashboard REST endpoint with the head's token (no Ray client state in the test process)."""
    request = urllib.request.Request(
        env["RAY_API_SERVER_ADDRESS"] + path, headers={"Authorization": f"Bearer {env['RAY_AUTH_TOKEN']}"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _wait_for_dashboard(env: dict, process: subprocess.Popen, log_path: str) -> None:
    for _ in range(180):
        if process.poll() is not None:
            raise RuntimeError(f"ray start exited with {process.returncode}:\n{Path(log_path).read_text()}")
        try:
            _api(env, "/api/jobs/")
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(1)
    raise RuntimeError(f"no dashboard after 180 s:\n{Path(log_path).read_text()}")


def _rlsys(env: dict, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(BIN / "rlsys"), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout
    )


def test_submitted_job_succeeds_and_its_logs_and_status_are_retrievable(ray_head_api):
    submitted = _rlsys(ray_head_api, "submit", "jobs/quickstart.yaml", "train.steps=7", "--check")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.splitlines()[0]
    assert job_id.startswith("rlsys-quickstart-")
    # The remote `rlsys run --dry-run` printed the resolved config, override included, into the job's logs.
    assert "train.steps = 7" in submitted.stdout
    assert f"job {job_id} SUCCEEDED" in submitted.stderr

    status = _rlsys(ray_head_api, "status", job_id)
    assert status.returncode == 0
    assert "status: SUCCEEDED" in status.stdout
    assert "entrypoint: rlsys run jobs/quickstart.yaml train.steps=7 --dry-run" in status.stdout

    logs = _rlsys(ray_head_api, "logs", job_id)
    assert logs.returncode == 0
    assert "train.steps = 7" in logs.stdout
    # The rest of the resolved config came from the uploaded job file.
    replicas = load_job(ROOT / "jobs" / "quickstart.yaml").rollout.replicas
    assert f"rollout.replicas = {replicas}" in logs.stdout


def test_explicit_address_wins_over_the_environment(ray_head_api):
    address = ray_head_api["RAY_API_SERVER_ADDRESS"]
    env = {
        **ray_head_api,
        "RAY_API_SERVER_ADDRESS": "http://127.0.0.1:9",
        "RAY_ADDRESS": "http://127.0.0.1:9",
    }
    submitted = _rlsys(env, "submit", "jobs/quickstart.yaml", "--check", "--no-wait", "--address", address)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    followed = _rlsys(env, "logs", job_id, "--follow", "--address", address)
    assert followed.returncode == 0
    assert "train.steps = 150" in followed.stdout


def test_bad_config_exits_2_without_submitting(ray_head_api):
    result = _rlsys(ray_head_api, "submit", "jobs/quickstart.yaml", "rollout.replicas=0", "learner.lrr=3")
    assert result.returncode == 2
    assert "rollout.replicas: Input should be greater than or equal to 1" in result.stderr
    assert "learner.lrr: unknown key" in result.stderr
    assert result.stdout == ""
    assert not any("rollout.replicas=0" in job["entrypoint"] for job in _api(ray_head_api, "/api/jobs/"))


def test_job_failing_on_the_cluster_fails_the_submit(ray_head_api):
    # The model path is not on this machine: submitted with a note; the cluster's check then fails the job.
    result = _rlsys(
        ray_head_api, "submit", "jobs/quickstart.yaml", "model.path=/nonexistent/model", "--check"
    )
    assert "note: model.path: no Hugging Face model at '/nonexistent/model'" in result.stderr
    assert result.returncode == 1
    job_id = result.stdout.splitlines()[0]
    assert f"job {job_id} FAILED" in result.stderr
    status = _rlsys(ray_head_api, "status", job_id)
    assert status.returncode == 1
    assert "status: FAILED" in status.stdout


def test_stop_ends_a_running_job(ray_head_api, tmp_path):
    # A job that would run long (the embedded model's build, then training); stopped right away.
    cache = f"RLSYS_CACHE_DIR={tmp_path / 'cache'}"
    submitted = _rlsys(ray_head_api, "submit", "jobs/quickstart.yaml", "--no-wait", "--env", cache)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    stopped = _rlsys(ray_head_api, "stop", job_id)
    assert stopped.returncode == 0
    assert re.search(rf"{job_id}.*status: STOPPED", stopped.stdout), stopped.stdout
    assert "status: STOPPED" in _rlsys(ray_head_api, "status", job_id).stdout
