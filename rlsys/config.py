"""The job config: one typed schema, validated once at the door.

A job is a YAML file (see `jobs/`) plus `key.sub=value` overrides from the command line. Every field is
declared here with a description (shown by `rlsys run --help-config`); unknown keys, wrong types and
impossible values fail with a message that names the key and how to fix it.
"""

import re
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, get_args

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from rlsys.errors import ConfigError
from rlsys.tools import TOOL_CALL_END, TOOL_CALL_START

EMBEDDED_MODEL = "embedded"
ConfigT = TypeVar("ConfigT", bound=BaseModel)
_SLUG = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def _check_slug(name: str) -> str:
    if not _SLUG.fullmatch(name) or ".." in name:
        raise ValueError(
            f"'{name}' names a folder under the output directory: use letters, digits, '.', '_' and '-' "
            f"(no '/', no '..', at most 128 characters)"
        )
    return name


# A job name: it becomes a folder, so it stays one folder inside the output directory.
Slug = Annotated[str, AfterValidator(_check_slug)]
Dtype = Literal["float32", "bfloat16", "float16"]


def torch_dtype(name: str):
    """The torch dtype a `model.dtype` name stands for (torch is imported only here, not with the config)."""
    if name not in get_args(Dtype):
        raise ValueError(f"unknown dtype {name!r}; expected one of {list(get_args(Dtype))}")
    import torch

    return getattr(torch, name)


class KeyedError(ValueError):
    """A validator's error reported under `key` (relative to the section that raised it), not the section.

    Cross-field checks run on a whole section; this names the field the user has to change.
    """

    def __init__(self, key: str, value: Any, message: str) -> None:
        super().__init__(message)
        self.key, self.value = key, value


class Section(BaseModel):
    """A config section: unknown keys are errors, defaults are validated too."""

    # Every float finite: an infinite learning rate or a NaN weight is caught here, not at step 1.
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)

    def flat(self) -> dict[str, Any]:
        """The resolved config as `section.key -> value`, for MLflow params.

        Nested sections are dotted all the way down; a field's own value (a mapping such as
        `verifier.rewards`, a list, or an optional section left out as None) stays one entry.
        """
        dumped = self.model_dump(mode="json")
        flat: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, BaseModel):
                flat.update({f"{name}.{key}": item for key, item in Section.flat(value).items()})
            else:
                flat[name] = dumped[name]
        return flat


class ModelConfig(Section):
    path: str = Field(
        EMBEDDED_MODEL,
        description="Hugging Face model directory, or 'embedded' for the tiny model rlsys builds itself.",
    )
    seed: int = Field(0, description="Seed of the embedded model's build (ignored for a model path).")
    recipe: str = Field(
        "arithmetic",
        description="Which embedded model to build: a named recipe of rlsys.bootstrap.recipes (its task "
        "family); ignored for a model path.",
    )
    dtype: Dtype = Field("float32", description="Weights and compute.")
    chat_template: str | None = Field(
        None,
        description="A Jinja chat template (or the path of a .jinja file) for a model whose tokenizer has "
        "none; null: the tokenizer's own.",
    )

    @field_validator("recipe")
    @classmethod
    def _known_recipe(cls, recipe: str) -> str:
        from rlsys.bootstrap.recipes import RECIPES

        if recipe not in RECIPES:
            raise ValueError(f"no embedded recipe '{recipe}': choose from {sorted(RECIPES)}")
        return recipe

    @field_validator("path")
    @classmethod
    def _path_exists(cls, path: str) -> str:
        if path != EMBEDDED_MODEL and not (Path(path).expanduser() / "config.json").is_file():
            raise ValueError(
                f"no Hugging Face model at '{path}' (no config.json there): give a local model directory "
                f"or 'embedded'"
            )
        return path


