"""The central learner loop: generate → verify → advantages → train → sync weights → eval.

Run locally with `rlsys run jobs/quickstart.yaml`, or on a cluster with
`ray job submit --address http://HEAD:8265 --working-dir . -- rlsys run jobs/quickstart.yaml`.
The driver holds no model: rollout engines (vLLM), verifiers and learner ranks (DeepSpeed) are Ray actor
pools, each sized and placed by its own section of the job config.
"""

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import ray
import torch
from rich.console import Console

from actors.pools import LearnerPool, RolloutPool, VerifierPool, generate_and_score
from actors.rollout import SamplingSettings
from rlsys.algorithms.advantages import group_normalized_advantages, informative_groups
from rlsys.batch import TrainSequence
from rlsys.checkpoint import CheckpointInfo, CheckpointStore
from rlsys.config import EMBEDDED_MODEL, JobConfig, ModelConfig
from rlsys.data import request_seed, step_batch, task_prompts
from rlsys.errors import ConfigError
from rlsys.plots import training_summary
from rlsys.tracking import Tracker, read_metric_history
from rlsys.types import Prompt, Reward, Sample

# Logs and CI captures are not terminals: keep one line per event there instead of wrapping at 80 columns.
console = Console(stderr=True, log_path=False, width=None if sys.stderr.isatty() else 200)


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    accuracy_before: float
    accuracy_after: float
    sampled_before: float
    sampled_after: float
    model_dir: str
    model_uri: str | None  # the registered model version, when tracking.registered_model is set


def resolve_model(model: ModelConfig) -> str:
    """The model directory to load: the given path, or the embedded model (built on first use)."""
    if model.path != EMBEDDED_MODEL:
        return str(Path(model.path).expanduser().resolve())
    from rlsys.bootstrap import ensure_embedded_model

    return str(ensure_embedded_model(seed=model.seed))


class Pools:
    """The three pools a job runs on."""

    def __init__(self, config: JobConfig, model_path: str) -> None:
        dtype = config.model.dtype
        self.rollout = RolloutPool(model_path, config.rollout, dtype=dtype, seed=config.seed)
        self.verifier = VerifierPool(config.verifier)
        self.learner = LearnerPool(
            model_path, config.learner, config.algorithm, dtype=dtype, seed=config.seed
        )

    def sizes(self) -> dict[str, float]:
        return {
            "pool/rollout_replicas": self.rollout.size(),
            "pool/verifier_replicas": self.verifier.size(),
            "pool/retried_tasks": self.rollout.retried_tasks + self.verifier.retried_tasks,
        }


def evaluate(pools: Pools, prompts: list[Prompt], config: JobConfig, step: int) -> dict[str, float]:
    """Held-out accuracy: greedy (one answer each) and sampled (`eval_samples` each, train temperature)."""
    max_tokens = config.rollout.max_new_tokens
    greedy = SamplingSettings(n=1, temperature=0.0, max_new_tokens=max_tokens)
    greedy_rollout = generate_and_score(pools.rollout, pools.verifier, prompts, greedy, [None] * len(prompts))
    sampled = SamplingSettings(
        n=config.train.eval_samples,
        temperature=config.rollout.temperature,
        top_p=config.rollout.top_p,
        max_new_tokens=max_tokens,
    )
    seeds = [request_seed(config.seed + 1, step, i) for i in range(len(prompts))]
    sampled_rollout = generate_and_score(pools.rollout, pools.verifier, prompts, sampled, seeds)
    greedy_samples = [group[0] for group in greedy_rollout.groups]
    return {
        "eval/accuracy": _mean([group[0].correct for group in greedy_rollout.rewards]),
        "eval/accuracy_sampled": _mean([r.correct for group in sampled_rollout.rewards for r in group]),
        "eval/response_length": _mean([len(s.token_ids) for s in greedy_samples]),
        # Worked solutions (several lines) against bare answers: the share the model chooses to think.
        "eval/multiline_share": _mean([s.text.strip().count("\n") > 0 for s in greedy_samples]),
    }


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def training_batch(
    groups: list[list[Sample]], rewards: list[list[Reward]], config: JobConfig
) -> tuple[list[TrainSequence], dict[str, float]]:
    """Advantages for every sample; sequences of informative groups only (see `informative_groups`)."""
    scores = torch.tensor([[r.score for r in group] for group in rewards])  # (P, G)
    advantages = group_normalized_advantages(scores, scale_by_std=config.algorithm.scale_by_std)
    keep = (
        informative_groups(scores)
        if config.algorithm.drop_uninformative_groups
        else torch.ones(len(groups), dtype=torch.bool)
    )
    sequences = [
        TrainSequence(s.prompt_token_ids, s.token_ids, float(advantages[p, g]), s.logprobs)
        for p in range(len(groups))
        if keep[p]
        for g, s in enumerate(groups[p])
    ]
    samples = [s for group in groups for s in group]
    flat = [r for group in rewards for r in group]
    metrics = {
        "train/reward_mean": scores.mean().item(),
        "train/reward_std": scores.std(unbiased=False).item(),
        "train/accuracy": _mean([r.correct for r in flat]),
        "train/response_length": _mean([len(s.token_ids) for s in samples]),
        "train/truncated_share": _mean([s.finish_reason == "length" for s in samples]),
        "train/informative_groups": keep.float().mean().item(),
    }
    for name in flat[0].components:
        metrics[f"reward/{name}"] = _mean([r.components[name] for r in flat])
    return sequences, metrics


