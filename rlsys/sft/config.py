"""The SFT job config (`rlsys sft jobs/sft_quickstart.yaml`): one typed schema, validated once at the door.

Same conventions as the RL job (`rlsys.config`): every field declared with a description (`rlsys sft
--help-config`), unknown keys and bad values fail with a message naming the key and the fix, `key.sub=value`
overrides from the command line. The learner section is the RL job's (a pool of DeepSpeed ranks), with a
learning-rate schedule on top.
"""

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from rlsys.config import (
    KeyedError,
    LearnerConfig,
    ModelConfig,
    PoolConfig,
    Section,
    Slug,
    TrackingConfig,
    load_config,
)


class SFTDataConfig(Section):
    """Chat data from dataset files (read like `task.kind: dataset`, `rlsys.prompt_files`)."""

    train: str | None = Field(
        None,
        description="Required: the training conversations, a local JSONL, JSON, Parquet or CSV file, or a "
        "directory written by `Dataset.save_to_disk`.",
    )
    eval: str | None = Field(None, description="Held-out conversations for eval/loss (a file or directory).")
    eval_fraction: float | None = Field(
        None, gt=0, lt=1, description="Hold out this share of the train rows instead (seeded)."
    )
    eval_size: int = Field(500, ge=1, description="At most this many held-out conversations are evaluated.")
    messages_key: str | None = Field(
        None,
        description="The column holding each conversation as a list of {role, content} messages; null: "
        "'messages' or 'conversations' when there, else prompt_key and completion_key.",
    )
    prompt_key: str | None = Field(
        None,
        description="With completion_key: the column holding the prompt (a string, or a list of messages); "
        "null: recognised ('prompt', 'question', ...).",
    )
    completion_key: str | None = Field(
        None,
        description="The column holding the reply (a string, or a list of assistant messages); null: "
        "recognised ('completion', 'answer', 'response', ...).",
    )
    system_prompt: str | None = Field(
        None, description="A system message put before every conversation that does not start with one."
    )
    max_tokens: int = Field(
        512,
        ge=8,
        le=1_000_000,
        description="Longest conversation in tokens (longer rows are refused) and, with packing, the length "
        "of a packed block.",
    )
    packing: bool = Field(
        True,
        description="Pack conversations into blocks of max_tokens (position ids restart per conversation, so "
        "none attends to another) instead of padding each to the longest of its batch.",
    )


class SFTLearnerConfig(LearnerConfig):
    """The learner pool (DeepSpeed ZeRO ranks) and its optimizer, as in the RL job, with a schedule."""

    micro_batch_size: int = Field(
        64, ge=1, description="Rows per forward/backward on one rank: packed blocks, or padded conversations."
    )
    lr_schedule: Literal["constant", "cosine"] = Field(
        "constant",
        description="After warmup: constant, or a cosine decay to min_lr_ratio of lr at the last step.",
    )
    min_lr_ratio: float = Field(
        0.1, ge=0, le=1, description="Cosine: the final learning rate, as a share of lr."
    )


class SFTTrainConfig(Section):
    steps: int = Field(1000, ge=1, le=10_000_000, description="Optimizer steps.")
    examples_per_step: int = Field(
        32, ge=1, le=1_000_000, description="Conversations per optimizer step (over all ranks)."
    )
    eval_every: int = Field(100, ge=0, description="Held-out loss every K steps (0: only at start and end).")
    checkpoint_every: int = Field(
        200, ge=0, description="Checkpoint every K steps (`rlsys sft JOB --resume`); 0: never."
    )
    keep_checkpoints: int = Field(2, ge=1, description="How many of the newest checkpoints to keep on disk.")
    output_dir: str = Field(
        "runs", description="Checkpoints and the model go to <output_dir>/<name>/<MLflow run id>/."
    )


class SFTConfig(Section):
    name: Slug = Field(
        "sft", description="Job name: the MLflow run name and the output folder (letters, digits, . _ -)."
    )
    seed: int = Field(0, description="Seed of the example order, the held-out split and the engine.")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: SFTDataConfig = Field(default_factory=SFTDataConfig)
    learner: SFTLearnerConfig = Field(default_factory=SFTLearnerConfig)
    train: SFTTrainConfig = Field(default_factory=SFTTrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    def pools(self) -> dict[str, PoolConfig]:
        return {"learner": self.learner}

    @model_validator(mode="after")
    def _data_given(self) -> "SFTConfig":
        data = self.data
        if data.train is None:
            raise KeyedError("data.train", None, "name the training conversations: set data.train")
        if (data.eval is None) == (data.eval_fraction is None):
            raise KeyedError(
                "data.eval",
                data.eval,
                "give held-out conversations: data.eval (a file) or data.eval_fraction, not both",
            )
        if data.messages_key is not None and (data.prompt_key or data.completion_key):
            raise KeyedError(
                "data.messages_key",
                data.messages_key,
                "a conversation comes from one messages column or from prompt and completion columns: drop "
                "messages_key or the other two",
            )
        return self

    @model_validator(mode="after")
    def _full_weights(self) -> "SFTConfig":
        if self.learner.lora is not None:
            raise KeyedError(
                "learner.lora", "set", "rlsys sft trains every weight (LoRA is the RL learner's): drop it"
            )
        return self

    @model_validator(mode="after")
    def _every_rank_has_work(self) -> "SFTConfig":
        if self.train.examples_per_step < self.learner.replicas:
            raise KeyedError(
                "learner.replicas",
                self.learner.replicas,
                f"more ranks than train.examples_per_step ({self.train.examples_per_step}): lower "
                "learner.replicas or raise train.examples_per_step",
            )
        return self


def sft_defaults() -> dict:
    """Every key's default, flat (what a resume compares a key the checkpoint's run did not log against)."""
    return SFTConfig.model_construct().flat()


def load_sft_config(path: str | Path | None, overrides: list[str] = ()) -> SFTConfig:
    """Read an SFT job YAML (or defaults when `path` is None), apply overrides, validate."""
    return load_config(SFTConfig, path, overrides, kind="SFT", help_command="rlsys sft")
