"""A whole job on an autoscaling cluster that starts with no worker node (Ray's fake multi-node provider).

The head holds no pool resource. A job submitted with `rlsys submit` asks for cluster.yaml's node types by
their custom resources (`rollout_node`, `learner_node`, `verifier_node`): the autoscaler launches one node
of each, the job trains and evaluates, the verifier pool grows onto a second verifier node while a slow
reward holds steps up and gives it back once scoring is fast again (the reward is slow until the second
verifier has scored: the test does not depend on how fast a node comes up), and after the job every worker
node is removed at the idle timeout. Node counts are sampled throughout and checked against the
autoscaler's own records; with RLSYS_ZERO_NODE_RECORDS=<dir> the records (the head's event logs and
autoscaler log, the run's MLflow store, the job's log) are kept there for scripts/zero_node_plot.py (the
README's walk-through).

The head is started by hand (never `ray stop`, which would stop every Ray on the machine), as in
test_autoscaling.py, and torn down by signalling its own session.
"""

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import mlflow
import pytest
from conftest import free_port, ray_free_env, ray_head
from ray.util.state.exception import RayStateApiException

from rlsys.cluster_timeline import job_submitted, node_counts, run_record

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
IDLE_TIMEOUT_MINUTES = 0.5  # nodes idle this long go; shorter ones can be taken while the job waits for them
NODE_TYPES = {  # cluster.yaml's worker types, CPU-only and one pool actor each
    "rollout_cpu": {"CPU": 1, "rollout_node": 1},
    "learner_cpu": {"CPU": 1, "learner_node": 1},
    "verifier_cpu": {"CPU": 1, "verifier_node": 1},
}
SLOW_S = 2.0  # seconds a scoring batch takes while the verifier pool has not grown yet
REWARD = f'''
import os
import time
from pathlib import Path

SEEN = Path(__file__).with_name("verifiers_seen")  # a line per verifier that scored (nodes share the disk)


def slow_until_the_pool_grows(responses, golds, timeout_s, **columns):
    """{SLOW_S:g} s a batch until a second verifier has scored one, then none: a load the grown pool clears,
    however long its new node takes to come up."""
    verifier = str(os.getppid())  # this worker's verifier actor
    seen = set(SEEN.read_text().split()) if SEEN.exists() else set()
    if verifier not in seen:
        with SEEN.open("a") as file:
            file.write(verifier + "\\n")
        seen.add(verifier)
    if len(seen) < 2:
        time.sleep({SLOW_S})
    return [0.0] * len(responses)
'''


def _config(gcs_address: str) -> dict:
    return {
        "cluster_name": "rlsys-zero-node",
        "max_workers": 4,
        "provider": {
            "type": "fake_multinode",
            "gcs_address": gcs_address,
            "use_node_id_as_ip": True,
            "disable_node_updaters": True,
            "disable_launch_config_check": True,
        },
        "available_node_types": {
            "ray.head.default": {"resources": {"CPU": 0}, "node_config": {}, "max_workers": 0},
            **{
                name: {
                    "resources": {**resources, "object_store_memory": 200 * 1024**2},
                    "node_config": {},
                    "min_workers": 0,
                    "max_workers": 2 if name == "verifier_cpu" else 1,
                }
                for name, resources in NODE_TYPES.items()
            },
        },
        "head_node_type": "ray.head.default",
        "auth": {},
        "upscaling_speed": 1.0,
        "idle_timeout_minutes": IDLE_TIMEOUT_MINUTES,
        "docker": {},
        **{key: [] for key in ("initialization_commands", "setup_commands", "head_setup_commands")},
        **{
            key: []
            for key in ("worker_setup_commands", "head_start_ray_commands", "worker_start_ray_commands")
        },
        "file_mounts": {},
        "cluster_synced_files": [],
        "file_mounts_sync_continuously": False,
        "rsync_exclude": [],
        "rsync_filter": [],
    }


