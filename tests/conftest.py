"""Shared fixtures: a tiny model built in seconds, a local Ray runtime, a throw-away MLflow store."""

import os
from pathlib import Path

import pytest

# Engines run in-process and quietly in every test that starts one.
os.environ.setdefault("VLLM_ENABLE_V1_MULTIPROCESSING", "0")
os.environ.setdefault("VLLM_LOGGING_LEVEL", "ERROR")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """A 2-layer model with the embedded model's tokenizer and chat template, barely trained (a few steps).

    vLLM's CPU attention needs a head size of at least 32, hence hidden 64 with 2 heads.
    """
    from rlsys.bootstrap.build import Recipe, build_model

    recipe = Recipe(
        hidden_size=64,
        num_heads=2,
        ffn_size=128,
        num_layers=2,
        pretrain_problems=300,
        pretrain_fact_sheets=50,
        pretrain_steps=2,
        pretrain_batch=4,
        sft_examples=100,
        sft_steps=2,
        sft_batch=4,
    )
    out = tmp_path_factory.mktemp("tiny-model")
    build_model(out, recipe, seed=0, progress=False)
    return out


@pytest.fixture(scope="session")
def ray_runtime():
    """A local Ray runtime for the session (2 logical CPUs, as on the reference machine)."""
    import ray

    ray.init(
        num_cpus=2,
        include_dashboard=False,
        logging_level="ERROR",
        runtime_env={"env_vars": {"VLLM_LOGGING_LEVEL": "ERROR", "TOKENIZERS_PARALLELISM": "false"}},
    )
    yield ray
    ray.shutdown()


@pytest.fixture
def mlflow_store(tmp_path, monkeypatch) -> str:
    """A fresh SQLite MLflow store for one test."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.chdir(tmp_path)  # artifacts and checkpoints land in the test's folder
    return uri
