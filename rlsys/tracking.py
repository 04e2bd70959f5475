"""MLflow tracking: one run per job, the resolved config as params, metrics per step, artifacts.

The store is MLflow's default (a local SQLite file and ./mlruns) unless `tracking.tracking_uri` or
`MLFLOW_TRACKING_URI` names another.

A tracking server that does not answer (connection refused, a timeout, 429 or 5xx) is asked again, with
backoff, for up to `tracking.retry_timeout_s`; a blip costs a pause, not the run. Past the bound the call
raises `TrackingError`, naming the server and what was being recorded, and the job stops: the checkpoints
already written stay, and `--resume` continues the run once the server is back. Each call is made so that
asking twice records it once (metrics carry the time they were first sent).
"""

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import mlflow

from rlsys.config import TrackingConfig
from rlsys.console import note
from rlsys.errors import TrackingError

# MLflow refuses param values over this many characters.
_MAX_PARAM_LENGTH = 6000
# MLflow itself retries an unanswered HTTP request 7 times over about 4 minutes, each attempt waiting up to
# 120 s: unbounded for a run's purposes. rlsys retries whole calls up to tracking.retry_timeout_s, so each
# request is kept short (a value set in the environment wins).
_HTTP_BOUNDS = {
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2",
    "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "30",
}
# Answers of a server that may pass: rate limiting, overload, a proxy without its backend.
_TRANSIENT_CODES = {"TEMPORARILY_UNAVAILABLE", "REQUEST_LIMIT_EXCEEDED"}
_TRANSIENT_STATUS = {429, 502, 503, 504}
_MAX_BACKOFF_S = 15.0

T = TypeVar("T")


def use_store(config: TrackingConfig) -> None:
    """Point MLflow at the job's store, with each HTTP request bounded (see `_HTTP_BOUNDS`)."""
    for key, value in _HTTP_BOUNDS.items():
        os.environ.setdefault(key, value)
    if config.tracking_uri:
        mlflow.set_tracking_uri(config.tracking_uri)


def is_transient(err: BaseException) -> bool:
    """Whether `err` says the tracking server did not answer (worth asking again), rather than that it
    refused what was asked."""
    import requests
    from mlflow.exceptions import MlflowException

    if isinstance(err, requests.exceptions.RequestException):
        return True
    if not isinstance(err, MlflowException):
        return False
    if isinstance(err.__cause__ or err.__context__, requests.exceptions.RequestException):
        return True  # MLflow's own retries gave up: refused, timed out, or 5xx throughout
    return err.error_code in _TRANSIENT_CODES or err.get_http_status_code() in _TRANSIENT_STATUS