class TaskConfig(Section):
    """Where prompts come from: a built-in generated task, or dataset files (`kind: dataset`)."""

    kind: Literal["arithmetic", "code", "tools", "dataset"] = Field(
        "arithmetic",
        description="A built-in task (the embedded model's generated families): 'arithmetic' (word "
        "problems), 'code' (write a list function; hidden tests), 'tools' (large-number arithmetic, for a "
        "Python tool); or 'dataset' (files).",
    )
    seed: int = Field(0, description="Seed of the problem generator, or of the eval_fraction split.")
    eval_size: int = Field(
        500,
        ge=1,
        description="Held-out problems for eval/accuracy (dataset: at most this many per eval set).",
    )
    train_size: int = Field(
        20_000,
        ge=1,
        le=10_000_000,
        description="A built-in task: training problems generated; steps walk through them in a seeded "
        "order, epoch by epoch.",
    )
    train: str | None = Field(
        None,
        description="Dataset: the training prompts, a local JSONL, JSON, Parquet or CSV file, or a "
        "directory written by `Dataset.save_to_disk`.",
    )
    eval: str | dict[str, str] | None = Field(
        None,
        description="Dataset: held-out prompts (a file or directory as for train), or named eval sets "
        "{name: path} logged as eval/<name>/accuracy.",
    )
    eval_fraction: float | None = Field(
        None, gt=0, lt=1, description="Dataset: hold out this share of the train rows instead (seeded)."
    )
    prompt_key: str | None = Field(
        None,
        description="Dataset: the column holding the prompt (a string, or a list of chat messages); null: "
        "recognise the common layouts (verl, TRL, question/answer).",
    )
    answer_key: str | None = Field(
        None,
        description="Dataset: the column holding the gold answer (or tests); a dotted path reads a nested "
        "field (reward_model.ground_truth); null: recognised from the layout.",
    )
    reward_key: str | None = Field(
        None, description="Dataset: a column naming each row's reward (a verifier.rewards name); null: all."
    )
    system_prompt: str | None = Field(
        None, description="A system message put before every prompt that does not start with one."
    )

    @model_validator(mode="after")
    def _keys_fit_the_kind(self) -> "TaskConfig":
        dataset_keys = ("train", "eval", "eval_fraction", "prompt_key", "answer_key", "reward_key")
        if self.kind != "dataset":
            for key in dataset_keys:
                if getattr(self, key) is not None:
                    raise KeyedError(key, getattr(self, key), "only for kind: dataset; set kind or drop it")
            return self
        if self.train is None:
            raise KeyedError("train", None, "kind: dataset needs a training file: set task.train")
        if "train_size" in self.model_fields_set:
            raise KeyedError(
                "train_size",
                self.train_size,
                "only for a built-in task (kind: arithmetic, code, tools): the file sets it",
            )
        if (self.eval is None) == (self.eval_fraction is None):
            raise KeyedError(
                "eval",
                self.eval,
                "give held-out prompts: task.eval (a file, or {name: file}) or task.eval_fraction, not both",
            )
        if isinstance(self.eval, dict) and not self.eval:
            raise KeyedError("eval", self.eval, "name at least one eval set, e.g. {test: data/test.parquet}")
        return self

    def eval_files(self) -> dict[str, str]:
        """The eval sets by name; a single file is the unnamed set ''."""
        if isinstance(self.eval, dict):
            return dict(self.eval)
        return {"": self.eval} if self.eval is not None else {}


class PoolConfig(Section):
    replicas: int = Field(1, ge=1, description="Number of actors in the pool.")
    num_cpus: float = Field(1.0, ge=0, description="CPUs Ray reserves for each actor.")
    num_gpus: float = Field(0.0, ge=0, description="GPUs Ray reserves for each actor.")
    resources: dict[str, float] = Field(
        default_factory=dict, description="Custom Ray resources each actor requests (e.g. a node type's tag)."
    )
    max_restarts: int = Field(3, ge=0, description="How often Ray restarts a crashed actor of this pool.")
    call_timeout_s: float = Field(
        600.0,
        gt=0,
        description="Deadline of one call to an actor of this pool (a rollout chunk, a scoring batch, a "
        "weight sync), counted from when the actor starts on it: past it the actor is killed (Ray restarts "
        "it) and its work is dispatched again.",
    )
    start_timeout_s: float = Field(
        900.0,
        gt=0,
        description="Deadline for an actor to start or restart (model loaded, engine warmed up); at job "
        "start past it the job fails naming the pool (often: the cluster has no room for it).",
    )
    max_attempts: int = Field(
        3,
        ge=1,
        description="Dispatches of one piece of work, the first included, before the pool fails the step: a "
        "lost actor, a missed deadline or a lost object each cost one (learner work is never re-dispatched).",
    )


class ElasticPoolConfig(PoolConfig):
    """A pool that grows and shrinks between `replicas` and `max_replicas` on its measured backlog
    (`rlsys.autoscale`)."""

    max_replicas: int | None = Field(
        None,
        ge=1,
        description="Grow up to this many actors while the pool's backlog holds steps up, and back down to "
        "`replicas` when it clears (null: fixed size).",
    )

    @model_validator(mode="after")
    def _max_not_below_min(self) -> "ElasticPoolConfig":
        if self.max_replicas is not None and self.max_replicas < self.replicas:
            raise KeyedError(
                "max_replicas",
                self.max_replicas,
                f"below replicas ({self.replicas}): raise it or drop it (null keeps the pool's size fixed)",
            )
        return self


class RolloutConfig(ElasticPoolConfig):
    samples_per_prompt: int = Field(
        8, ge=2, le=4096, description="Group size G: samples drawn for each prompt."
    )
    temperature: float = Field(1.0, gt=0, le=10, description="Sampling temperature for training rollouts.")
    top_p: float = Field(1.0, gt=0, le=1, description="Nucleus sampling mass.")
    max_new_tokens: int = Field(128, ge=1, le=1_000_000, description="Longest completion, in tokens.")
    kv_cache_gib: float | None = Field(
        0.25, gt=0, description="KV-cache size per engine in GiB; null: size it by gpu_memory_utilization."
    )
    gpu_memory_utilization: float = Field(
        0.9, gt=0, le=0.98, description="vLLM's share of GPU memory, used when kv_cache_gib is null."
    )
    engine_threads: int = Field(0, ge=0, description="Torch threads of each CPU engine (0: Ray's num_cpus).")
    max_tool_calls: int = Field(
        0,
        ge=0,
        le=64,
        description="Tool calls a response may make: Python between tool_call_start and tool_call_end, run "
        "in the code sandbox on the verifier pool, its output read back as a tool turn (masked out of the "
        "loss); max_new_tokens bounds the whole response. 0: single-turn.",
    )
    tool_call_start: str = Field(
        TOOL_CALL_START, min_length=1, description="The special token that opens a tool call."
    )
    tool_call_end: str = Field(
        TOOL_CALL_END,
        min_length=1,
        description="The special token that closes a tool call: the engine stops there and runs the call.",
    )
    tool_timeout_s: float = Field(
        5.0, gt=0, le=600, description="Time limit of one tool call; one that overruns reads as an error."
    )
    tool_memory_mb: int = Field(256, ge=16, le=65_536, description="Memory limit of one tool call.")
    tool_output_chars: int = Field(
        1000,
        ge=1,
        le=1_000_000,
        description="Characters of a tool call's output (stdout, stderr, then the error) the policy reads; "
        "the rest is cut, and the cut marked.",
    )

    @model_validator(mode="after")
    def _distinct_tool_tokens(self) -> "RolloutConfig":
        if self.tool_call_start == self.tool_call_end:
            raise KeyedError(
                "tool_call_end",
                self.tool_call_end,
                "must differ from tool_call_start: give each its own token",
            )
        return self


