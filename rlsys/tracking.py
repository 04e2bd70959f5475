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

    def register_model(self, model_dir: str, name: str) -> str:
        from rlsys.registry import register_policy

        return register_policy(model_dir, name, self.run_id)

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