def store_name() -> str:
    """The tracking URI for messages, without any credentials in it."""
    uri = mlflow.get_tracking_uri()
    parts = urlsplit(uri)
    if parts.password is None and parts.username is None:
        return uri
    return urlunsplit(parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")))


def with_retries(doing: str, action: Callable[[], T], timeout_s: float, *, sleep=time.sleep) -> T:
    """`action()`, asked again with backoff while the tracking server does not answer, for up to
    `timeout_s` seconds; then `TrackingError`. Any other error propagates at once."""
    deadline = time.monotonic() + timeout_s
    backoff = 1.0
    while True:
        try:
            return action()
        except Exception as err:
            if not is_transient(err):
                raise
            reason = _reason(err)
            left = deadline - time.monotonic()
            if left <= 0:
                raise TrackingError(
                    f"the MLflow tracking server {store_name()} did not answer for {timeout_s:g}s "
                    f"(tracking.retry_timeout_s) while {doing}: {reason}. Start it again, or point "
                    "tracking.tracking_uri (MLFLOW_TRACKING_URI) at one that runs"
                ) from None
            if backoff == 1.0:
                note(
                    f"the MLflow tracking server {store_name()} did not answer while {doing} ({reason}); "
                    f"asking again for up to {timeout_s:g}s"
                )
            sleep(min(backoff, left))
            backoff = min(backoff * 2, _MAX_BACKOFF_S)


def _reason(err: BaseException) -> str:
    """The root of a connection failure in a few words (MLflow's message repeats the URL and pool)."""
    root = err.__cause__ or err.__context__ or err
    text = str(root)
    for words in ("Connection refused", "Read timed out", "timed out", "Name or service not known"):
        if words in text:
            return words.lower()
    return text.splitlines()[0][:200] if text else type(root).__name__


def table_columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """Rows as columns: every key any row has, in the order keys first appear, None where a row lacks one
    (a samples table's `tool_calls` is only on the rows whose completion called a tool)."""
    keys = list(dict.fromkeys(key for row in rows for key in row))
    return {key: [row.get(key) for row in rows] for key in keys}


class Tracker:
    """A thin handle on one MLflow run (the loop's `rlsys.protocols.Tracker`).

    As a context manager it ends the run when the block ends: FINISHED, KILLED when interrupted, FAILED
    when the block raised anything else (left as it is when the server is the problem: the run is resumed).
    """

    def __init__(self, config: TrackingConfig, run_name: str, run_id: str | None = None) -> None:
        use_store(config)
        self.retry_timeout_s = config.retry_timeout_s
        self._call("opening the MLflow run", lambda: mlflow.set_experiment(config.experiment))
        self.run = self._call(
            "opening the MLflow run",
            lambda: mlflow.start_run(run_id=run_id, run_name=None if run_id else run_name),
        )
        self.run_id = self.run.info.run_id

    def _call(self, doing: str, action: Callable[[], T]) -> T:
        return with_retries(doing, action, self.retry_timeout_s)

    def log_params(self, params: dict[str, Any]) -> None:
        values = {key: str(value)[:_MAX_PARAM_LENGTH] for key, value in params.items()}
        self._call("logging the params", lambda: mlflow.log_params(values))

    def log_metrics(self, metrics: dict[str, float], step: int) -> None:
        from mlflow.entities import Metric

        now = int(time.time() * 1000)  # once: a batch sent twice is the same rows
        batch = [Metric(key, float(value), now, step) for key, value in metrics.items()]
        client = mlflow.MlflowClient()
        self._call(f"logging the metrics of step {step}", lambda: client.log_batch(self.run_id, batch))

    def log_table(self, rows: list[dict[str, Any]], artifact_file: str) -> None:
        """Rows of a table as JSON (MLflow's table viewer shows it)."""
        if rows:
            table = table_columns(rows)
            self._call(f"logging {artifact_file}", lambda: mlflow.log_table(table, artifact_file))

    def log_figure(self, figure, artifact_file: str) -> None:
        self._call(f"logging {artifact_file}", lambda: mlflow.log_figure(figure, artifact_file))

    def log_dict(self, data: dict, artifact_file: str) -> None:
        self._call(f"logging {artifact_file}", lambda: mlflow.log_dict(data, artifact_file))

    def log_artifacts(self, directory: str | Path, artifact_path: str) -> None:
        self._call(f"logging {artifact_path}", lambda: mlflow.log_artifacts(str(directory), artifact_path))

    def set_tags(self, tags: dict[str, str]) -> None:
        self._call("setting tags", lambda: mlflow.set_tags(tags))

    def history(self, key: str) -> list[tuple[int, float]]:
        return self._call(f"reading {key}", lambda: read_metric_history(self.run_id, key))

    def register_model(self, model_dir: str, name: str, lineage: dict[str, str]) -> str:
        from rlsys.registry import register_policy

        return self._call(
            f"registering the policy as {name}",
            lambda: register_policy(model_dir, name, self.run_id, lineage),
        )

    def finish(self, status: str = "FINISHED") -> None:
        self._call("closing the MLflow run", lambda: mlflow.end_run(status=status))

    def __enter__(self) -> "Tracker":
        return self

    def __exit__(self, error_type, error, traceback) -> None:
        if error_type is None:
            self.finish("FINISHED")
        elif issubclass(error_type, TrackingError):
            return  # the server is gone: the run stays open in it, and a resume continues it
        else:  # Ctrl-C or SIGTERM: stopped by the user, not failed
            status = "KILLED" if issubclass(error_type, KeyboardInterrupt) else "FAILED"
            try:
                self.finish(status)
            except TrackingError as err:  # the error under way is the one to report
                note(f"the run could not be marked {status}: {err}")


def read_run(run_id: str, retry_timeout_s: float = 300.0) -> tuple[dict[str, str], dict[str, str]]:
    """A run's params and tags, as MLflow holds them (strings)."""
    run = with_retries(
        f"reading run {run_id}", lambda: mlflow.MlflowClient().get_run(run_id), retry_timeout_s
    )
    return dict(run.data.params), dict(run.data.tags)


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