class AbstentionConfig(Section):
    """The `abstain` reward (`verifiers.rewards.abstain_reward`): what a right answer, an abstention and a
    wrong answer score, what counts as abstaining, and who judges right. The policy that maximises it answers
    where it is right more often than (abstain - wrong) / (right - wrong) of the time, and declines
    elsewhere."""

    right: float = Field(1.0, description="Score of a right answer.")
    abstain: float = Field(0.3, description="Score of an answer that declines (one holding a phrase below).")
    wrong: float = Field(0.0, description="Score of a wrong answer (a hallucination).")
    phrases: list[str] = Field(
        default_factory=lambda: ["I don't know", "I do not know"],
        description="An answer holding one of these (compared as lower-case words without punctuation) "
        "abstains.",
    )
    judge: Literal["match", "math"] = Field(
        "match",
        description="The reward that decides which answers are right: 'match' (the normalised short answer "
        "equals one the gold accepts; a gold '[]' accepts none) or 'math'.",
    )

    @model_validator(mode="after")
    def _ordered(self) -> "AbstentionConfig":
        if not self.right > self.abstain > self.wrong:
            raise KeyedError(
                "abstain",
                self.abstain,
                f"the reward must order right > abstain > wrong (now {self.right} / {self.abstain} / "
                f"{self.wrong}): set abstain between wrong and right",
            )
        if not self.phrases or not all(re.search(r"\w", phrase) for phrase in self.phrases):
            raise KeyedError(
                "phrases", self.phrases, "give at least one phrase with words, e.g. [I don't know]"
            )
        return self


class VerifierConfig(ElasticPoolConfig):
    num_cpus: float = Field(0.25, ge=0, description="CPUs Ray reserves for each actor.")
    rewards: dict[str, float] = Field(
        default_factory=lambda: {"math": 1.0},
        description="Reward functions and their weights; the score is the weighted sum. A name from the "
        "registry (math, code, format, match, abstain, hidden_preference) or your own function as "
        "'module:function'.",
    )
    abstention: AbstentionConfig = Field(default_factory=AbstentionConfig)
    timeout_s: float = Field(
        5.0, gt=0, le=3600, description="Hard limit per verification; a timeout scores 0."
    )
    sandbox_allow_missing: list[Literal["seccomp", "cgroup"]] = Field(
        default_factory=lambda: ["cgroup"],
        description="Isolation the code sandbox may run programs without where the host lacks it (named in "
        "every verdict): per-run cgroup limits need a delegated cgroup v2, which laptops and CI rarely have; "
        "[] refuses to run programs without every mechanism. Namespaces are never optional.",
    )
    sandbox_cgroup_parent: str | None = Field(
        None, description="A cgroup v2 directory delegated to the verifier for the sandbox's per-run cgroups."
    )
    tool_threads: int = Field(
        4,
        ge=1,
        le=256,
        description="Rollout tool calls (rollout.max_tool_calls) each verifier runs at once, each in its own "
        "sandbox, beside its scoring.",
    )
    max_error_rate: float = Field(
        0.1,
        ge=0,
        le=1,
        description="A step whose share of samples a reward function failed on (raised, or overran its "
        "own time limit) passes this fails the run, instead of training on zeros.",
    )

    @field_validator("rewards")
    @classmethod
    def _known_rewards(cls, rewards: dict[str, float]) -> dict[str, float]:
        from rlsys.reward_registry import REWARD_FUNCTIONS, RewardNotFound, component_name

        known = sorted(REWARD_FUNCTIONS)
        if not rewards:
            raise ValueError(f"name at least one reward function, e.g. {{math: 1.0}}; choose from {known}")
        names: dict[str, str] = {}
        for key in rewards:
            try:
                name = component_name(key)
            except RewardNotFound as err:
                raise ValueError(str(err)) from None
            if name in names:
                raise ValueError(f"'{key}' and '{names[name]}' are both logged as reward/{name}: keep one")
            names[name] = key
        return rewards