def _step_line(step: int, total: int, metrics: dict[str, float]) -> str:
    return (
        f"step {step}/{total}  reward {metrics['train/reward_mean']:.3f}  "
        f"acc {metrics['train/accuracy']:.3f}  len {metrics['train/response_length']:.0f}  "
        f"gen {metrics['time/generate_s']:.2f}s  verify {metrics['time/verify_s']:.2f}s  "
        f"train {metrics['time/train_s']:.2f}s  "
        f"sync {metrics['time/sync_s']:.2f}s"
    )


def _connect_ray() -> None:
    if not ray.is_initialized():
        # RAY_ADDRESS (set inside a submitted job) connects to that cluster; otherwise a local one starts.
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            runtime_env={"env_vars": {"VLLM_LOGGING_LEVEL": "ERROR", "TOKENIZERS_PARALLELISM": "false"}},
            logging_level="WARNING",
        )


def run(config: JobConfig, *, resume: bool = False) -> RunSummary:
    """Run a whole job: pools up, eval, `train.steps` RL steps, eval, save; everything logged to MLflow.

    With `resume`, continue the job's newest checkpoint in the same MLflow run.
    """
    store = CheckpointStore(config.train.output_dir, config.name)
    checkpoint = store.latest() if resume else None
    if resume and checkpoint is None:
        raise ConfigError(f"nothing to resume: no checkpoint under {store.job_dir} (run without --resume)")
    model_path = resolve_model(config.model)
    _connect_ray()
    tracker = Tracker(
        config.tracking,
        run_name=config.tracking.run_name or config.name,
        run_id=checkpoint.run_id if checkpoint else None,
    )
    try:
        summary = LearnerLoop(config, model_path, tracker, store).run(checkpoint)
    except BaseException:
        tracker.finish("FAILED")
        raise
    tracker.finish()
    return summary


