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
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop_session(process: subprocess.Popen) -> None:
    """SIGTERM `ray start --block` (it tears its node down), then kill what is left of its session."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    try:
        os.killpg(
            process.pid, signal.SIGKILL
        )  # the session's process group; `start_new_session` made it ours
    except ProcessLookupError:
        pass


@pytest.fixture(scope="module")
def ray_head(tmp_path_factory):
    """A Ray head with a dashboard on a free port; yields the environment a client needs to reach it."""
    # A short path: Ray's unix sockets live under the temp dir, and socket paths are limited to 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="rlsys-ray-", dir="/tmp")
    dashboard_port = _free_port()
    auth = {"RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": secrets.token_hex(16)}
    env = {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}
    env.update(auth, PATH=f"{BIN}{os.pathsep}{env['PATH']}")  # the job's entrypoint runs `rlsys`
    command = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        "--num-cpus=2",
        "--disable-usage-stats",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        f"--port={_free_port()}",
        f"--dashboard-agent-listen-port={_free_port()}",
        f"--ray-client-server-port={_free_port()}",
        f"--temp-dir={temp_dir}",
    ]
    log = open(tmp_path_factory.mktemp("ray-head") / "ray-start.log", "w")  # noqa: SIM115
    process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    address = f"http://127.0.0.1:{dashboard_port}"
    client_env = {**env, "RAY_API_SERVER_ADDRESS": address}
    try:
        _wait_for_dashboard(client_env, process, log.name)
        yield client_env
    finally:
        _stop_session(process)
        log.close()
        shutil.rmtree(temp_dir, ignore_errors=True)


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


def test_submitted_job_succeeds_and_its_logs_and_status_are_retrievable(ray_head):
    submitted = _rlsys(ray_head, "submit", "jobs/quickstart.yaml", "train.steps=7", "--check")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.splitlines()[0]
    assert job_id.startswith("rlsys-quickstart-")
    # The remote `rlsys run --dry-run` printed the resolved config, override included, into the job's logs.
    assert "train.steps = 7" in submitted.stdout
    assert f"job {job_id} SUCCEEDED" in submitted.stderr

    status = _rlsys(ray_head, "status", job_id)
    assert status.returncode == 0
    assert "status: SUCCEEDED" in status.stdout
    assert "entrypoint: rlsys run jobs/quickstart.yaml train.steps=7 --dry-run" in status.stdout

    logs = _rlsys(ray_head, "logs", job_id)
    assert logs.returncode == 0
    assert "train.steps = 7" in logs.stdout
    assert "rollout.replicas = 1" in logs.stdout


def test_explicit_address_wins_over_the_environment(ray_head):
    address = ray_head["RAY_API_SERVER_ADDRESS"]
    env = {**ray_head, "RAY_API_SERVER_ADDRESS": "http://127.0.0.1:9", "RAY_ADDRESS": "http://127.0.0.1:9"}
    submitted = _rlsys(env, "submit", "jobs/quickstart.yaml", "--check", "--no-wait", "--address", address)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    followed = _rlsys(env, "logs", job_id, "--follow", "--address", address)
    assert followed.returncode == 0
    assert "train.steps = 150" in followed.stdout


def test_bad_config_exits_2_without_submitting(ray_head):
    result = _rlsys(ray_head, "submit", "jobs/quickstart.yaml", "rollout.replicas=0", "learner.lrr=3")
    assert result.returncode == 2
    assert "rollout.replicas: Input should be greater than or equal to 1" in result.stderr
    assert "learner.lrr: unknown key" in result.stderr
    assert result.stdout == ""
    assert not any("rollout.replicas=0" in job["entrypoint"] for job in _api(ray_head, "/api/jobs/"))


def test_job_failing_on_the_cluster_fails_the_submit(ray_head):
    # The model path is not on this machine: submitted with a note; the cluster's check then fails the job.
    result = _rlsys(ray_head, "submit", "jobs/quickstart.yaml", "model.path=/nonexistent/model", "--check")
    assert "note: model.path: no Hugging Face model at '/nonexistent/model'" in result.stderr
    assert result.returncode == 1
    job_id = result.stdout.splitlines()[0]
    assert f"job {job_id} FAILED" in result.stderr
    status = _rlsys(ray_head, "status", job_id)
    assert status.returncode == 1
    assert "status: FAILED" in status.stdout


def test_stop_ends_a_running_job(ray_head, tmp_path):
    # A job that would run long (the embedded model's build, then training); stopped right away.
    cache = f"RLSYS_CACHE_DIR={tmp_path / 'cache'}"
    submitted = _rlsys(ray_head, "submit", "jobs/quickstart.yaml", "--no-wait", "--env", cache)
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()
    stopped = _rlsys(ray_head, "stop", job_id)
    assert stopped.returncode == 0
    assert re.search(rf"{job_id}.*status: STOPPED", stopped.stdout), stopped.stdout
    assert "status: STOPPED" in _rlsys(ray_head, "status", job_id).stdout
