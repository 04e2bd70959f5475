"""MLflow tracking: one run per job, the resolved config as params, metrics per step, artifacts.

The store is MLflow's default (a local SQLite file and ./mlruns) unless `tracking.tracking_uri` or
`MLFLOW_TRACKING_URI` names another.
"""

from pathlib import Path
from typing import Any

import mlflow

from rlsys.config import TrackingConfig

# MLflow refuses param values over this many characters.
_MAX_PARAM_LENGTH = 6000


class Tracker:
    """A thin handle on one MLflow run (the loop's `rlsys.protocols.Tracker`).

    As a context manager it ends the run when the block ends: FINISHED, KILLED when interrupted, FAILED
    when the block raised anything else.
    """

    def __init__(self, config: TrackingConfig, run_name: str, run_id: str | None = None) -> None:
        if config.tracking_uri:
            mlflow.set_tracking_uri(config.tracking_uri)
        mlflow.set_experiment(config.experiment)
        self.run = mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name)
        self.run_id = self.run.info.run_id

    def log_params(self, params: dict[str, Any]) -> None:
        mlflow.log_params({key: str(value)[:_MAX_PARAM_LENGTH] for key, value in params.items()})

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        mlflow.log_metrics({key: float(value) for key, value in metrics.items()}, step=step)

    def log_table(self, rows: list[dict[str, Any]], artifact_file: str) -> None:
        """Rows of a table as JSON (MLflow's table viewer shows it)."""
        if rows:
            mlflow.log_table({key: [row[key] for row in rows] for key in rows[0]}, artifact_file)

    def log_figure(self, figure, artifact_file: str) -> None:
        mlflow.log_figure(figure, artifact_file)

    def log_dict(self, data: dict, artifact_file: str) -> None:
        mlflow.log_dict(data, artifact_file)

    def log_artifacts(self, directory: str | Path, artifact_path: str) -> None:
        mlflow.log_artifacts(str(directory), artifact_path)

    def set_tags(self, tags: dict[str, str]) -> None:
        mlflow.set_tags(tags)

    def history(self, key: str) -> list[tuple[int, float]]:
        return read_metric_history(self.run_id, key)

    def register_model(self, model_dir: str, name: str, lineage: dict[str, str]) -> str:
        from rlsys.registry import register_policy

        return register_policy(model_dir, name, self.run_id, lineage)

    def finish(self, status: str = "FINISHED") -> None:
        mlflow.end_run(status=status)

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None:
            self.finish("FINISHED")
        else:  # Ctrl-C or SIGTERM: stopped by the user, not failed
            self.finish("KILLED" if issubclass(error_type, KeyboardInterrupt) else "FAILED")


def read_run(run_id: str) -> tuple[dict[str, str], dict[str, str]]:
    """A run's params and tags, as MLflow holds them (strings)."""
    data = mlflow.MlflowClient().get_run(run_id).data
    return dict(data.params), dict(data.tags)


def read_metric_history(run_id: str, key: str, tracking_uri: str | None = None) -> list[tuple[int, float]]:
    """(step, value) pairs of one metric of a run, for reports and tests."""
    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    return [(m.step, m.value) for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


# The gauges `rlsys status` shows, in this order, when the run logged them.
_PROGRESS_METRICS = ("train/reward_mean", "train/accuracy", "train/kl", "time/step_s", "verifier/error_rate")


def run_progress(run_id: str) -> list[str]:
    """Where a run is, from its MLflow record: status, the last step and its metrics, the last evaluation,
    the pools' sizes, the reward-hacking monitor's alerts, the last checkpoint and the registered model."""
    client = mlflow.MlflowClient()
    run = client.get_run(run_id)
    metrics, params, tags = run.data.metrics, run.data.params, run.data.tags
    lines = [f"mlflow run: {run_id} ({run.info.run_name}), {run.info.status}"]
    steps = [m.step for m in client.get_metric_history(run_id, "train/reward_mean")]
    if steps:
        shown = "  ".join(f"{key} {metrics[key]:.3f}" for key in _PROGRESS_METRICS if key in metrics)
        lines.append(f"step: {max(steps)} of {params.get('train.steps', '?')}  {shown}")
    evals = client.get_metric_history(run_id, "eval/accuracy")
    if evals:
        last = max(evals, key=lambda m: (m.step, m.timestamp))
        sampled = metrics.get("eval/accuracy_sampled")
        lines.append(
            f"eval at step {last.step}: accuracy {last.value:.3f}"
            + (f"  sampled {sampled:.3f}" if sampled is not None else "")
        )
    pools = {key.removeprefix("pool/"): value for key, value in metrics.items() if key.startswith("pool/")}
    if pools:
        lines.append("pools: " + "  ".join(f"{key} {value:g}" for key, value in sorted(pools.items())))
    alert = tags.get("monitor.hacking_alert")
    if alert is not None:
        lines.append(
            f"reward-hacking alert at step {tags['monitor.alert_step']}: {tags['monitor.alert_reason']}"
            if alert == "true"
            else "reward-hacking alert: none"
        )
    for key in sorted(tag for tag in tags if tag.startswith("rlsys.alert.")):
        lines.append(f"alert {key.removeprefix('rlsys.alert.')}: {tags[key]}")
    checkpoints = sorted(
        int(key.split(".")[2].removeprefix("step-")) for key in tags if key.startswith("rlsys.checkpoint.")
    )
    if checkpoints:
        lines.append(f"last checkpoint: step {checkpoints[-1]}")
    if "rlsys.model_uri" in tags:
        lines.append(f"registered as: {tags['rlsys.model_uri']}")
    return lines


def find_submitted_run(submission_id: str) -> str | None:
    """The MLflow run a submitted job tagged with its submission id (None: none in this store)."""
    runs = mlflow.search_runs(
        search_all_experiments=True,
        filter_string=f"tags.`rlsys.submission_id` = '{submission_id}'",
        output_format="list",
    )
    return runs[0].info.run_id if runs else None
