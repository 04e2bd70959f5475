"""A tracking server that does not answer costs a pause, then one clear error; anything else it says is
not retried. A table with columns some rows lack is logged whole."""

import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE, TEMPORARILY_UNAVAILABLE

from rlsys.errors import TrackingError
from rlsys.tracking import is_transient, table_columns, with_retries


class Clock:
    """A fake `time.sleep` that also moves `time.monotonic`, so backoff costs no time in a test."""

    def __init__(self, monkeypatch) -> None:
        self.now = 0.0
        self.slept: list[float] = []
        monkeypatch.setattr("rlsys.tracking.time.monotonic", lambda: self.now)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def test_a_server_that_comes_back_costs_only_a_pause(monkeypatch):
    clock = Clock(monkeypatch)
    answers = iter([requests.exceptions.ConnectionError("Connection refused")] * 3 + ["ok"])

    def call() -> str:
        answer = next(answers)
        if isinstance(answer, Exception):
            raise answer
        return answer

    assert with_retries("logging", call, timeout_s=60, sleep=clock.sleep) == "ok"
    assert clock.slept == [1.0, 2.0, 4.0]  # doubled each time


def test_a_server_that_stays_away_fails_past_the_bound_naming_what_was_recorded(monkeypatch):
    clock = Clock(monkeypatch)

    def call() -> None:
        raise requests.exceptions.ConnectionError("Connection refused")

    with pytest.raises(TrackingError, match="did not answer for 30s .*logging the metrics of step 3"):
        with_retries("logging the metrics of step 3", call, timeout_s=30, sleep=clock.sleep)
    assert sum(clock.slept) == pytest.approx(30)


def test_what_the_server_refuses_is_not_asked_again(monkeypatch):
    clock = Clock(monkeypatch)

    def call() -> None:
        raise MlflowException("Invalid metric name", error_code=INVALID_PARAMETER_VALUE)

    with pytest.raises(MlflowException, match="Invalid metric name"):
        with_retries("logging", call, timeout_s=30, sleep=clock.sleep)
    assert clock.slept == []
    assert is_transient(MlflowException("busy", error_code=TEMPORARILY_UNAVAILABLE))
    assert not is_transient(ValueError("a bug"))


def test_a_table_keeps_every_column_any_row_has():
    rows = [
        {"step": 1, "completion": "#### 4"},
        {"step": 2, "completion": "x", "tool_calls": [{"code": "1"}]},
    ]
    assert table_columns(rows) == {
        "step": [1, 2],
        "completion": ["#### 4", "x"],
        "tool_calls": [None, [{"code": "1"}]],
    }
