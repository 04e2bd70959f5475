"""A job's life on an autoscaling cluster, read back from the records it leaves.

- Worker nodes by type, from the Ray autoscaler's records: its log (`<session>/logs/monitor.log`) has
  "Launching N nodes, type T." for each launch, its event log (`<session>/logs/events/event_AUTOSCALER.log`,
  JSON lines) "Removing N nodes of type T (idle)." for each removal. The event log's "Adding N node(s) of
  type T." cannot be trusted alone: the launcher threads add it to a summary that the monitor reads and then
  clears in two steps, so a launch between them is lost (seen once in CI: a node removed but never added).
  A count changes when the autoscaler decided, a few seconds before the node has joined (or left).
- When the job was submitted, from the jobs' event log (`event_JOBS.log`): "Started a ray job ID."
- Each pool's size and the job's progress, from its MLflow run: `pool/<pool>_replicas` at every step (with
  the time it was logged), the first step's metrics, the run's end.

`scripts/zero_node_plot.py` draws them on one time axis for the README's zero-node walk-through.
"""

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

_LAUNCHING = re.compile(r"^(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+)\s.*Launching (\d+) nodes, type (\S+)\.")
_REMOVING = re.compile(r"Removing (\d+) nodes of type (\S+) \(")
_STARTED = re.compile(r"Started a ray job (\S+)\.")


@dataclass(frozen=True)
class RunRecord:
    """What the run's MLflow records say, in epoch seconds."""

    pool_sizes: dict[str, list[tuple[float, float]]]  # pool -> [(when logged, actors)], in step order
    first_step: float  # when step 1's metrics were logged
    ended: float  # the run's end
    starting: dict[str, list[float]] = field(default_factory=dict)  # pool -> actors starting, by step


def _events(lines: Iterable[str]) -> list[tuple[float, str]]:
    """(timestamp, message) of each JSON event line, oldest first (blank lines skipped)."""
    events = [json.loads(line) for line in lines if line.strip()]
    return sorted((float(event["timestamp"]), event["message"]) for event in events)


def launches(monitor_lines: Iterable[str]) -> list[tuple[float, int, str]]:
    """(epoch s, nodes, type) of each launch in the autoscaler's log; its times are the head's local time."""
    found = []
    for line in monitor_lines:
        if match := _LAUNCHING.search(line):
            at = datetime.strptime(match[1], "%Y-%m-%d %H:%M:%S,%f").timestamp()
            found.append((at, int(match[2]), match[3]))
    return found


def node_counts(
    autoscaler_events: Iterable[str], monitor_lines: Iterable[str]
) -> dict[str, list[tuple[float, int]]]:
    """Worker nodes of each type after each launch or removal: {type: [(epoch s, nodes)]}, from 0."""
    changes = [(at, count, kind) for at, count, kind in launches(monitor_lines)]
    for at, message in _events(autoscaler_events):
        if match := _REMOVING.search(message):
            changes.append((at, -int(match[1]), match[2]))
    counts: dict[str, list[tuple[float, int]]] = {}
    for at, change, kind in sorted(changes):
        history = counts.setdefault(kind, [])
        history.append((at, (history[-1][1] if history else 0) + change))
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
    sizes, starting = {}, {}
    for pool in pools:
        history = sorted(client.get_metric_history(run_id, f"pool/{pool}_replicas"), key=lambda m: m.step)
        sizes[pool] = [(m.timestamp / 1000, m.value) for m in history]
        history = sorted(client.get_metric_history(run_id, f"pool/{pool}_starting"), key=lambda m: m.step)
        starting[pool] = [m.value for m in history]
    first = [m for m in client.get_metric_history(run_id, "train/reward_mean") if m.step == 1]
    if not first:
        raise ValueError(f"run {run_id} logged no step 1 (train/reward_mean)")
    end = client.get_run(run_id).info.end_time / 1000
    return RunRecord(sizes, first[0].timestamp / 1000, end, starting)


def _steps(
    changes: list[tuple[float, float]], origin: float, until: float
) -> tuple[list[float], list[float]]:
    """A step function's corners from its changes: 0 at `origin`, each value from its change on, held to
    `until`; times relative to `origin`."""
    times = [0.0] + [at - origin for at, _ in changes] + [until - origin]
    values = [0.0] + [value for _, value in changes]
    return times, [*values, values[-1]]


def plot(nodes: dict[str, list[tuple[float, int]]], run: RunRecord, submitted: float, until: float):
    """Nodes by type, stacked (top), and each pool's size (bottom), against seconds since the submission,
    with the job's moments marked; returns the matplotlib Figure."""
    import matplotlib

    matplotlib.use("Agg")  # no display on servers and CI
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    figure = plt.figure(figsize=(11, 6.5))
    panels = figure.subplot_mosaic([["nodes", "nodes"], ["time", "steps"]], width_ratios=[3, 2])
    nodes_axes, pools_axes, steps_axes = panels["nodes"], panels["time"], panels["steps"]
    pools_axes.sharex(nodes_axes)
    # Stacked: each type's band sits on the ones before it, so the top edge is the cluster's worker count.
    grid = sorted(
        {0.0, until - submitted, *(at - submitted for changes in nodes.values() for at, _ in changes)}
    )
    below = [0.0] * len(grid)
    for name, changes in sorted(nodes.items()):
        times, values = _steps(changes, submitted, until)
        level = [values[max(i for i, t in enumerate(times) if t <= x)] for x in grid]
        top = [b + v for b, v in zip(below, level, strict=True)]
        nodes_axes.fill_between(grid, below, top, step="post", label=name, alpha=0.8)
        below = top
    for width, (pool, sizes) in zip((5, 2, 1), run.pool_sizes.items(), strict=False):
        if sizes:
            times = [at - submitted for at, _ in sizes] + [run.ended - submitted]
            values = [size for _, size in sizes]
            pools_axes.step(
                times, [*values, values[-1]], where="post", label=pool, linewidth=width, alpha=0.7
            )
    marks = {"submitted": submitted, "first step": run.first_step, "job ended": run.ended}
    for axes in (nodes_axes, pools_axes):
        for (label, at), style in zip(marks.items(), ("-", "--", ":"), strict=True):
            axes.axvline(
                at - submitted, color="grey", linestyle=style, label=label if axes is nodes_axes else None
            )
        axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    nodes_axes.set(
        title="Worker nodes by type, stacked (the autoscaler's launches and removals)", ylabel="nodes"
    )
    pools_axes.set(
        title="Pool sizes over time (pool/<pool>_replicas, logged each step)",
        xlabel="seconds since the job was submitted",
        ylabel="actors",
        ylim=(0, None),
    )
    # By step too: a fast step is a sliver of the time axis; `_starting` shows an actor waiting for its node.
    for width, (pool, sizes) in zip((5, 2, 1), run.pool_sizes.items(), strict=False):
        steps = range(1, len(sizes) + 1)
        if sizes:
            steps_axes.step(
                steps, [size for _, size in sizes], where="mid", label=pool, linewidth=width, alpha=0.7
            )
        if any(run.starting.get(pool, [])):
            starting = run.starting[pool]
            steps_axes.step(
                range(1, len(starting) + 1), starting, where="mid", linestyle="--", label=f"{pool} starting"
            )
    steps_axes.set(title="Pool sizes by RL step", xlabel="RL step", ylabel="actors", ylim=(0, None))
    steps_axes.yaxis.set_major_locator(MaxNLocator(integer=True))
    for axes in (nodes_axes, pools_axes, steps_axes):
        axes.legend(loc="upper left", fontsize="small")
    figure.tight_layout()
    return figure
