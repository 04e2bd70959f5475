"""The MLflow model registry: a job's final policy as a new version of a registered model, and back.

    uri = register_policy("runs/quickstart/<run id>/policy", "quickstart-policy", run_id)
    # -> "models:/quickstart-policy/3"
    local_dir = download_policy("models:/quickstart-policy/3", "/tmp/policy")  # a plain HF model directory
    vllm.LLM(model=local_dir)  # or transformers.AutoModelForCausalLM.from_pretrained(local_dir)

The policy is logged with MLflow's `transformers` flavor (task text-generation) from its saved directory, so
the registered version is also a pyfunc model (`mlflow models serve -m models:/NAME/VERSION`). Nothing is
fetched from a model hub: the model is named by its absolute local path, which is never a hub repo id.
The store is MLflow's current tracking URI (`MLFLOW_TRACKING_URI`, or what the caller set).
"""

from pathlib import Path

import mlflow

from rlsys.errors import ModelNotFoundError

# Where the flavor puts the Hugging Face files inside a logged model's artifacts.
_MODEL_SUBDIR = "model"

# Written into the logged model's requirements instead of inferring them: inference imports packages
# (torchvision) that the CPU environment deliberately does not install.
_REQUIREMENTS = ["torch", "transformers", "tokenizers", "safetensors"]


def register_policy(
    model_dir: str, registered_name: str, run_id: str, lineage: dict[str, str] | None = None
) -> str:
    """Log the saved HF policy directory (model + tokenizer) to MLflow run `run_id` and register it as a new
    version of `registered_name`, tagged with its `lineage` (`rlsys.lineage`); returns the version's URI,
    `models:/<name>/<version>`.

    Works inside the run's active context (the trainer's) or on its own (the run is resumed for the call).
    """
    directory = Path(model_dir).expanduser().resolve()
    if not (directory / "config.json").is_file():
        raise ModelNotFoundError(f"no Hugging Face model at '{model_dir}' (no config.json there)")
    import mlflow.transformers

    active = mlflow.active_run()
    if active is not None and active.info.run_id == run_id:
        info = _log(directory, registered_name)
    else:
        with mlflow.start_run(run_id=run_id, nested=active is not None):
            info = _log(directory, registered_name)
    version = info.registered_model_version
    client = mlflow.MlflowClient()
    for key, value in (lineage or {}).items():
        client.set_model_version_tag(registered_name, version, key, value)
    return f"models:/{registered_name}/{version}"


def _log(directory: Path, registered_name: str):
    return mlflow.transformers.log_model(
        transformers_model=str(directory),  # a checkpoint path: copied as saved, not re-serialised
        name="policy",
        task="text-generation",
        registered_model_name=registered_name,
        pip_requirements=_REQUIREMENTS,
    )


def download_policy(model_uri: str, dst: str) -> str:
    """Download a registered (or logged) policy to `dst`; returns the Hugging Face model directory in it."""
    root = Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=dst))
    directory = root / _MODEL_SUBDIR
    if not (directory / "config.json").is_file():
        raise ModelNotFoundError(
            f"'{model_uri}' holds no Hugging Face model directory (looked in {directory})"
        )
    return str(directory)