class RewardModelConfig(ElasticPoolConfig):
    path: str | None = Field(
        None, description="Reward-model directory (what `rlsys train-rm` printed: '... saved to: DIR')."
    )
    name: str = Field("reward_model", description="The reward component's name: logged as reward/<name>.")
    weight: float = Field(1.0, description="Weight of the reward-model score in the total reward.")
    num_cpus: float = Field(0.5, ge=0, description="CPUs Ray reserves for each actor.")
    threads: int = Field(0, ge=0, description="Torch threads of each scorer (0: Ray's num_cpus, at least 1).")
    batch_size: int = Field(64, ge=1, description="Sequences per reward-model forward.")

    @field_validator("path")
    @classmethod
    def _model_exists(cls, path: str | None) -> str:
        if path is None:
            raise ValueError(
                "no reward model given: train one with `rlsys train-rm jobs/rm_quickstart.yaml` and pass "
                "reward_model.path=<the directory it printed>"
            )
        if not (Path(path).expanduser() / "config.json").is_file():
            raise ValueError(
                f"no reward model at '{path}' (no config.json there): give the directory `rlsys train-rm` "
                f"printed ('reward model saved to: ...')"
            )
        return path


class OptimizerConfig(Section):
    """AdamW under DeepSpeed ZeRO: how every trainer (the policy's learner ranks, SFT's, the reward model's)
    builds its engine (`actors.deepspeed_engine`)."""

    zero_stage: Literal[0, 1, 2, 3] = Field(2, description="DeepSpeed ZeRO stage.")
    lr: float = Field(1e-4, gt=0, le=1, description="AdamW learning rate (constant after warmup).")
    warmup_steps: int = Field(0, ge=0, description="Linear learning-rate warmup, in optimizer steps.")
    betas: tuple[float, float] = Field((0.9, 0.99), description="AdamW betas.")
    weight_decay: float = Field(0.0, ge=0, description="AdamW weight decay.")
    grad_clip: float = Field(1.0, gt=0, description="Clip the global gradient norm to this.")


class LoraConfig(Section):
    """LoRA adapters (`actors.lora`): the learner trains them alone, the base weights stay frozen."""

    rank: int = Field(8, ge=1, le=4096, description="Adapter rank r.")
    alpha: float = Field(16.0, gt=0, description="Scale: the update is (alpha / rank) B A.")
    dropout: float = Field(0.0, ge=0, lt=1, description="Dropout on the adapters' input.")
    target_modules: Literal["all-linear"] | list[str] = Field(
        "all-linear",
        description="The layers adapted: all-linear (every linear layer but the output head) or module "
        "names, e.g. [q_proj, v_proj].",
    )


class RanksConfig(PoolConfig, OptimizerConfig):
    """DeepSpeed ranks training a model (`actors.deepspeed_engine.DeepSpeedRank`): the policy's learner, PPO's
    critic, or the reward model (`rlsys train-rm`)."""

    call_timeout_s: float = Field(
        1800.0,
        gt=0,
        description="Deadline of one call to the ranks (a training step, packing the weights, a checkpoint): "
        "past it the step fails naming the rank. Ranks are not restarted (their optimizer state would be "
        "lost): resume the job from its last checkpoint.",
    )
    micro_batch_size: int = Field(64, ge=1, description="Sequences per forward/backward on one rank.")
    max_tokens_per_micro_batch: int | None = Field(
        None,
        ge=1,
        description="Also cap each forward/backward at this many padded tokens (rows x longest row), so "
        "short answers are not padded to the longest one; null: no cap.",
    )
    torch_threads: int = Field(0, ge=0, description="Torch threads of each CPU rank (0: Ray's num_cpus).")


class LearnerConfig(RanksConfig):
    lora: LoraConfig | None = Field(
        None,
        description="Train LoRA adapters instead of every weight (optimizer state and checkpoints shrink "
        "with them; the engines receive the merged weights); null: full fine-tuning.",
    )


# The knobs each `algorithm.name` sets, over the field defaults below (which are GRPO's). A key the job sets
# itself wins over its preset.
ALGORITHM_PRESETS: dict[str, dict[str, Any]] = {
    "grpo": {},
    "dr_grpo": {"scale_by_std": False, "aggregation": "seq_mean_token_sum_norm"},
    "rloo": {"advantage": "rloo", "scale_by_std": False, "aggregation": "seq_mean_token_sum_norm"},
    "reinforce_pp": {
        "advantage": "batch_norm",
        "scale_by_std": False,
        "kl_estimator": "k1",
        "kl_in_reward": True,
    },
    "dapo": {"clip_eps_high": 0.28, "overlong_buffer": 0.2, "dynamic_sampling_rounds": 3},
    "gspo": {
        "policy_loss": "gspo",
        "aggregation": "seq_mean_token_mean",
        "clip_eps_low": 3e-4,
        "clip_eps_high": 4e-4,
    },
    "cispo": {"policy_loss": "cispo", "clip_eps_low": 1.0, "clip_eps_high": 0.28},
    # A group whose answers all scored the same still teaches the critic, and its advantages are not 0.
    "ppo": {"advantage": "gae", "scale_by_std": False, "drop_uninformative_groups": False},
    "rft": {
        "advantage": "rejection",
        "scale_by_std": False,
        "policy_loss": "nll",
        "drop_uninformative_groups": False,
    },
}


