"""Shared fixtures: a tiny model built in seconds, a local Ray runtime, a throw-away MLflow store."""

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path

import pytest

# Engines run in-process and quietly in every test that starts one.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def ray_free_env() -> dict[str, str]:
    """This process's environment without RAY_* variables, so a child reaches only the head it is given."""
    return {key: value for key, value in os.environ.items() if not key.startswith("RAY_")}


@contextmanager
def ray_head(
    args: list[str], env: dict[str, str], log_path: Path, logs_to: Path | None = None
) -> Iterator[subprocess.Popen]:
    """`ray start --head --block` with its own temp dir, ports and process session.

    `ray stop` would stop every Ray process on the machine, so teardown signals only this head (SIGTERM makes
    `ray start --block` shut its node down) and then kills what is left of its session. With `logs_to`, the
    session's event logs (`events/`: the autoscaler's, the jobs', ...) and the autoscaler's log
    (`monitor.log`) are copied there before the temp dir goes.
    """
    # A short path: Ray's unix sockets live under the temp dir, and socket paths are limited to 107 bytes.
    temp_dir = tempfile.mkdtemp(prefix="rlsys-ray-", dir="/tmp")
    command = [
        str(BIN / "ray"),
        "start",
        "--head",
        "--block",
        "--disable-usage-stats",
        f"--temp-dir={temp_dir}",
        f"--dashboard-agent-listen-port={free_port()}",
        # Ports given, not chosen by the agents: the raylet then need not wait for the agents to report them
        # (a wait that times out, and aborts the raylet, when the machine is loaded far past its cores).
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        *args,
    ]
    with open(log_path, "w") as log:
        # Ray gives a new node's raylet 30 s to register (a constant): on a machine loaded far past its cores
        # the head can fail to start. It is started again (up to 5 times) rather than leaving the test's
        # drivers to wait on a head that is not there.
        for attempt in range(5):
            process = subprocess.Popen(
                command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
            while process.poll() is None and "Ray runtime started" not in log_path.read_text():
                time.sleep(0.5)
            if process.poll() is None or attempt == 4:
                break
            try:
                os.killpg(process.pid, signal.SIGKILL)  # what the failed start left
            except ProcessLookupError:
                pass
            log.write(f"\n--- the head did not start (exit {process.returncode}); starting it again ---\n")
            log.flush()
        try:
            yield process
        finally:
            logs = Path(temp_dir) / "session_latest" / "logs"
            if logs_to is not None and (logs / "events").is_dir():
                shutil.copytree(logs / "events", logs_to / "events", dirs_exist_ok=True)
                if (logs / "monitor.log").is_file():
                    shutil.copy(logs / "monitor.log", logs_to / "monitor.log")
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=60)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            try:
                os.killpg(process.pid, signal.SIGKILL)  # the session's leftovers (worker nodes too)
            except ProcessLookupError:
                pass
            shutil.rmtree(temp_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer model with the embedded model's tokenizer and chat template, barely trained (a few steps)."""
    from rlsys.bootstrap.build import build_model
    from rlsys.bootstrap.recipes import TINY_RECIPE

    out = tmp_path_factory.mktemp("tiny-model")
    build_model(out, TINY_RECIPE, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def tiny_tool_model_dir(tmp_path_factory) -> Path:
    """A 2-layer model of the `tools` family (tool-call tokens in its tokenizer), fine-tuned only on answers
    that call the tool: it opens a call at once, so rollouts exercise tool turns (what it writes inside one
    is barely Python; an error is a tool output like any other)."""
    from rlsys.bootstrap.build import build_model
    from rlsys.bootstrap.recipes import RECIPES, TINY_RECIPE

    recipe = replace(
        TINY_RECIPE,
        family="tools",
        pretrain_fact_sheets=RECIPES["tools"].pretrain_fact_sheets,
        sft_examples=200,
        sft_steps=60,
        sft_batch=8,
        bare_share=0.0,
    )
    out = tmp_path_factory.mktemp("tiny-tool-model")
    build_model(out, recipe, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def ray_runtime():
    """A local Ray runtime for the session (2 logical CPUs, as on the reference machine)."""
    import ray

    from rlsys.console import actor_runtime_env

    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", runtime_env=actor_runtime_env())
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def reward_model_dir(tiny_model_dir, tmp_path_factory) -> Path:
    """The tiny model's body with a fresh scalar head, saved as `rlsys train-rm` saves one (untrained: the
    plumbing is under test, not what it prefers)."""
    from transformers import AutoTokenizer

    from rlsys.rlhf.reward_model import init_reward_model, save_reward_model

    out = tmp_path_factory.mktemp("random-rm") / "reward_model"
    model = init_reward_model(str(tiny_model_dir), seed=0)
    save_reward_model(model, AutoTokenizer.from_pretrained(tiny_model_dir), out, {"max_length": 256})
    return out


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """A fresh SQLite MLflow store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # artifacts and checkpoints land in the test's folder
    import mlflow

    # The fluent API remembers the last experiment set, by id, across stores: start from this store's own.
    mlflow.set_experiment("Default")
    return uri
