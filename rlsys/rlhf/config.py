"""The reward-model job config (`rlsys train-rm jobs/rm_quickstart.yaml`): one typed schema, validated once.

Same conventions as the RL job (`rlsys.config`): every field declared with a description, unknown keys and
bad values fail with a message naming the key and the fix, `key.sub=value` overrides from the command line.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from rlsys.config import (
    KeyedError,
    ModelConfig,
    OptimizerConfig,
    Section,
    Slug,
    TrackingConfig,
    load_config,
)


class GenerateConfig(Section):
    """Rankings made on the fly: the model's own answers ranked by the hidden preference (the quickstart)."""

    prompts: int = Field(
        3000, ge=2, description="Problems to rank answers for (train and held-out together)."
    )
    responses_per_prompt: int = Field(5, ge=2, description="Answers sampled and ranked per problem (k).")
    split: Literal["pretrain", "sft", "rl"] = Field(
        "rl", description="Task split the problems come from; 'eval' stays reserved for held-out evaluation."
    )
    seed: int = Field(1, description="Seed of the problem draw and of sampling.")
    temperature: float = Field(1.0, gt=0, le=10, description="Sampling temperature of the answers.")
    max_new_tokens: int = Field(96, ge=1, description="Longest sampled answer, in tokens.")
    perturb_share: float = Field(
        0.2, ge=0, le=1, description="Share of rankings where one answer is a perturbed copy of another."
    )


class RMDataConfig(Section):
    path: str | None = Field(
        None, description="JSONL of rankings or chosen/rejected pairs; null: generate (see data.generate)."
    )
    format: Literal["ranking", "pairwise"] = Field("ranking", description="What the file at data.path holds.")
    generate: GenerateConfig = Field(default_factory=GenerateConfig)
    heldout_share: float = Field(
        0.1, gt=0, lt=1, description="Share of prompts held out for rm/heldout_accuracy (never trained on)."
    )
    max_length: int = Field(384, ge=8, description="Longest prompt + response in tokens (the start is cut).")

    @field_validator("path")
    @classmethod
    def _file_exists(cls, path: str | None) -> str | None:
        if path is not None and not Path(path).expanduser().is_file():
            raise ValueError(
                f"no file at '{path}': give a JSONL file of rankings or pairs, or null to generate"
            )
        return path


class RMTrainConfig(OptimizerConfig):
    loss: Literal["bradley_terry", "plackett_luce"] = Field(
        "bradley_terry",
        description="Pairwise Bradley–Terry over all implied pairs, or listwise Plackett–Luce.",
    )
    epochs: int = Field(2, ge=1, description="Passes over the training rankings.")
    rankings_per_batch: int = Field(
        16, ge=1, description="Rankings per optimizer step (all their responses)."
    )
    torch_threads: int = Field(
        0, ge=0, description="Torch threads for generating and training (0: torch's default)."
    )
    eval_every: int = Field(50, ge=0, description="Held-out evaluation every K steps (0: only at the end).")
    output_dir: str = Field(
        "runs", description="The reward model goes to <output_dir>/<name>/<MLflow run id>/reward_model."
    )

    @model_validator(mode="after")
    def _whole_weights(self) -> "RMTrainConfig":
        if self.zero_stage == 3:
            raise KeyedError(
                "zero_stage",
                self.zero_stage,
                "ZeRO-3 shards the weights, which one small reward model does not need: use 0, 1 or 2",
            )
        return self


class RMConfig(Section):
    name: Slug = Field(
        "reward_model",
        description="Job name: the MLflow run name and the output folder (letters, digits, . _ -).",
    )
    seed: int = Field(0, description="Seed of the scalar head's init and of the batch order.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: RMDataConfig = Field(default_factory=RMDataConfig)
    train: RMTrainConfig = Field(default_factory=RMTrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)


def load_rm_config(path: str | Path | None, overrides: list[str] = ()) -> RMConfig:
    """Read a reward-model job YAML (or defaults when `path` is None), apply overrides, validate."""
    return load_config(RMConfig, path, overrides, kind="reward-model", help_command="rlsys train-rm")