class AlgorithmConfig(Section):
    """The policy-gradient algorithm: how rewards become advantages (`rlsys.batch.training_batch`) and what
    the learner minimises (`rlsys.algorithms.objective`). `name` presets the other keys
    (ALGORITHM_PRESETS)."""

    name: Literal["grpo", "dr_grpo", "rloo", "reinforce_pp", "dapo", "gspo", "cispo", "ppo", "rft"] = Field(
        "grpo",
        description="The algorithm; it presets the keys below (rlsys.config.ALGORITHM_PRESETS) and any key "
        "set in the job wins: grpo, dr_grpo (no std, fixed-length norm), rloo (leave-one-out), reinforce_pp "
        "(batch-normalised, KL in the reward), dapo (clip-higher, overlong penalty), gspo (sequence ratio), "
        "cispo (clipped IS weights), ppo (a critic and GAE), rft (supervised step on correct samples).",
    )
    advantage: Literal["group_mean", "rloo", "batch_norm", "rejection", "gae"] = Field(
        "group_mean",
        description="Advantage estimator: group_mean (reward minus its group's mean), rloo (minus the mean "
        "of the other samples), batch_norm (group mean removed, normalised over the batch's tokens), "
        "rejection (samples scoring min_reward or more, weight 1; the others are not trained), gae (per "
        "token, GAE over the values of a critic trained alongside: the job's critic section).",
    )
    gamma: float = Field(
        1.0, ge=0, le=1, description="advantage=gae: discount per token of the reward on the last token."
    )
    gae_lambda: float = Field(
        0.95,
        ge=0,
        le=1,
        description="advantage=gae: GAE's lambda, from 0 (one-step TD error: low variance, biased by the "
        "critic) to 1 (the return minus the value).",
    )
    value_clip: float | None = Field(
        0.2,
        gt=0,
        description="advantage=gae: a critic step moves no value more than this from the one GAE used (PPO's "
        "value clipping); null: no clipping.",
    )
    scale_by_std: bool = Field(
        True, description="Divide group-centred rewards by the group std (GRPO); advantage=group_mean only."
    )
    policy_loss: Literal["ppo_clip", "gspo", "cispo", "nll"] = Field(
        "ppo_clip",
        description="Per-token loss: ppo_clip (clipped ratio), gspo (clipped sequence ratio), cispo (clipped "
        "importance weight, gradient on every token), nll (weighted negative log-likelihood).",
    )
    aggregation: Literal["token_mean", "seq_mean_token_mean", "seq_mean_token_sum_norm"] = Field(
        "token_mean",
        description="Loss reduction: token_mean (over the batch's tokens), seq_mean_token_mean (per answer, "
        "then over answers), seq_mean_token_sum_norm (answer sums over max_response_tokens, over answers).",
    )
    clip_eps: float = Field(0.2, gt=0, le=10, description="Clip range of the probability ratio, both sides.")
    clip_eps_low: float | None = Field(
        None,
        gt=0,
        le=1,
        description="Lower clip range: the ratio's floor is 1 - clip_eps_low; null: clip_eps.",
    )
    clip_eps_high: float | None = Field(
        None,
        gt=0,
        le=10,
        description="Upper clip range: the ratio's ceiling is 1 + clip_eps_high; null: clip_eps.",
    )
    max_response_tokens: int | None = Field(
        None,
        ge=1,
        description="Response budget L_max of seq_mean_token_sum_norm and of the overlong penalty; null: "
        "rollout.max_new_tokens.",
    )
    overlong_buffer: float = Field(
        0.0,
        ge=0,
        lt=1,
        description="DAPO's soft overlong penalty: over this last share of max_response_tokens the reward "
        "ramps down to -1 (0: off).",
    )
    min_reward: float = Field(
        1.0, description="advantage=rejection trains on the samples whose reward is at least this."
    )
    dynamic_sampling_rounds: int = Field(
        0,
        ge=0,
        le=16,
        description="DAPO's dynamic sampling: while fewer than train.prompts_per_step groups have signal, "
        "sample up to this many more rounds of prompts and train on the first groups that do (0: off).",
    )
    kl_coef: float = Field(
        0.0,
        ge=0,
        description="Weight (beta) of the KL penalty to the reference; the initial one if adaptive.",
    )
    kl_target: float | None = Field(
        None,
        gt=0,
        description="Per-token KL to steer beta toward (adaptive, rlsys.algorithms.kl_control); null: beta "
        "stays kl_coef.",
    )
    kl_horizon: float = Field(
        10_000.0, gt=0, description="Samples over which the adaptive beta can change by up to 20%."
    )
    kl_estimator: Literal["k1", "k2", "k3"] = Field(
        "k3", description="Per-token KL estimate (Schulman 2020): k1 log ratio, k2 half squared, k3."
    )
    kl_in_reward: bool = Field(
        False,
        description="Charge the KL as a per-token reward (every token pays the KL of itself and what "
        "follows) instead of adding it to the loss.",
    )
    drop_uninformative_groups: bool = Field(
        True, description="Skip prompts whose samples all got the same reward (zero advantage)."
    )
    off_policy_correction: Literal["clip", "truncated_is", "mask"] = Field(
        "clip",
        description="How samples from older weights (train.max_staleness > 0) are corrected "
        "(rlsys.algorithms.staleness): clip (the policy loss's ratio against the sampler, clipped), "
        "truncated_is (each token weighted by min(ratio, is_cap)), mask (samples whose mean ratio leaves "
        "[1/mask_band, mask_band] are dropped).",
    )
    is_cap: float = Field(2.0, gt=1, le=100, description="Cap C of the truncated importance weights.")
    mask_band: float = Field(
        2.0,
        gt=1,
        le=100,
        description="off_policy_correction=mask keeps samples whose mean ratio is in "
        "[1/mask_band, mask_band].",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, data: Any) -> Any:
        if isinstance(data, dict):
            return {**ALGORITHM_PRESETS.get(data.get("name", "grpo"), {}), **data}
        return data

    @property
    def clip_range(self) -> tuple[float, float]:
        """(eps_low, eps_high): ratios are clipped to [1 - eps_low, 1 + eps_high]."""
        low = self.clip_eps if self.clip_eps_low is None else self.clip_eps_low
        high = self.clip_eps if self.clip_eps_high is None else self.clip_eps_high
        return low, high

    @model_validator(mode="after")
    def _adaptive_needs_a_start(self) -> "AlgorithmConfig":
        if self.kl_target is not None and self.kl_coef == 0:
            raise KeyedError(
                "kl_coef",
                self.kl_coef,
                "an adaptive KL (kl_target set) needs a positive initial beta: set kl_coef (e.g. 0.02) or "
                "drop kl_target",
            )
        return self

    @model_validator(mode="after")
    def _knobs_fit_together(self) -> "AlgorithmConfig":
        if self.scale_by_std and self.advantage != "group_mean":
            raise KeyedError(
                "scale_by_std",
                self.scale_by_std,
                f"the group std scales advantage=group_mean only, not advantage={self.advantage}: set "
                "scale_by_std=false",
            )
        if self.advantage == "rejection" and self.drop_uninformative_groups:
            raise KeyedError(
                "drop_uninformative_groups",
                self.drop_uninformative_groups,
                "advantage=rejection trains on every accepted sample, and a group whose samples were all "
                "correct is one the policy solves: set drop_uninformative_groups=false",
            )
        if self.policy_loss == "gspo" and self.kl_in_reward:
            raise KeyedError(
                "kl_in_reward",
                self.kl_in_reward,
                "policy_loss=gspo weighs each answer by one advantage, and a KL paid per token makes it "
                "per token: set kl_in_reward=false (the KL becomes a loss term)",
            )
        if self.advantage != "gae":
            for key in ("gamma", "gae_lambda", "value_clip"):
                if key in self.model_fields_set:
                    raise KeyedError(
                        key, getattr(self, key), "only advantage=gae (algorithm.name=ppo) uses it: drop it"
                    )
        elif self.policy_loss == "gspo":
            raise KeyedError(
                "policy_loss",
                self.policy_loss,
                "advantage=gae gives every token its own advantage, and gspo weighs an answer by one: "
                "choose ppo_clip or cispo",
            )
        elif self.kl_in_reward:
            raise KeyedError(
                "kl_in_reward",
                self.kl_in_reward,
                "with advantage=gae the KL to the reference is a loss term (kl_coef with k2 or k3): set "
                "kl_in_reward=false",
            )
        if self.kl_estimator == "k1" and not self.kl_in_reward and self.kl_coef > 0:
            raise KeyedError(
                "kl_estimator",
                self.kl_estimator,
                "k1 as a loss term has zero gradient in expectation: use k2 or k3, or set kl_in_reward=true",
            )
        return self


