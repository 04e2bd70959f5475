"""Joining a cluster has a deadline: a head that is down, unreachable or frozen fails the driver with one line
instead of the endless retries of `ray.init`; a head that answers is joined."""

import os
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
import pytest

from actors.cluster import check_head_answers, connect_timeout_s
from rlsys.errors import ClusterError

ROOT = Path(__file__).resolve().parents[2]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_head_that_is_down_fails_fast_naming_the_address():
    address = f"127.0.0.1:{_closed_port()}"
    start = time.monotonic()
    with pytest.raises(ClusterError, match=rf"the Ray cluster at {address} \(RAY_ADDRESS\) did not answer"):
        check_head_answers(address, timeout_s=1.0)
    assert time.monotonic() - start < 30  # the deadline holds (loosely: the machine may be loaded)


def test_a_frozen_head_whose_port_accepts_but_never_answers_fails_at_the_deadline():
    with socket.socket() as frozen:  # the kernel completes the TCP handshake; no process speaks gRPC
        frozen.bind(("127.0.0.1", 0))
        frozen.listen(8)
        address = f"ray://127.0.0.1:{frozen.getsockname()[1]}"
        with pytest.raises(ClusterError, match="did not answer within 1 s"):
            check_head_answers(address, timeout_s=1.0)


def test_a_head_that_speaks_grpc_is_joined():
    server = grpc.server(ThreadPoolExecutor(max_workers=1))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        check_head_answers(f"127.0.0.1:{port}", timeout_s=30.0)
    finally:
        server.stop(grace=None)


def test_auto_is_left_to_ray():
    check_head_answers("auto", timeout_s=0.001)  # found on this machine by Ray itself, nothing to probe


@pytest.mark.parametrize("value", ["soon", "0", "-5"])
def test_a_bad_connect_deadline_names_the_variable(monkeypatch, value):
    monkeypatch.setenv("RLSYS_RAY_CONNECT_TIMEOUT_S", value)
    with pytest.raises(ClusterError, match="RLSYS_RAY_CONNECT_TIMEOUT_S"):
        connect_timeout_s()


def test_a_run_pointed_at_a_dead_head_exits_1_with_one_line_and_a_failed_mlflow_run(
    tiny_model_dir, mlflow_store
):
    import mlflow

    # A process of its own: in this one Ray may be up already (an earlier test's runtime), and a driver
    # that is connected does not connect again.
    env = {
        **os.environ,
        "RAY_ADDRESS": f"127.0.0.1:{_closed_port()}",
        "RLSYS_RAY_CONNECT_TIMEOUT_S": "1",
        "PYTHONPATH": str(ROOT),
    }
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "rlsys.cli",
            "run",
            str(ROOT / "jobs" / "quickstart.yaml"),
            f"model.path={tiny_model_dir}",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    err = run.stderr.strip().splitlines()
    assert run.returncode == 1, run.stderr[-3000:]
    assert err[-1].startswith("rlsys: error: the Ray cluster at 127.0.0.1:"), run.stderr[-3000:]
    assert "Traceback" not in run.stderr
    (recorded,) = mlflow.search_runs(search_all_experiments=True, output_format="list")
    assert recorded.info.status == "FAILED"
