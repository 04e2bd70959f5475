"""A whole job on an autoscaling cluster that starts with no worker node (Ray's fake multi-node provider).

The head holds no pool resource. A job submitted with `rlsys submit` asks for cluster.yaml's node types by
their custom resources (`rollout_node`, `learner_node`, `verifier_node`): the autoscaler launches one node
of each, the job trains and evaluates, the verifier pool grows onto a second verifier node while a slow
reward holds steps up and gives it back once scoring is fast again, and after the job every worker node is
removed at the idle timeout. Node counts are sampled throughout; with RLSYS_ZERO_NODE_PLOT=<png> the test
draws them with the pool's size per step (the README's walk-through).

The head is started by hand (never `ray stop`, which would stop every Ray on the machine), as in
test_autoscaling.py, and torn down by signalling its own session.
"""

import json
import os
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

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
IDLE_TIMEOUT_MINUTES = 0.5  # nodes idle this long go; shorter ones can be taken while the job waits for them
NODE_TYPES = {  # cluster.yaml's worker types, CPU-only and one pool actor each
    "rollout_cpu": {"CPU": 1, "rollout_node": 1},
    "learner_cpu": {"CPU": 1, "learner_node": 1},
    "verifier_cpu": {"CPU": 1, "verifier_node": 1},
}
SLOW_CALLS = 3  # the first scoring calls of each verifier are slow: the pool grows, then shrinks
REWARD = f'''
import time

calls = 0


def slow_then_fast(responses, golds, timeout_s, **columns):
    """A reward that takes 2 s a batch for its first {SLOW_CALLS} batches in each verifier, then none."""
    global calls
    calls += 1
    if calls <= {SLOW_CALLS}:
        time.sleep(2.0)
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
    """Alive worker nodes by type, from the dashboard's state API."""
    from ray.util.state import list_nodes

    counts = dict.fromkeys(NODE_TYPES, 0)
    for node in list_nodes(address=address, filters=[("state", "=", "ALIVE")], timeout=10):
        for name, resources in NODE_TYPES.items():
            tag = next(key for key in resources if key != "CPU")
            if tag in node.resources_total:
                counts[name] += 1
    return counts


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
    env["PYTHONPATH"] = str(work)
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
        "verifier.rewards={math: 1.0, 'slow_reward:slow_then_fast': 0.0}",
        "train.steps=14",
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
    stop = threading.Event()

    with ray_head(args, env, tmp_path / "ray-start.log"):
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
                except (RayStateApiException, ConnectionError, OSError):  # a sample missed: try again
                    pass
                stop.wait(2)

        sampler = threading.Thread(target=sample_nodes, daemon=True)
        sampler.start()
        submitted_at = time.time()
        submitted = subprocess.run(
            [str(BIN / "rlsys"), "submit", str(job), *overrides, "--working-dir", "none"],
            cwd=work,  # the reward module imports from the job's folder here, and on the nodes through:
            env=client_env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        job_ended = time.monotonic() - start
        assert submitted.returncode == 0, (submitted.stdout + submitted.stderr)[-5000:]
        idle_deadline = time.monotonic() + 180
        while time.monotonic() < idle_deadline and (not timeline or any(timeline[-1][1].values())):
            time.sleep(2)
        stop.set()
        sampler.join(timeout=30)

    peak = {name: max(counts[name] for _, counts in timeline) for name in NODE_TYPES}
    assert peak == {"rollout_cpu": 1, "learner_cpu": 1, "verifier_cpu": 2}, timeline
    assert timeline[-1][1] == dict.fromkeys(NODE_TYPES, 0), timeline  # all gone after the idle timeout
    client = mlflow.MlflowClient(tracking_uri=env["MLFLOW_TRACKING_URI"])
    (run,) = client.search_runs([client.get_experiment_by_name("quickstart").experiment_id])
    assert run.info.status == "FINISHED"
    replicas = {m.step: m.value for m in client.get_metric_history(run.info.run_id, "pool/verifier_replicas")}
    sizes = [replicas[step] for step in sorted(replicas)]
    assert max(sizes) == 2 and sizes[-1] == 1, sizes  # grew under the slow reward, shrank once it was fast
    (first,) = [m for m in client.get_metric_history(run.info.run_id, "train/reward_mean") if m.step == 1]
    print(f"zero_node: submitted to first step {first.timestamp / 1000 - submitted_at:.0f}s; {timeline=}")
    if os.environ.get("RLSYS_ZERO_NODE_PLOT"):
        _plot(timeline, sizes, job_ended, Path(os.environ["RLSYS_ZERO_NODE_PLOT"]))


def _plot(timeline, sizes: list[float], job_ended: float, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (nodes_axes, pool_axes) = plt.subplots(1, 2, figsize=(11, 4))
    times = [t for t, _ in timeline]
    for name in NODE_TYPES:
        nodes_axes.step(times, [counts[name] for _, counts in timeline], where="post", label=name)
    nodes_axes.axvline(job_ended, color="grey", linestyle=":", label="job ended")
    nodes_axes.set(
        title="Worker nodes (fake multi-node provider)", xlabel="seconds since the head", ylabel="nodes"
    )
    nodes_axes.legend()
    pool_axes.step(range(1, len(sizes) + 1), sizes, where="post")
    pool_axes.set(title="Verifier pool (pool/verifier_replicas)", xlabel="RL step", ylabel="replicas")
    figure.tight_layout()
    figure.savefig(out)