class TrainConfig(Section):
    steps: int = Field(100, ge=1, le=10_000_000, description="RL steps (one weight update and sync each).")
    prompts_per_step: int = Field(16, ge=1, le=1_000_000, description="Prompts sampled per step.")
    eval_every: int = Field(0, ge=0, description="Held-out eval every K steps (0: only at start and end).")
    eval_samples: int = Field(4, ge=1, description="Samples per held-out problem for eval/accuracy_sampled.")
    max_staleness: int = Field(
        0,
        ge=0,
        le=64,
        description="Updates the sampling weights may lag the learner's: the engines sample up to this many "
        "steps ahead while the learner trains (0: on-policy, sample then train). Stale samples are "
        "corrected by algorithm.off_policy_correction. Faster when generation and training leave each "
        "other idle resources.",
    )
    max_logprob_mismatch: float | None = Field(
        0.2,
        gt=0,
        description="Alert (a warning and an MLflow tag) when train/logprob_mismatch, the mean absolute gap "
        "between the sampler's and the learner's log-probs of the trained tokens, exceeds this; null: never.",
    )
    checkpoint_every: int = Field(
        50,
        ge=0,
        description="Checkpoint every K steps, so a crash or a stop loses at most K steps (`--resume`); 0: "
        "never (a failed run then starts over).",
    )
    keep_checkpoints: int = Field(2, ge=1, description="How many of the newest checkpoints to keep on disk.")
    log_samples: int = Field(8, ge=0, description="Completions per step kept for the samples table.")
    output_dir: str = Field(
        "runs", description="Checkpoints and the final policy go to <output_dir>/<name>/<MLflow run id>/."
    )


