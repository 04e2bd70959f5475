"""What made a model: the lineage a registered policy version carries in MLflow, so `models:/NAME/VERSION`
answers "which config, data, base model, reward model and checkpoint, and how well did it do" on its own.

    rlsys.run_id, rlsys.job              the run that trained it
    rlsys.config                         the resolved config (the run's artifact config/job.json) and its hash
    rlsys.base_model                     the model directory training started from
    rlsys.data.<split>                   each data file: path and content hash when read (or the generator)
    rlsys.reward_model                   the reward model's directory and the run that trained it
    rlsys.checkpoint                     the last checkpoint: step, folder, manifest digest
    rlsys.eval.<metric>                  the final evaluation
"""

import hashlib
import json

from rlsys.checkpoint import CheckpointInfo
from rlsys.config import JobConfig
from rlsys.rlhf.reward_model import reward_model_info
from rlsys.sft.config import SFTConfig


def lineage(
    config: JobConfig | SFTConfig,
    *,
    sources: dict[str, str],
    run_id: str,
    base_model: str | None,
    checkpoint: CheckpointInfo | None,
    checkpoint_digest: str | None,
    evaluation: dict[str, float],
) -> dict[str, str]:
    """The model-version tags of a model trained by run `run_id`, an RL or an SFT job (see the module
    docstring)."""
    config_json = json.dumps(config.model_dump(mode="json"), sort_keys=True)
    config_digest = hashlib.sha256(config_json.encode()).hexdigest()
    tags = {
        "rlsys.run_id": run_id,
        "rlsys.job": config.name,
        "rlsys.config": f"runs:/{run_id}/config/job.json sha256:{config_digest}",
        "rlsys.base_model": base_model or config.model.path,
        **{f"rlsys.data.{split}": source for split, source in sources.items()},
        **{f"rlsys.eval.{key.removeprefix('eval/')}": f"{value:.4f}" for key, value in evaluation.items()},
    }
    if isinstance(config, JobConfig) and config.reward_model is not None:
        trained_by = reward_model_info(config.reward_model.path).get("mlflow_run_id", "unknown")
        tags["rlsys.reward_model"] = f"{config.reward_model.path} (run {trained_by})"
    if checkpoint is not None:
        tags["rlsys.checkpoint"] = f"step {checkpoint.step} at {checkpoint.path} sha256:{checkpoint_digest}"
    return tags