class LearnerLoop:
    """The job's driver: owns the pools and the step counter, logs everything through the tracker."""

    def __init__(self, config: JobConfig, model_path: str, tracker: Tracker, store: CheckpointStore) -> None:
        self.config, self.model_path, self.tracker, self.store = config, model_path, tracker, store
        self.train_prompts = task_prompts(config.task, "rl", config.task.train_size)
        self.eval_prompts = task_prompts(config.task, "eval", config.task.eval_size)
        self.settings = SamplingSettings(
            n=config.rollout.samples_per_prompt,
            temperature=config.rollout.temperature,
            top_p=config.rollout.top_p,
            max_new_tokens=config.rollout.max_new_tokens,
        )
        self.sample_rows: list[dict] = []

    def run(self, checkpoint: CheckpointInfo | None) -> RunSummary:
        config, tracker = self.config, self.tracker
        if checkpoint is None:
            tracker.log_params({**config.flat(), "model.resolved_path": self.model_path})
            tracker.log_dict(config.model_dump(mode="json"), "config/job.json")
        console.log(f"MLflow run {tracker.run_id}; starting pools")
        self.pools = Pools(config, self.model_path)
        if checkpoint is None:
            start = 0
            self._evaluate(0)
        else:
            start = self._restore(checkpoint)
        for step in range(start + 1, config.train.steps + 1):
            self._step(step)
            if step < config.train.steps and config.train.eval_every and step % config.train.eval_every == 0:
                self._evaluate(step)
            if config.train.checkpoint_every and step % config.train.checkpoint_every == 0:
                self._checkpoint(step)
        self._evaluate(config.train.steps)
        return self._finish()

    def _step(self, step: int) -> None:
        """One RL step: sample and score, train on the informative groups, push the weights out."""
        config, pools = self.config, self.pools
        # Steps count from 1; the batch and seeds of step s are those of index s-1 in the prompt order.
        prompts = step_batch(self.train_prompts, step - 1, config.train.prompts_per_step, config.seed)
        seeds = [request_seed(config.seed, step - 1, i) for i in range(len(prompts))]
        self.store.record_prompts(self.tracker.run_id, step, [p.id for p in prompts])
        start = time.perf_counter()
        rollout = generate_and_score(pools.rollout, pools.verifier, prompts, self.settings, seeds)
        groups, rewards = rollout.groups, rollout.rewards
        scored = time.perf_counter()
        sequences, metrics = training_batch(groups, rewards, config)
        if sequences:
            metrics.update({f"train/{k}": v for k, v in pools.learner.train_step(sequences).items()})
        trained = time.perf_counter()
        pools.rollout.sync_weights(pools.learner.weights(), policy_version=step)
        synced = time.perf_counter()
        pools.verifier.autoscale(rollout.verify_wait_s, rollout.generate_s)
        new_tokens = sum(len(s.token_ids) for group in groups for s in group)
        metrics.update(
            {
                "time/generate_s": rollout.generate_s,
                "time/verify_s": rollout.verify_wait_s,  # scoring overlaps generation; this is the rest
                "time/train_s": trained - scored,
                "time/sync_s": synced - trained,
                "time/step_s": synced - start,
                "rollout/tokens_per_s": new_tokens / rollout.generate_s,
                "pool/verifier_backlog": rollout.verify_backlog,
                **pools.sizes(),
            }
        )
        self.tracker.log_metrics(metrics, step)
        self.sample_rows.extend(_sample_rows(step, prompts, groups, rewards, config.train.log_samples))
        console.log(_step_line(step, config.train.steps, metrics))

    def _evaluate(self, step: int) -> None:
        metrics = evaluate(self.pools, self.eval_prompts, self.config, step)
        self.tracker.log_metrics(metrics, step)
        console.log(
            f"eval at step {step}: accuracy {metrics['eval/accuracy']:.3f}  "
            f"sampled {metrics['eval/accuracy_sampled']:.3f}  "
            f"multi-line answers {metrics['eval/multiline_share']:.2f}"
        )

    def _checkpoint(self, step: int) -> None:
        directory = self.store.checkpoint_dir(self.tracker.run_id)
        info = CheckpointInfo(run_id=self.tracker.run_id, step=step, directory=str(directory))
        self.pools.learner.save_checkpoint(str(directory), info.tag, {"step": step})
        self.store.commit(info, keep=self.config.train.keep_checkpoints)
        console.log(f"checkpoint at step {step}: {directory / info.tag}")

    def _restore(self, checkpoint: CheckpointInfo) -> int:
        """Load the learner state and push its weights to the engines; returns the step to continue after."""
        self.pools.learner.load_checkpoint(checkpoint.directory, checkpoint.tag)
        self.pools.rollout.sync_weights(self.pools.learner.weights(), policy_version=checkpoint.step)
        console.log(f"resumed run {checkpoint.run_id} after step {checkpoint.step}")
        return checkpoint.step

    def _finish(self) -> RunSummary:
        tracker, steps = self.tracker, self.config.train.steps
        history = {key: read_metric_history(tracker.run_id, key) for key in SUMMARY_METRICS}
        model_dir = self.store.run_dir(tracker.run_id) / "policy"
        self.pools.learner.save_pretrained(str(model_dir))
        model_uri = None
        if self.config.tracking.registered_model:
            from rlsys.registry import register_policy

            model_uri = register_policy(str(model_dir), self.config.tracking.registered_model, tracker.run_id)
            tracker.set_tags({"rlsys.model_uri": model_uri})
        tracker.log_table(self.sample_rows, "samples.json")
        tracker.log_figure(training_summary(history), "plots/accuracy.png")
        first = {key: _value_at(history[key], 0) for key in ("eval/accuracy", "eval/accuracy_sampled")}
        last = {key: _value_at(history[key], steps) for key in ("eval/accuracy", "eval/accuracy_sampled")}
        return RunSummary(
            run_id=tracker.run_id,
            accuracy_before=first["eval/accuracy"],
            accuracy_after=last["eval/accuracy"],
            sampled_before=first["eval/accuracy_sampled"],
            sampled_after=last["eval/accuracy_sampled"],
            model_dir=str(model_dir),
            model_uri=model_uri,
        )


SUMMARY_METRICS = ("eval/accuracy", "eval/accuracy_sampled", "train/reward_mean", "train/accuracy")


def _value_at(history: list[tuple[int, float]], step: int) -> float:
    """The last value logged at `step` (a resumed run may have logged a step twice)."""
    return [value for at, value in history if at == step][-1]


def _sample_rows(step: int, prompts, groups, rewards, limit: int) -> list[dict]:
    """The first completion of each of the first `limit` prompts, for the samples table."""
    return [
        {
            "step": step,
            "prompt": prompt.messages[-1]["content"],
            "gold": prompt.gold,
            "completion": group[0].text,
            "reward": scored[0].score,
            "verdict": scored[0].verdict,
            "policy_version": group[0].policy_version,
        }
        for prompt, group, scored in list(zip(prompts, groups, rewards, strict=True))[:limit]
    ]