class MonitorConfig(Section):
    """The reward-hacking monitor (`rlsys.rlhf.monitor`): when and against what it looks, and the thresholds
    of its detectors (each can be switched off with null)."""

    every: int = Field(5, ge=1, description="Steps between monitor evaluations (greedy held-out answers).")
    prompts: int | None = Field(
        None, ge=1, description="Held-out prompts scored each time (null: all task.eval_size)."
    )
    gold: str | None = Field(
        None,
        description="The gold reference: a verifier.rewards name (weight 0 scores it without optimising it), "
        "e.g. 'hidden_preference' (the quickstart's people) or 'math'; null: degeneration detectors only.",
    )
    window: int = Field(5, ge=1, description="Gold evaluations in the trailing mean of both curves.")
    min_drop: float = Field(
        0.05, gt=0, description="How far (in gold units) the smoothed gold must fall below its best to count."
    )
    noise_z: float = Field(
        3.0,
        ge=0,
        description="Falls and rises must also exceed this many noise scales of the smoothed curve.",
    )
    patience: int = Field(3, ge=1, description="Consecutive gold evaluations the fall must last to alert.")
    max_repetition: float | None = Field(
        0.25, gt=0, le=1, description="Alert when the mean per-response n-gram repetition rate exceeds this."
    )
    repetition_n: int = Field(3, ge=1, description="n of the repetition rate's word n-grams.")
    min_distinct_ratio: float | None = Field(
        0.3, gt=0, le=1, description="Alert when distinct-2 falls below this share of its first value."
    )
    max_length_ratio: float | None = Field(
        4.0, gt=1, description="Alert when the mean response length exceeds this multiple of its first value."
    )
    min_length_ratio: float | None = Field(
        0.25,
        gt=0,
        lt=1,
        description="Alert when the mean response length falls below this share of its first.",
    )
    max_kl: float | None = Field(
        1.0, gt=0, description="Alert when the per-token KL to the reference exceeds this."
    )
    outlier_z: float = Field(
        3.5, gt=0, description="Robust z-score beyond which a reward-model score is an outlier."
    )
    max_outlier_share: float | None = Field(
        0.5, gt=0, le=1, description="Alert when more than this share of reward-model scores are outliers."
    )
    stop_on_alert: bool = Field(
        False, description="Stop the run at the first alert (the best-gold checkpoint stays)."
    )


class TrackingConfig(Section):
    experiment: str = Field("rlsys", description="MLflow experiment name.")
    tracking_uri: str | None = Field(
        None,
        description="MLflow tracking URI; default: $MLFLOW_TRACKING_URI, else a local store in ./mlruns.",
    )
    run_name: str | None = Field(None, description="MLflow run name (default: the job name).")
    registered_model: str | None = Field(
        None, description="Register the final policy as a new version of this MLflow model (null: do not)."
    )
    retry_timeout_s: float = Field(
        300.0,
        gt=0,
        le=86_400,
        description="How long a call to an MLflow tracking server that does not answer (refused connection, "
        "timeout, 429/5xx) is retried before the run stops with an error (checkpoints stay; resume once the "
        "server is back).",
    )


class JobConfig(Section):
    name: Slug = Field(
        "job", description="Job name: the MLflow run name and the checkpoint folder (letters, digits, . _ -)."
    )
    seed: int = Field(0, description="Seed of sampling and training (with step and prompt index).")
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: TaskConfig = Field(default_factory=TaskConfig)
    rollout: RolloutConfig = Field(default_factory=RolloutConfig)
    verifier: VerifierConfig = Field(default_factory=VerifierConfig)
    learner: LearnerConfig = Field(default_factory=LearnerConfig)
    critic: RanksConfig | None = Field(
        None,
        description="The value model's DeepSpeed ranks, for algorithm.advantage=gae (ppo): the learner "
        "section's keys but lora; null with ppo: a copy of the learner section. It starts from the policy's "
        "base model with a new value head.",
    )
    algorithm: AlgorithmConfig = Field(default_factory=AlgorithmConfig)
    train: TrainConfig = Field(default_factory=TrainConfig)
    tracking: TrackingConfig = Field(default_factory=TrackingConfig)
    reward_model: RewardModelConfig | None = Field(
        None, description="A learned reward model scoring every sample (null: verifiers only)."
    )
    monitor: MonitorConfig | None = Field(
        None, description="Watch for reward hacking on held-out prompts (null: no monitor)."
    )

    def pools(self) -> dict[str, PoolConfig]:
        """The job's actor pools by section name."""
        pools = {"rollout": self.rollout, "verifier": self.verifier, "learner": self.learner}
        if self.critic is not None:
            pools["critic"] = self.critic
        if self.reward_model is not None:
            pools["reward_model"] = self.reward_model
        return pools

    @model_validator(mode="after")
    def _response_budget(self) -> "JobConfig":
        """algorithm.max_response_tokens left null is the rollout's budget; the overlong buffer must fit."""
        algorithm = self.algorithm
        if algorithm.max_response_tokens is None:
            algorithm = algorithm.model_copy(update={"max_response_tokens": self.rollout.max_new_tokens})
            self.algorithm = algorithm
        if algorithm.overlong_buffer and round(algorithm.overlong_buffer * algorithm.max_response_tokens) < 1:
            raise KeyedError(
                "algorithm.overlong_buffer",
                algorithm.overlong_buffer,
                f"the overlong buffer is under one token of max_response_tokens="
                f"{algorithm.max_response_tokens}: raise it or set 0",
            )
        return self

    @model_validator(mode="after")
    def _critic_for_gae(self) -> "JobConfig":
        """advantage=gae trains a critic (sized and placed as the learner when the section is left out);
        nothing else does."""
        if self.algorithm.advantage != "gae":
            if self.critic is not None:
                raise KeyedError(
                    "critic",
                    "(set)",
                    f"only algorithm.advantage=gae (name=ppo) trains a critic, not advantage="
                    f"{self.algorithm.advantage}: drop the critic section",
                )
            return self
        if self.critic is None:
            self.critic = RanksConfig(**self.learner.model_dump(exclude={"lora"}))
        return self

    @model_validator(mode="after")
    def _batch_fits(self) -> "JobConfig":
        sequences = self.train.prompts_per_step * self.rollout.samples_per_prompt
        for name, pool in (("learner", self.learner), ("critic", self.critic)):
            if pool is not None and sequences < pool.replicas:
                raise ValueError(
                    f"{name}.replicas exceeds the sequences per step (train.prompts_per_step × "
                    f"rollout.samples_per_prompt): lower {name}.replicas or raise the batch"
                )
        return self

    @model_validator(mode="after")
    def _reward_names_resolve(self) -> "JobConfig":
        rewards = self.verifier.rewards
        if self.reward_model is not None and self.reward_model.name in rewards:
            raise KeyedError(
                "reward_model.name",
                self.reward_model.name,
                f"'{self.reward_model.name}' is also a verifier reward: give the reward model another name",
            )
        if self.monitor is not None and (self.monitor.prompts or 0) > self.task.eval_size:
            raise KeyedError(
                "monitor.prompts",
                self.monitor.prompts,
                f"the monitor scores held-out prompts, of which there are task.eval_size = "
                f"{self.task.eval_size}: lower monitor.prompts or raise task.eval_size",
            )
        gold = self.monitor.gold if self.monitor is not None else None
        if gold is not None and gold not in rewards:
            raise KeyedError(
                "monitor.gold",
                gold,
                f"'{gold}' is not a verifier reward of this job ({sorted(rewards)}): add it to "
                "verifier.rewards (weight 0 scores it without optimising it), pick one of those, or set null",
            )
        return self