def _worker_nodes(address: str) -> dict[str, int]:
    """Alive worker nodes by type, from the dashboard's state API.

    Every node is listed and the dead ones skipped here: asked to filter by state, Ray 2.60's state API
    counts the nodes it filtered out as lost to truncation and raises, from the first node removed on (its
    aggregator reads the GCS's filtered-out count as a truncated count).
    """
    from ray.util.state import list_nodes

    counts = dict.fromkeys(NODE_TYPES, 0)
    for node in list_nodes(address=address, timeout=10):
        if node.state != "ALIVE":
            continue
        for name, resources in NODE_TYPES.items():
            tag = next(key for key in resources if key != "CPU")
            if tag in node.resources_total:
                counts[name] += 1
    return counts


def _alive_actors(address: str) -> list[str]:
    """The classes of the actors alive in the cluster (listed whole and filtered here, like the nodes)."""
    from ray.util.state import list_actors

    return [actor.class_name for actor in list_actors(address=address, timeout=10) if actor.state == "ALIVE"]


def _all_gone(timeline: list[tuple[float, dict[str, int]]], after: float) -> bool:
    """Whether the last sample was taken after `after` and counted no worker node."""
    return bool(timeline) and timeline[-1][0] > after and not any(timeline[-1][1].values())


def _held_peak(counts: list[tuple[float, int]]) -> int:
    """The most nodes of a type held for any time: a count superseded within the same second (a launch the
    autoscaler took back at once, past `max_workers_per_type`) was never a node the job could use."""
    return max(n for i, (at, n) in enumerate(counts) if i + 1 == len(counts) or counts[i + 1][0] > at)


