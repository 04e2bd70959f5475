"""The reward-model job config (`rlsys train-rm jobs/rm_quickstart.yaml`): one typed schema, validated once.

Same conventions as the RL job (`rlsys.config`): every field declared with a description, unknown keys and
bad values fail with a message naming the key and the fix, `key.sub=value` overrides from the command line.
The learner section is the RL and SFT jobs' pool of DeepSpeed ranks, its micro-batches counted in rankings.
"""

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from rlsys.config import (
    KeyedError,
    ModelConfig,
    OptimizerConfig,
    PoolConfig,
    RanksConfig,
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
    torch_threads: int = Field(
        0, ge=0, description="Torch threads of the job's process while it samples (0: torch's default)."
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


class RMLearnerConfig(RanksConfig):
    """The learner pool (DeepSpeed ZeRO ranks) and its optimizer, as in the RL and SFT jobs."""

    micro_batch_size: int = Field(
        16,
        ge=1,
        description="Rankings per forward/backward on one rank (all their responses in one forward).",
    )
    max_tokens_per_micro_batch: int | None = Field(
        None,
        ge=1,
        description="Also cap each forward/backward at this many padded tokens (responses x longest "
        "response; a longer ranking goes alone); null: no cap.",
    )


# Keys `train` held when the job's own process trained the reward model, and where they are set now.
_MOVED_KEYS = {
    **{key: f"learner.{key}" for key in OptimizerConfig.model_fields},
    "torch_threads": "learner.torch_threads (the ranks) or data.generate.torch_threads (sampling rankings)",
}


class RMTrainConfig(Section):
    loss: Literal["bradley_terry", "plackett_luce"] = Field(
        "bradley_terry",
        description="Pairwise Bradley–Terry over all implied pairs, or listwise Plackett–Luce.",
    )
    epochs: int = Field(2, ge=1, description="Passes over the training rankings.")
    rankings_per_batch: int = Field(
        16, ge=1, description="Rankings per optimizer step, over all ranks (all their responses)."
    )
    eval_every: int = Field(50, ge=0, description="Held-out evaluation every K steps (0: only at the end).")
    output_dir: str = Field(
        "runs", description="The reward model goes to <output_dir>/<name>/<MLflow run id>/reward_model."
    )

    @model_validator(mode="before")
    @classmethod
    def _moved_keys(cls, data: Any) -> Any:
        """A job written before the learner pool trained reward models hears where its keys went, not just
        "unknown key"."""
        if isinstance(data, dict):
            for key, place in _MOVED_KEYS.items():
                if key in data:
                    raise KeyedError(key, data[key], f"moved out of train: set {place}")
        return data


class RMConfig(Section):
    name: Slug = Field(
        "reward_model",
        description="Job name: the MLflow run name and the output folder (letters, digits, . _ -).",
    )
    seed: int = Field(0, description="Seed of the scalar head's init and of the batch order.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: RMDataConfig = Field(default_factory=RMDataConfig)
    learner: RMLearnerConfig = Field(default_factory=RMLearnerConfig)
    train: RMTrainConfig = Field(default_factory=RMTrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    def pools(self) -> dict[str, PoolConfig]:
        return {"learner": self.learner}

    @model_validator(mode="after")
    def _every_rank_has_work(self) -> "RMConfig":
        if self.train.rankings_per_batch < self.learner.replicas:
            raise KeyedError(
                "learner.replicas",
                self.learner.replicas,
                f"more ranks than train.rankings_per_batch ({self.train.rankings_per_batch}): lower "
                "learner.replicas or raise train.rankings_per_batch",
            )
        return self


def load_rm_config(path: str | Path | None, overrides: list[str] = ()) -> RMConfig:
    """Read a reward-model job YAML (or defaults when `path` is None), apply overrides, validate."""
    return load_config(RMConfig, path, overrides, kind="reward-model", help_command="rlsys train-rm")