def apply_override(tree: dict[str, Any], override: str) -> None:
    """Set `a.b.c=value` in a nested dict; the value is parsed as YAML (`3`, `0.1`, `true`, `[1, 2]`).

    A command line holds no comments: a value YAML would cut at ` #` is kept whole, as the string it is.
    """
    key, sep, raw = override.partition("=")
    if not sep or not key:
        raise ConfigError(f"override '{override}' is not key=value (e.g. train.steps=20)")
    *parents, leaf = key.strip().split(".")
    node = tree
    for part in parents:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"override '{override}': '{part}' is a value, not a section")
        node = child
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as err:
        raise ConfigError(
            f"override '{override}': the value is not valid YAML ({str(err).splitlines()[0]}); "
            "quote it or fix it"
        ) from None
    node[leaf] = raw.strip() if isinstance(value, str) and "#" in raw and "#" not in value else value


def load_config(
    schema: type[ConfigT],
    path: str | Path | None,
    overrides: list[str] = (),
    *,
    kind: str = "job",
    help_command: str = "rlsys run",
) -> ConfigT:
    """Read a YAML file (or start from defaults when `path` is None), apply overrides, validate as `schema`.

    Every problem is reported at once, each naming its dotted key and how to fix it.
    """
    tree: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{kind} file '{path}' does not exist")
        try:
            tree = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{kind} file '{path}' is not valid YAML: {err}") from None
        except UnicodeDecodeError as err:
            raise ConfigError(
                f"{kind} file '{path}' is not UTF-8 text (byte {err.start}): save it as UTF-8"
            ) from None
        if not isinstance(tree, dict):
            raise ConfigError(
                f"{kind} file '{path}' must be a mapping of sections, got {type(tree).__name__}"
            )
    for override in overrides:
        apply_override(tree, override)
    try:
        return schema.model_validate(tree)
    except ValidationError as err:
        where = f" in {path}" if path else ""
        lines = [f"invalid {kind} config{where}:"]
        for problem in err.errors():
            loc, got = [str(part) for part in problem["loc"]], problem.get("input")
            cause = problem.get("ctx", {}).get("error")
            if isinstance(cause, KeyedError):
                loc, got = [*loc, cause.key], cause.value
            key = ".".join(loc) or "(top level)"
            if problem["type"] == "extra_forbidden":
                lines.append(
                    f"  {key}: unknown key; remove it or check its spelling (`{help_command} --help-config`)"
                )
            else:
                message = problem["msg"].removeprefix("Value error, ")
                lines.append(f"  {key}: {message} (got {got!r})")
        raise ConfigError("\n".join(lines)) from None


def load_job(path: str | Path | None, overrides: list[str] = ()) -> JobConfig:
    """Read an RL job YAML (or start from defaults when `path` is None), apply overrides, validate."""
    return load_config(JobConfig, path, overrides)


def describe_schema(model: type[BaseModel] = JobConfig, prefix: str = "") -> list[str]:
    """One line per key: `section.key (type, default) description`, for --help-config."""
    lines = []
    for name, field in model.model_fields.items():
        section = _section_type(field.annotation)
        if section is not None:
            lines.extend(describe_schema(section, f"{prefix}{name}."))
            continue
        annotation = field.annotation
        default = field.default_factory() if field.default_factory else field.default
        type_name = getattr(annotation, "__name__", str(annotation)).replace("typing.", "")
        lines.append(f"{prefix}{name} ({type_name}, default {default!r}): {field.description}")
    return lines


def _section_type(annotation) -> type[BaseModel] | None:
    """The section class of a field typed `Section` or `Section | None`; None for a plain value."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, BaseModel):
            return candidate
    return None
