"""A saved policy into the MLflow model registry and back out as a directory transformers and vLLM load."""

import mlflow
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from rlsys.errors import ModelNotFoundError
from rlsys.registry import download_policy, register_policy

PROMPT = [{"role": "user", "content": "Tom has 3 apples and buys 4 more. How many apples does he have?"}]


def _greedy(model_dir: str, new_tokens: int = 12) -> list[int]:
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    ids = tokenizer.apply_chat_template(
        PROMPT, add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    out = model.generate(**ids, max_new_tokens=new_tokens, do_sample=False)
    return out[0, ids["input_ids"].shape[1] :].tolist()


@pytest.fixture
def registered(tiny_model_dir, mlflow_store, tmp_path):
    """The tiny model registered as a version of 'tiny-policy' from a finished run; (uri, run id)."""
    with mlflow.start_run() as run:
        mlflow.log_param("job", "test")
    lineage = {"rlsys.run_id": run.info.run_id, "rlsys.data.train": "data/train.parquet sha256:abc"}
    return register_policy(str(tiny_model_dir), "tiny-policy", run.info.run_id, lineage), run.info.run_id


def test_registered_policy_downloads_as_an_hf_directory_that_generates_like_the_original(
    registered, tiny_model_dir, tmp_path
):
    uri, run_id = registered
    assert uri == "models:/tiny-policy/1"
    version = mlflow.MlflowClient().get_model_version("tiny-policy", "1")
    assert version.run_id == run_id
    assert version.tags["rlsys.data.train"] == "data/train.parquet sha256:abc"  # what made it, on the version

    local = download_policy(uri, str(tmp_path / "download"))
    for name in ("config.json", "model.safetensors", "tokenizer.json", "chat_template.jinja"):
        assert (tmp_path / "download" / "model" / name).is_file(), name
    original = AutoModelForCausalLM.from_pretrained(tiny_model_dir).state_dict()
    loaded = AutoModelForCausalLM.from_pretrained(local).state_dict()
    assert original.keys() == loaded.keys()
    assert all(torch.equal(original[key], loaded[key]) for key in original)
    generated = _greedy(local)
    assert len(generated) > 0
    assert generated == _greedy(str(tiny_model_dir))


def test_registering_inside_the_active_run_adds_a_version(registered, tiny_model_dir):
    _, first_run = registered
    with mlflow.start_run() as run:
        uri = register_policy(str(tiny_model_dir), "tiny-policy", run.info.run_id)
        assert mlflow.active_run().info.run_id == run.info.run_id  # the caller's run is left active
    assert uri == "models:/tiny-policy/2"
    versions = mlflow.MlflowClient().search_model_versions("name='tiny-policy'")
    assert {v.run_id for v in versions} == {first_run, run.info.run_id}


def test_a_directory_without_a_model_is_refused(tmp_path, mlflow_store):
    with mlflow.start_run() as run:
        pass
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        register_policy(str(tmp_path), "nothing", run.info.run_id)


@pytest.mark.integration
def test_vllm_serves_the_downloaded_policy(registered, tiny_model_dir, tmp_path):
    from vllm import LLM, SamplingParams

    uri, _ = registered
    local = download_policy(uri, str(tmp_path / "download"))
    llm = LLM(
        model=local,
        dtype="float32",
        kv_cache_memory_bytes=64 << 20,
        enforce_eager=True,
        enable_chunked_prefill=False,
        seed=0,
    )
    try:
        prompt = AutoTokenizer.from_pretrained(local).apply_chat_template(
            PROMPT, add_generation_prompt=True, tokenize=False
        )
        output = llm.generate([prompt], SamplingParams(temperature=0.0, max_tokens=12))[0].outputs[0]
        assert len(output.token_ids) > 0
        assert list(output.token_ids) == _greedy(str(tiny_model_dir))[: len(output.token_ids)]
    finally:
        del llm