def test_zero_node_cluster_grows_for_the_job_and_shrinks_after(tiny_model_dir, tmp_path):
    import ray

    port, dashboard_port = free_port(), free_port()
    gcs_address = f"{ray.util.get_node_ip_address()}:{port}"
    config = tmp_path / "autoscaling.json"
    config.write_text(json.dumps(_config(gcs_address)))
    env = ray_free_env()
    env.update(
        RAY_FAKE_CLUSTER="1",
        AUTOSCALER_UPDATE_INTERVAL_S="1",
        RAY_AUTH_MODE="disabled",  # the state API is read from this process, which holds no token
        PATH=f"{BIN}{os.pathsep}{os.environ['PATH']}",
        MLFLOW_TRACKING_URI=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    work = tmp_path / "work"
    # The job's folder (its reward module) and this checkout, so the job runs the code under test.
    env["PYTHONPATH"] = os.pathsep.join([str(work), str(ROOT)])
    dashboard = f"http://127.0.0.1:{dashboard_port}"
    args = [
        f"--autoscaling-config={config}",
        "--num-cpus=0",
        f"--port={port}",
        "--include-dashboard=true",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
    ]
    # The job's file and its slow reward, on the nodes' path; nothing is uploaded (`--working-dir none`):
    # the fake nodes share this machine's disk and rlsys, and a working dir unpacked again for each new
    # node would be replaced under the workers already running in it.
    work.mkdir()
    (work / "slow_reward.py").write_text(textwrap.dedent(REWARD))
    job = work / "job.yaml"
    job.write_text((ROOT / "jobs" / "quickstart.yaml").read_text())
    overrides = [
        f"model.path={tiny_model_dir}",
        "rollout.replicas=1",
        "rollout.num_cpus=1",
        "rollout.kv_cache_gib=0.05",
        "rollout.max_new_tokens=12",
        "rollout.samples_per_prompt=4",
        "rollout.resources={rollout_node: 1}",
        "learner.num_cpus=1",
        "learner.torch_threads=1",
        "learner.resources={learner_node: 1}",
        "verifier.num_cpus=0.5",
        "verifier.replicas=1",
        "verifier.max_replicas=2",
        "verifier.resources={verifier_node: 1}",
        "verifier.rewards={math: 1.0, 'slow_reward:slow_until_the_pool_grows': 0.0}",
        "train.steps=30",  # enough for the second verifier to join (a slow step each meanwhile) and go
        "train.prompts_per_step=4",
        "train.eval_every=0",
        "train.eval_samples=1",
        "train.checkpoint_every=0",
        "task.eval_size=8",
        "task.train_size=200",
        "tracking.registered_model=null",
        f"train.output_dir={tmp_path / 'runs'}",
    ]
    timeline: list[tuple[float, dict[str, int]]] = []
    missed: list[tuple[float, str]] = []  # samples the state API could not answer: (when, why)
    stop = threading.Event()

    # The head's logs (the autoscaler's launches and removals, the job's start) and the run's MLflow store
    # are the records the walk-through's plot is drawn from (scripts/zero_node_plot.py).
    records = Path(os.environ.get("RLSYS_ZERO_NODE_RECORDS") or tmp_path / "records")
    with ray_head(args, env, tmp_path / "ray-start.log", logs_to=records):
        client_env = {**env, "RAY_API_SERVER_ADDRESS": dashboard}
        start = time.monotonic()
        deadline = start + 120
        while True:  # the dashboard comes up a little after the head
            try:
                before = _worker_nodes(dashboard)
                break
            except (RayStateApiException, ConnectionError, OSError):  # while the dashboard starts
                if time.monotonic() > deadline:
                    raise
                time.sleep(1)
        assert before == dict.fromkeys(NODE_TYPES, 0)

        def sample_nodes() -> None:
            while not stop.is_set():
                try:
                    timeline.append((time.monotonic() - start, _worker_nodes(dashboard)))
                except (RayStateApiException, ConnectionError, OSError) as err:  # missed: try again
                    missed.append((time.monotonic() - start, str(err)[:200]))
                stop.wait(2)

        sampler = threading.Thread(target=sample_nodes, daemon=True)
        sampler.start()
        job_run = subprocess.run(
            [str(BIN / "rlsys"), "submit", str(job), *overrides, "--working-dir", "none"],
            cwd=work,  # the reward module imports from the job's folder here, and on the nodes through:
            env=client_env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        job_ended = time.monotonic() - start
        records.mkdir(parents=True, exist_ok=True)  # the pools' notes (resizes) are in the job's log
        (records / "job.log").write_text(job_run.stdout + job_run.stderr)
        assert job_run.returncode == 0, (job_run.stdout + job_run.stderr)[-5000:]
        # The nodes go once idle for the idle timeout; the bound leaves the autoscaler two minutes more.
        idle_deadline = time.monotonic() + IDLE_TIMEOUT_MINUTES * 60 + 120
        while time.monotonic() < idle_deadline and not _all_gone(timeline, after=job_ended):
            time.sleep(2)
        stop.set()
        sampler.join(timeout=30)
        left = _alive_actors(dashboard)  # the job's actors die with its driver: none may hold a node
    shutil.copy(tmp_path / "mlflow.db", records / "mlflow.db")  # before any check: a failure can be read back

    peak = {name: max(counts[name] for _, counts in timeline) for name in NODE_TYPES}
    assert peak == {"rollout_cpu": 1, "learner_cpu": 1, "verifier_cpu": 2}, timeline
    assert not left, f"actors alive after the job: {left}"
    # All gone after the idle timeout, as sampled after the job ended (not a count from before it).
    assert _all_gone(timeline, after=job_ended), (job_ended, timeline[-5:], missed[-5:])
    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
    assert run.info.status == "FINISHED"
    record = run_record(client, run.info.run_id, ("rollout", "verifier"))
    sizes = [n for _, n in record.pool_sizes["verifier"]]
    assert max(sizes) == 2 and sizes[-1] == 1, sizes  # grew under the slow reward, shrank once it was fast
    assert {n for _, n in record.pool_sizes["rollout"]} == {1}  # fixed size (no rollout.max_replicas)
    # The autoscaler's own record agrees: one node of each type, a second verifier node, none at the end.
    nodes = node_counts(
        (records / "events" / "event_AUTOSCALER.log").read_text().splitlines(),
        (records / "monitor.log").read_text().splitlines(),
    )
    assert {name: _held_peak(nodes[name]) for name in NODE_TYPES} == peak, nodes
    assert {name: nodes[name][-1][1] for name in NODE_TYPES} == dict.fromkeys(NODE_TYPES, 0), nodes
    submitted = job_submitted((records / "events" / "event_JOBS.log").read_text().splitlines())
    print(
        f"zero_node: submitted to first step {record.first_step - submitted:.0f}s, to the job's end "
        f"{record.ended - submitted:.0f}s, nodes gone {timeline[-1][0] - job_ended:.0f}s after it; "
        f"verifier pool by step {sizes}; autoscaler {nodes}; records in {records}"
    )
