"""A job's life on an autoscaling cluster, read back from the records it leaves.

- Worker nodes by type, from the Ray autoscaler's event log (`<session>/logs/events/event_AUTOSCALER.log`,
  JSON lines): "Adding N node(s) of type T." when it launches nodes, "Removing N nodes of type T (idle)."
  when it terminates them. A count changes when the autoscaler decided, a few seconds before the node has
  joined (or left); the log's timestamps are whole seconds.
- When the job was submitted, from the jobs' event log (`event_JOBS.log`): "Started a ray job ID."
- Each pool's size and the job's progress, from its MLflow run: `pool/<pool>_replicas` at every step (with
  the time it was logged), the first step's metrics, the run's end.

`scripts/zero_node_plot.py` draws them on one time axis for the README's zero-node walk-through.
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass

_ADDING = re.compile(r"Adding (\d+) node\(s\) of type (\S+)\.")
_REMOVING = re.compile(r"Removing (\d+) nodes of type (\S+) \(")
_STARTED = re.compile(r"Started a ray job (\S+)\.")


@dataclass(frozen=True)
class RunRecord:
    """What the run's MLflow records say, in epoch seconds."""

    pool_sizes: dict[str, list[tuple[float, float]]]  # pool -> [(when logged, actors)], in step order
    first_step: float  # when step 1's metrics were logged
    ended: float  # the run's end


def _events(lines: Iterable[str]) -> list[tuple[float, str]]:
    """(timestamp, message) of each JSON event line, oldest first (blank lines skipped)."""
    events = [json.loads(line) for line in lines if line.strip()]
    return sorted((float(event["timestamp"]), event["message"]) for event in events)


def node_counts(autoscaler_lines: Iterable[str]) -> dict[str, list[tuple[float, int]]]:
    """Worker nodes of each type after each launch or removal: {type: [(epoch s, nodes)]}, from 0."""
    counts: dict[str, list[tuple[float, int]]] = {}
    for at, message in _events(autoscaler_lines):
        for pattern, sign in ((_ADDING, 1), (_REMOVING, -1)):
            if match := pattern.search(message):
                changes = counts.setdefault(match[2], [])
                before = changes[-1][1] if changes else 0
                changes.append((at, before + sign * int(match[1])))
    return counts


def job_submitted(jobs_lines: Iterable[str], submission_id: str | None = None) -> float:
    """When the job `submission_id` (None: the first job) was started, in epoch seconds."""
    for at, message in _events(jobs_lines):
        match = _STARTED.search(message)
        if match and submission_id in (None, match[1]):
            return at
    raise ValueError(f"no 'Started a ray job' event for {submission_id or 'any job'} in the jobs' event log")


def run_record(client, run_id: str, pools: Iterable[str]) -> RunRecord:
    """The pools' sizes, the first step and the end of the MLflow run `run_id` (`client`: an MlflowClient)."""
    sizes = {}
    for pool in pools:
        history = sorted(client.get_metric_history(run_id, f"pool/{pool}_replicas"), key=lambda m: m.step)
        sizes[pool] = [(m.timestamp / 1000, m.value) for m in history]
    first = [m for m in client.get_metric_history(run_id, "train/reward_mean") if m.step == 1]
    if not first:
        raise ValueError(f"run {run_id} logged no step 1 (train/reward_mean)")
    return RunRecord(sizes, first[0].timestamp / 1000, client.get_run(run_id).info.end_time / 1000)


def plot(nodes: dict[str, list[tuple[float, int]]], run: RunRecord, submitted: float, until: float):
    """Nodes by type (top) and pool sizes (bottom) against seconds since the submission, with the job's
    moments marked; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt

    figure, (nodes_axes, pools_axes) = plt.subplots(2, 1, figsize=(10, 6), sharex=True)
    for name, changes in sorted(nodes.items()):
        times = [0.0] + [at - submitted for at, _ in changes] + [until - submitted]
        values = [0] + [n for _, n in changes]
        nodes_axes.step(times, [*values, values[-1]], where="post", label=name)
    for pool, sizes in run.pool_sizes.items():
        if sizes:
            times = [at - submitted for at, _ in sizes] + [run.ended - submitted]
            values = [n for _, n in sizes]
            pools_axes.step(times, [*values, values[-1]], where="post", label=pool)
    marks = {"first step": run.first_step, "job ended": run.ended}
    for axes in (nodes_axes, pools_axes):
        for (label, at), style in zip(marks.items(), ("--", ":"), strict=True):
            axes.axvline(
                at - submitted, color="grey", linestyle=style, label=label if axes is nodes_axes else None
            )
    nodes_axes.set(title="Worker nodes (the autoscaler's launches and removals)", ylabel="nodes")
    pools_axes.set(
        title="Pool sizes (pool/<pool>_replicas, logged each step)",
        xlabel="seconds since the job was submitted",
        ylabel="actors",
    )
    nodes_axes.legend(loc="upper right")
    pools_axes.legend(loc="upper right")
    figure.tight_layout()
    return figure
