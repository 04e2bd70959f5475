"""Reading a zero-node run back from the autoscaler's and the jobs' event logs (rlsys.cluster_timeline)."""

import json
from datetime import datetime
from types import SimpleNamespace

import pytest

from rlsys.cluster_timeline import job_submitted, node_counts, plot, run_record


def _line(at: int, message: str, source: str = "AUTOSCALER") -> str:
    return json.dumps({"source_type": source, "message": message, "timestamp": str(at), "severity": "INFO"})


def _monitor(at: int, message: str) -> str:
    """A line of the autoscaler's log (monitor.log) at epoch second `at`, in the head's local time."""
    stamp = datetime.fromtimestamp(at).strftime("%Y-%m-%d %H:%M:%S")
    return f"{stamp},250\tINFO node_launcher.py:160 -- {message}"


# The event log's "Adding" events may be missing (the autoscaler's summary loses a launch made while it is
# read): learner_cpu's is, and the counts take the launches from the autoscaler's log instead.
AUTOSCALER = [
    _line(100, "Resized to 0 CPUs."),
    _line(130, "Adding 1 node(s) of type rollout_cpu."),
    _line(130, "Adding 1 node(s) of type verifier_cpu."),
    _line(170, "Adding 1 node(s) of type verifier_cpu."),
    "",
    _line(400, "Removing 2 nodes of type verifier_cpu (idle)."),  # two in one event; out of order: sorted
    _line(330, "Removing 1 nodes of type learner_cpu (idle)."),
]
MONITOR = [
    _monitor(129, "StandardAutoscaler: Queue 3 new nodes for launch"),
    _monitor(130, "NodeLauncher0: Got 1 nodes to launch."),
    _monitor(130, "NodeLauncher0: Launching 1 nodes, type rollout_cpu."),
    _monitor(130, "NodeLauncher1: Launching 1 nodes, type verifier_cpu."),
    _monitor(135, "NodeLauncher0: Launching 1 nodes, type learner_cpu."),
    _monitor(170, "NodeLauncher1: Launching 1 nodes, type verifier_cpu."),
    _monitor(330, "StandardAutoscaler: Terminating the node with id 3 and ip 127.0.0.3. (idle)"),
]


def test_zero_node_node_counts_follow_launches_and_removals():
    nodes = node_counts(AUTOSCALER, MONITOR)
    assert nodes == {
        "rollout_cpu": [(130.25, 1)],
        "verifier_cpu": [(130.25, 1), (170.25, 2), (400.0, 0)],
        "learner_cpu": [(135.25, 1), (330.0, 0)],
    }


def test_zero_node_submission_time_is_the_jobs_start_event():
    lines = [
        _line(90, "Started a ray job other-1.", "JOBS"),
        _line(95, "Started a ray job rlsys-quickstart-1.", "JOBS"),
    ]
    assert job_submitted(lines) == 90.0
    assert job_submitted(lines, "rlsys-quickstart-1") == 95.0
    with pytest.raises(ValueError, match="no 'Started a ray job'"):
        job_submitted(lines, "missing")


class _Client:
    """The three MlflowClient calls run_record makes, over fixed metric histories (timestamps in ms)."""

    def __init__(self, histories: dict[str, list[tuple[int, int, float]]], end_ms: int) -> None:
        self.histories, self.end_ms = histories, end_ms

    def get_metric_history(self, run_id, key):
        return [SimpleNamespace(step=s, timestamp=t, value=v) for s, t, v in self.histories.get(key, [])]

    def get_run(self, run_id):
        return SimpleNamespace(info=SimpleNamespace(end_time=self.end_ms))


def test_zero_node_run_record_and_plot(tmp_path):
    client = _Client(
        {
            "pool/verifier_replicas": [(2, 160_000, 2.0), (1, 150_000, 1.0), (3, 170_000, 1.0)],
            "train/reward_mean": [(1, 150_000, 0.0), (2, 160_000, 0.5)],
        },
        end_ms=200_000,
    )
    record = run_record(client, "run", ["verifier", "rollout"])
    assert record.pool_sizes == {"verifier": [(150.0, 1.0), (160.0, 2.0), (170.0, 1.0)], "rollout": []}
    assert (record.first_step, record.ended) == (150.0, 200.0)
    figure = plot(node_counts(AUTOSCALER, MONITOR), record, submitted=95.0, until=410.0)
    figure.savefig(tmp_path / "nodes.png")
    assert (tmp_path / "nodes.png").stat().st_size > 0
    with pytest.raises(ValueError, match="no step 1"):
        run_record(_Client({}, end_ms=0), "run", [])
