"""The probe job config (`rlsys probe jobs/abstain_probe.yaml`): one typed schema, validated once at the door.

Same conventions as the RL job (`rlsys.config`): every field declared with a description (`rlsys probe
--help-config`), unknown keys and bad values fail with a message naming the key and the fix. The rollout and
verifier sections are the RL job's: the probe samples with the same engines and judges with the same
rewards, here the `abstain` reward, which sorts every answer into right, abstained or wrong.
"""

from pathlib import Path

from pydantic import Field, model_validator

from rlsys.config import (
    KeyedError,
    ModelConfig,
    PoolConfig,
    RolloutConfig,
    Section,
    Slug,
    TrackingConfig,
    VerifierConfig,
    load_config,
)
from rlsys.types import Prompt
from verifiers.rewards import abstains


class ProbeDataConfig(Section):
    """Questions with reference answers, from a dataset file (read as `task.kind: dataset` reads one)."""

    questions: str | None = Field(
        None,
        description="Required: the questions, a local JSONL, JSON, Parquet or CSV file or a `save_to_disk` "
        "directory; layouts are recognised as for task.kind: dataset.",
    )
    prompt_key: str | None = Field(None, description="The column holding the question; null: recognised.")
    answer_key: str | None = Field(
        None, description="The column holding the reference answer; null: recognised ('[]': none is right)."
    )
    system_prompt: str | None = Field(
        None, description="A system message put before every question that does not start with one."
    )
    limit: int | None = Field(None, ge=1, description="Probe at most this many questions (the first ones).")


class ProbeSettings(Section):
    """What counts as known and unknown, and the abstention data written for `rlsys sft`."""

    known_at: float = Field(
        0.75,
        gt=0,
        le=1,
        description="A question is known when at least this share of its samples is right: its most "
        "common right answer goes into the abstention data.",
    )
    unknown_at: float = Field(
        1.0,
        gt=0,
        le=1,
        description="A question is unknown when at least this share of its samples is wrong: it goes into "
        "the abstention data with abstain_answer. Questions in between are left out.",
    )
    abstain_answer: str = Field(
        "I don't know.",
        description="The reply that teaches the model to abstain, in the model's own phrasing (it must hold "
        "one of verifier.abstention.phrases).",
    )


class ProbeVerifierConfig(VerifierConfig):
    rewards: dict[str, float] = Field(
        default_factory=lambda: {"abstain": 1.0},
        description="The reward that sorts the answers: the probe needs 'abstain' (verifier.abstention says "
        "which answers abstain and who judges the others right).",
    )


class ProbeConfig(Section):
    name: Slug = Field(
        "probe", description="Job name: the MLflow run name and the output folder (letters, digits, . _ -)."
    )
    seed: int = Field(0, description="Seed of sampling (with the question's index).")
    model: ModelConfig = Field(default_factory=ModelConfig)
    data: ProbeDataConfig = Field(default_factory=ProbeDataConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    verifier: ProbeVerifierConfig = Field(default_factory=ProbeVerifierConfig)
    probe: ProbeSettings = Field(default_factory=ProbeSettings)
    output_dir: str = Field(
        "runs", description="The knowledge map and the abstention data go to <output_dir>/<name>/<run id>/."
    )
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)

    def pools(self) -> dict[str, PoolConfig]:
        return {"rollout": self.rollout, "verifier": self.verifier}

    @model_validator(mode="after")
    def _probe_fits(self) -> "ProbeConfig":
        if self.data.questions is None:
            raise KeyedError("data.questions", None, "name the questions to probe: set data.questions")
        if "abstain" not in self.verifier.rewards:
            raise KeyedError(
                "verifier.rewards",
                self.verifier.rewards,
                "the probe sorts answers with the abstain reward: add abstain (e.g. {abstain: 1.0})",
            )
        phrases = self.verifier.abstention.phrases
        if not abstains(self.probe.abstain_answer, phrases):
            raise KeyedError(
                "probe.abstain_answer",
                self.probe.abstain_answer,
                f"it holds none of verifier.abstention.phrases ({phrases}), so the reward would call it "
                "wrong: reword it or add its phrase there",
            )
        return self


def load_probe_config(path: str | Path | None, overrides: list[str] = ()) -> ProbeConfig:
    """Read a probe job YAML (or defaults when `path` is None), apply overrides, validate."""
    return load_config(ProbeConfig, path, overrides, kind="probe", help_command="rlsys probe")


def probe_questions(config: ProbeConfig) -> list[Prompt]:
    """The questions a probe asks (`rlsys.prompt_files.read_prompts` of `data.questions`), checked row by row:
    what both the dry run and the probe read."""
    from rlsys.prompt_files import read_prompts  # imports datasets: not needed to load the config

    data = config.data
    return read_prompts(
        data.questions,
        "data.questions",
        prompt_key=data.prompt_key,
        answer_key=data.answer_key,
        system_prompt=data.system_prompt,
        verifier=config.verifier,
        limit=data.limit,
    )
