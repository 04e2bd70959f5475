"""Autoscaling on Ray's fake multi-node provider, with node types shaped like cluster.yaml's (CPU only here).

The head has no `verifier_node` resource, so a VerifierPool asking for it (as jobs/cluster_gpu.yaml's does)
makes the autoscaler start `verifier_cpu` nodes; the real verifiers score real answers there; once the pool
is gone the nodes idle past `idle_timeout_minutes` and are removed.

`ray.cluster_utils.AutoscalingCluster` would run `ray stop --force`, which stops every Ray process on the
machine, so the same set-up is done here by hand: a head started with `--autoscaling-config` and
RAY_FAKE_CLUSTER=1 in its own temp dir, ports and session, torn down by signalling that session only. The
workload runs in a separate driver process (this file, run as a script), so it does not collide with a Ray
runtime the test process may already hold.
"""

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REPORT_MARKER = "autoscaling report: "
IDLE_TIMEOUT_MINUTES = 0.1  # 6 s: long enough to see the nodes, short enough to watch them go


def _autoscaling_config(gcs_address: str) -> dict:
    """Ray's fake multi-node config (every field the monitor reads; it fills in no defaults)."""
    return {
        "cluster_name": "rlsys-fake",
        "max_workers": 2,
        "provider": {
            "type": "fake_multinode",
            "gcs_address": gcs_address,
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 1}, "node_config": {}, "max_workers": 0},
            # cluster.yaml's verifier_cpu, shrunk: the tag the pool requests, one slot per node.
            "verifier_cpu": {
                "resources": {"CPU": 1, "verifier_node": 1, "object_store_memory": 200 * 1024**2},
                "node_config": {},
                "min_workers": 0,
                "max_workers": 2,
            },
        },
        "head_node_type": "ray.head.default",
        "auth": {},
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
        "docker": {},
        "initialization_commands": [],
        "setup_commands": [],
        "head_setup_commands": [],
        "worker_setup_commands": [],
        "head_start_ray_commands": [],
        "worker_start_ray_commands": [],
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
    }


@pytest.fixture
def fake_cluster(tmp_path):
    """A head with the fake autoscaler; yields its GCS address. Stopped (with its worker nodes) afterwards.

    A head whose raylet does not register within Ray's fixed 30 s (a loaded machine) exits while starting;
    it is started again, on fresh ports, up to 3 times."""
    import ray
    from conftest import free_port, ray_free_env, ray_head  # here: this file also runs as a plain script

    env = ray_free_env()
    env.update(RAY_FAKE_CLUSTER="1", AUTOSCALER_UPDATE_INTERVAL_S="1", RAY_AUTH_MODE="disabled")
    for attempt in range(3):
        port = free_port()
        gcs_address = f"{ray.util.get_node_ip_address()}:{port}"
        config = tmp_path / "autoscaling.json"
        config.write_text(json.dumps(_autoscaling_config(gcs_address)))
        args = [
            f"--autoscaling-config={config}",
            "--num-cpus=1",
            f"--port={port}",
            "--include-dashboard=false",
        ]
        log = tmp_path / f"ray-start-{attempt}.log"
        with ray_head(args, env, log) as head:
            if _started(head, log):
                yield {**env, "RAY_ADDRESS": gcs_address}
                return
    pytest.fail(f"the head did not start in 3 attempts; the last one's log ends: {log.read_text()[-3000:]}")


def _started(head, log: Path, limit_s: float = 300) -> bool:
    """Whether `ray start --head --block` reported its node up (False: it exited first)."""
    deadline = time.monotonic() + limit_s
    while head.poll() is None:
        if "Ray runtime started" in log.read_text():
            return True
        assert time.monotonic() < deadline, f"the head neither started nor exited within {limit_s:g} s"
        time.sleep(1)
    return False


@pytest.mark.integration
def test_verifier_nodes_are_added_for_the_pool_and_removed_when_idle(fake_cluster):
    result = subprocess.run(
        [sys.executable, __file__],
        cwd=ROOT,
        env={**fake_cluster, "PYTHONPATH": f"{ROOT}:{ROOT / 'tests'}"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-5000:]
    # Ray may print to stdout too (e.g. at exit): the report is the line with the marker.
    lines = [line for line in result.stdout.splitlines() if line.startswith(REPORT_MARKER)]
    assert lines, result.stdout[-5000:] + result.stderr[-5000:]
    report = json.loads(lines[0].removeprefix(REPORT_MARKER))
    assert report["verifier_nodes_before"] == 0
    assert report["scores"] == [[1.0, 0.0], [0.0, 1.0]]
    assert report["verifier_nodes_while_busy"] == 2  # one per replica: each node has one verifier_node slot
    assert report["verifier_slots"] == 2 and report["verifier_slots_free"] == 0
    assert report["verifier_nodes_after_idle"] == 0


# --- the driver (runs in its own process, connected to the fake cluster through RAY_ADDRESS) ---------------


def _verifier_nodes() -> list[str]:
    import ray

    return [node["NodeID"] for node in ray.nodes() if node["Alive"] and "verifier_node" in node["Resources"]]


def _wait_for(condition, limit_s: float) -> None:
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"gave up after {limit_s} s")
        time.sleep(1)


def _drive() -> dict:
    import ray
    from fakes import answers

    from actors.pools import RayVerifierPool
    from rlsys.config import VerifierConfig

    deadline = time.monotonic() + 180
    while True:  # the head was just started: on a loaded machine its GCS can take a while to answer
        try:
            ray.init(address=os.environ["RAY_ADDRESS"], logging_level="ERROR")
            break
        except ConnectionError:
            ray.shutdown()
            if time.monotonic() > deadline:
                raise
            time.sleep(2)
    report = {"verifier_nodes_before": len(_verifier_nodes())}
    config = VerifierConfig(replicas=2, num_cpus=0.5, resources={"verifier_node": 1}, max_restarts=0)
    pool = RayVerifierPool(config)
    # Pending actors are the autoscaler's demand; scoring waits until one is placed on a new node.
    calls = [
        pool.score(*answers(["7", "7"], ["Step 1: 3 + 4 = 7\n#### 7", "#### 5"])),
        pool.score(*answers(["10", "10"], ["The answer is 12.", "#### 10"])),
    ]
    report["scores"] = [[reward.score for reward in call.result()] for call in calls]
    # Work goes to the verifiers that are up (a replica still waiting for its node does not hold it back), so
    # the second node may arrive after the scores: the pool's demand stands until it does.
    _wait_for(
        lambda: len(_verifier_nodes()) == 2 and ray.available_resources().get("verifier_node", 0) == 0,
        limit_s=300,
    )
    report["verifier_nodes_while_busy"] = len(_verifier_nodes())
    # The verifiers hold every verifier_node slot (and only worker nodes have them; the head has none).
    report["verifier_slots"] = ray.cluster_resources().get("verifier_node", 0)
    report["verifier_slots_free"] = ray.available_resources().get("verifier_node", 0)
    for actor in pool.actors:
        ray.kill(actor)
    del pool
    _wait_for(lambda: not _verifier_nodes(), limit_s=300)
    report["verifier_nodes_after_idle"] = len(_verifier_nodes())
    return report


if __name__ == "__main__":
    print(REPORT_MARKER + json.dumps(_drive()), flush=True)
