"""The central learner loop: generate → verify/score → advantages → train → sync weights → eval/monitor.

Run locally with `rlsys run jobs/quickstart.yaml`, or on a cluster with
`ray job submit --address http://HEAD:8265 --working-dir . -- rlsys run jobs/quickstart.yaml`.
The driver holds no model: rollout engines (vLLM), verifiers, reward-model scorers and learner ranks
(DeepSpeed) are Ray actor pools, each sized and placed by its own section of the job config.

RLHF (`jobs/rlhf_quickstart.yaml`): a `reward_model` section adds the reward pool's score to every sample's
reward; `algorithm.kl_target` adapts the KL weight each step; a `monitor` section scores greedy held-out
answers every `monitor.every` steps with the proxy (the job's reward) and a gold reference, and raises
`monitor/hacking_alert` when the proxy is being gamed (`rlsys.rlhf.monitor`).
"""

import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path

import ray
import torch
from rich.console import Console

from actors.pools import (
    LearnerPool,
    RewardPool,
    RolloutPool,
    ScoredRollout,
    VerifierPool,
    generate_and_score,
)
from actors.rollout import SamplingSettings
from rlsys.algorithms.advantages import group_normalized_advantages, informative_groups
from rlsys.batch import TrainSequence
from rlsys.checkpoint import CheckpointInfo, CheckpointStore
from rlsys.config import EMBEDDED_MODEL, JobConfig, ModelConfig
from rlsys.data import request_seed, step_batch, task_prompts
from rlsys.errors import ConfigError
from rlsys.plots import training_summary
from rlsys.rlhf.kl import KLController
from rlsys.rlhf.measure import step_stats
from rlsys.rlhf.monitor import DriftReference, HackingMonitor
from rlsys.rlhf.plots import proxy_vs_gold
from rlsys.rlhf.reward_model import reward_model_info, training_reference
from rlsys.tracking import Tracker, read_metric_history
from rlsys.types import Prompt, Reward, Sample

# Logs and CI captures are not terminals: keep one line per event there instead of wrapping at 80 columns.
console = Console(stderr=True, log_path=False, width=None if sys.stderr.isatty() else 200)


@dataclass(frozen=True)
class StepRollout:
    prompts: list[Prompt]
    scored: ScoredRollout


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    accuracy_before: float
    accuracy_after: float
    sampled_before: float
    sampled_after: float
    model_dir: str
    model_uri: str | None  # the registered model version, when tracking.registered_model is set
    steps_done: int = 0  # fewer than train.steps when the monitor stopped the run
    alert_step: int | None = None  # the monitor's first alert
    best_gold_step: int | None = None
    best_gold_dir: str | None = None  # the policy of the best-gold step


def resolve_model(model: ModelConfig) -> str:
    """The model directory to load: the given path, or the embedded model (built on first use)."""
    if model.path != EMBEDDED_MODEL:
        return str(Path(model.path).expanduser().resolve())
    from rlsys.bootstrap import ensure_embedded_model

    return str(ensure_embedded_model(seed=model.seed))


class Pools:
    """The pools a job runs on: rollout, verifier, learner, and a reward pool with a reward model."""

    def __init__(self, config: JobConfig, model_path: str) -> None:
        dtype = config.model.dtype
        self.rollout = RolloutPool(model_path, config.rollout, dtype=dtype, seed=config.seed)
        self.verifier = VerifierPool(config.verifier)
        self.reward = RewardPool(config.reward_model, dtype=dtype) if config.reward_model else None
        self.learner = LearnerPool(
            model_path, config.learner, config.algorithm, dtype=dtype, seed=config.seed
        )

    def wait_ready(self) -> float:
        """Block until every actor has started (models loaded, engines warmed up); the seconds waited.

        Creating an actor returns at once; without this wait the first call to a pool waits for it instead.
        """
        start = time.perf_counter()
        pools = [self.rollout, self.verifier, self.learner, *([self.reward] if self.reward else [])]
        ray.get([actor.__ray_ready__.remote() for pool in pools for actor in pool.actors])
        return time.perf_counter() - start

    def sizes(self) -> dict[str, float]:
        scorers = [self.rollout, self.verifier, *([self.reward] if self.reward else [])]
        sizes = {
            "pool/rollout_replicas": self.rollout.size(),
            "pool/verifier_replicas": self.verifier.size(),
            "pool/retried_tasks": sum(pool.retried_tasks for pool in scorers),
        }
        if self.reward is not None:
            sizes["pool/reward_replicas"] = self.reward.size()
        return sizes


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
        f"sync {metrics['time/sync_s']:.2f}s  step {metrics['time/step_s']:.2f}s"
    )


def _connect_ray() -> None:
    if not ray.is_initialized():
        # RAY_ADDRESS (set inside a submitted job) connects to that cluster; otherwise a local one starts.
        ray.init(
            address=os.environ.get("RAY_ADDRESS"),
            runtime_env={"env_vars": {"VLLM_LOGGING_LEVEL": "ERROR", "TOKENIZERS_PARALLELISM": "false"}},
            logging_level="WARNING",
        )


def resource_shortfall(config: JobConfig, cluster: dict[str, float]) -> list[str]:
    """One line per Ray resource the pools reserve beyond what `cluster` has (empty when all fit)."""
    demand: dict[str, float] = {}
    parts: dict[str, list[str]] = {}
    for name, pool in config.pools().items():
        for resource, per_actor in {"CPU": pool.num_cpus, "GPU": pool.num_gpus, **pool.resources}.items():
            if per_actor > 0:
                demand[resource] = demand.get(resource, 0.0) + per_actor * pool.replicas
                parts.setdefault(resource, []).append(f"{name} {pool.replicas} x {per_actor:g}")
    return [
        f"{resource}: the pools reserve {total:g} ({', '.join(parts[resource])}), "
        f"the cluster has {cluster.get(resource, 0.0):g}"
        for resource, total in demand.items()
        if total > cluster.get(resource, 0.0) + 1e-9
    ]


def run(config: JobConfig, *, resume: bool = False) -> RunSummary:
    """Run a whole job: pools up, eval, `train.steps` RL steps, eval, save; everything logged to MLflow.

    With `resume`, continue the job's newest checkpoint in the same MLflow run.
    """
    store = CheckpointStore(config.train.output_dir, config.name)
    checkpoint = store.latest() if resume else None
    if resume and checkpoint is None:
        raise ConfigError(f"nothing to resume: no checkpoint under {store.job_dir} (run without --resume)")
    model_path = resolve_model(config.model)
    if config.reward_model is not None:
        check_reward_model_base(config.reward_model.path, model_path)
    _connect_ray()
    for line in resource_shortfall(config, ray.cluster_resources()):
        # Ray queues an actor that fits nowhere until a node with room joins: without an autoscaler, never.
        console.log(
            f"[yellow]note:[/] {line}. The actors that do not fit wait for the autoscaler to add a node; "
            "on a fixed cluster or locally, lower those pools' replicas or num_cpus/num_gpus"
        )
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


def check_reward_model_base(reward_model_dir: str, policy_dir: str) -> None:
    """Say so when the reward model learned from another model's answers than the policy's: it scores fine,
    but it was never shown answers like the policy's, so it is a weaker proxy (e.g. after a rebuilt
    embedded model: train the reward model again)."""
    base = reward_model_info(reward_model_dir).get("base_model")
    if base is not None and Path(base).resolve() != Path(policy_dir).resolve():
        console.log(
            f"[yellow]note:[/] the reward model was trained from {base}, the policy is {policy_dir}: "
            f"retrain it (`rlsys train-rm`) for a proxy that has seen this policy's answers"
        )


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
        algorithm = config.algorithm
        self.kl = KLController(algorithm.kl_coef, algorithm.kl_target, algorithm.kl_horizon)
        self.last_kl: float | None = None  # the latest train/kl, for the monitor
        # Length drift and outlying scores are judged against what the reward model saw, when recorded.
        reward_model, monitor = config.reward_model, config.monitor
        reference = training_reference(reward_model.path) if reward_model is not None else DriftReference()
        self.monitor = HackingMonitor(monitor, reference) if monitor is not None else None
        self.monitor_rows: list[dict] = []

    def run(self, checkpoint: CheckpointInfo | None) -> RunSummary:
        config, tracker = self.config, self.tracker
        if checkpoint is None:
            tracker.log_params({**config.flat(), "model.resolved_path": self.model_path})
            tracker.log_dict(config.model_dump(mode="json"), "config/job.json")
        console.log(f"MLflow run {tracker.run_id}; starting pools")
        self.pools = Pools(config, self.model_path)
        console.log(f"pools started in {self.pools.wait_ready():.1f}s")
        if checkpoint is None:
            last = 0
            self._evaluate(0)
            self._watch(0)
        else:
            last = self._restore(checkpoint)
        for step in self.train_steps(last + 1, config.train.steps):
            last = step
            stop = self._watch(step)
            if not stop and step < config.train.steps and is_due(step, config.train.eval_every):
                self._evaluate(step)
            if is_due(step, config.train.checkpoint_every):
                self._checkpoint(step)
            if stop:
                console.log(f"monitor.stop_on_alert: stopping after step {step}")
                break
        self._evaluate(last)
        return self._finish(last)

    def train_steps(self, first: int, last: int) -> Iterator[int]:
        """Run RL steps `first`..`last`, yielding each one once its weights are synced and its metrics logged.

        With `train.generate_ahead`, the engines sample step s+1 while the learner trains step s, so those
        samples come from the weights one update behind. Leaving the loop early waits for that rollout.
        """
        ahead = self.config.train.generate_ahead
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="generate-ahead") as executor:
            upcoming: Future[StepRollout] | None = None
            for step in range(first, last + 1):
                started = time.perf_counter()
                rollout = upcoming.result() if upcoming is not None else self._rollout(step)
                upcoming = executor.submit(self._rollout, step + 1) if ahead and step < last else None
                self._step(step, rollout, upcoming, started)
                yield step

    def _rollout(self, step: int) -> StepRollout:
        """Step `step`'s prompts, sampled and scored with the weights the engines hold now."""
        config, pools = self.config, self.pools
        # Steps count from 1; the batch and seeds of step s are those of index s-1 in the prompt order.
        prompts = step_batch(self.train_prompts, step - 1, config.train.prompts_per_step, config.seed)
        seeds = [request_seed(config.seed, step - 1, i) for i in range(len(prompts))]
        self.store.record_prompts(self.tracker.run_id, step, [p.id for p in prompts])
        scored = generate_and_score(
            pools.rollout, pools.verifier, prompts, self.settings, seeds, reward=pools.reward
        )
        return StepRollout(prompts, scored)

    def _step(self, step: int, rollout: StepRollout, upcoming: Future | None, started: float) -> None:
        """One RL step: train on the informative groups, push the weights out.

        `upcoming`, the next step's rollout when it is being generated meanwhile: the engines must finish it
        before they take the new weights. `started`: when this step began waiting for its own rollout.
        """
        config, pools = self.config, self.pools
        groups, rewards = rollout.scored.groups, rollout.scored.rewards
        scored = time.perf_counter()
        sequences, metrics = training_batch(groups, rewards, config)
        # Updates the sampling weights are behind the weights being trained (1 when generating ahead).
        lag = step - 1 - min(s.policy_version for group in groups for s in group)
        metrics.update({"train/kl_coef": self.kl.beta, "train/policy_lag": lag})
        if sequences:
            trained_on = pools.learner.train_step(sequences, kl_coef=self.kl.beta, off_policy=lag > 0)
            metrics.update({f"train/{k}": v for k, v in trained_on.items()})
            if "kl" in trained_on:  # measured against the reference (kl_coef > 0)
                self.last_kl = trained_on["kl"]
                self.kl.update(trained_on["kl"], len(sequences))
        trained = time.perf_counter()
        if upcoming is not None:
            wait([upcoming])
        generated_ahead = time.perf_counter()
        pools.rollout.sync_weights(pools.learner.weights(), policy_version=step)
        synced = time.perf_counter()
        pools.verifier.autoscale(rollout.scored.verify_wait_s, rollout.scored.generate_s)
        lengths = [len(s.token_ids) for group in groups for s in group]
        if self.monitor is not None and lag == step - 1:  # sampled by the untrained policy
            self.monitor.observe_policy_samples(lengths)
        metrics.update(
            {
                "time/generate_s": rollout.scored.generate_s,
                "time/verify_s": rollout.scored.verify_wait_s,  # scoring overlaps generation; the rest
                "time/rollout_wait_s": scored - started,  # the whole rollout, unless generated ahead
                "time/train_s": trained - scored,
                "time/ahead_wait_s": generated_ahead - trained,  # the next rollout outlasting training
                "time/sync_s": synced - generated_ahead,
                "time/step_s": synced - started,
                "rollout/tokens_per_s": sum(lengths) / rollout.scored.generate_s,
                "pool/verifier_backlog": rollout.scored.verify_backlog,
                **pools.sizes(),
            }
        )
        self.tracker.log_metrics(metrics, step)
        self.sample_rows.extend(
            _sample_rows(step, rollout.prompts, groups, rewards, config.train.log_samples)
        )
        console.log(_step_line(step, config.train.steps, metrics))

    def _evaluate(self, step: int) -> None:
        metrics = evaluate(self.pools, self.eval_prompts, self.config, step)
        self.tracker.log_metrics(metrics, step)
        console.log(
            f"eval at step {step}: accuracy {metrics['eval/accuracy']:.3f}  "
            f"sampled {metrics['eval/accuracy_sampled']:.3f}  "
            f"multi-line answers {metrics['eval/multiline_share']:.2f}"
        )

    def _watch(self, step: int) -> bool:
        """The reward-hacking monitor's look at this step, when one is due; True when it says stop.

        Greedy answers to the held-out prompts, scored by the job's reward (the proxy) and the gold
        reference; the monitor's metrics are logged, the run tagged at an alert, the best-gold policy kept.
        """
        if self.monitor is None or not is_due(step, self.config.monitor.every, at_zero=True):
            return False
        settings = self.config.monitor
        prompts = self.eval_prompts[: settings.prompts]
        greedy = SamplingSettings(n=1, temperature=0.0, max_new_tokens=self.config.rollout.max_new_tokens)
        pools = self.pools
        scored = generate_and_score(
            pools.rollout, pools.verifier, prompts, greedy, [None] * len(prompts), reward=pools.reward
        )
        samples, rewards = [g[0] for g in scored.groups], [r[0] for r in scored.rewards]
        reward_model = self.config.reward_model.name if self.config.reward_model else None
        stats = step_stats(
            step, prompts, samples, rewards, gold=settings.gold, reward_model=reward_model, kl=self.last_kl
        )
        update = self.monitor.update(stats)
        self.tracker.log_metrics(
            {**update.metrics, "monitor/accuracy": _mean(r.correct for r in rewards)}, step
        )
        self.monitor_rows.extend(_monitor_rows(stats, rewards, prompts, limit=4))
        gold = "n/a" if stats.gold is None else f"{stats.gold:.3f}"
        console.log(f"monitor at step {step}: proxy {stats.proxy:.3f}  gold {gold}  {_alert_words(update)}")
        for alert in update.new:
            console.log(
                f"[bold red]reward-hacking alert[/] at step {step} ({alert.detector}): {alert.reason}"
            )
        if update.new:
            self.tracker.set_tags(self.monitor.tags())
        if update.is_best_gold:
            self._save_best_gold(step, stats.gold)
        return self.monitor.should_stop

    def _save_best_gold(self, step: int, gold: float) -> None:
        """The policy of the best-gold step so far, as a Hugging Face directory (replaced, never partial)."""
        final = self.best_gold_dir()
        staging = final.with_name(final.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        self.pools.learner.save_pretrained(str(staging))
        (staging / "best_gold.json").write_text(json.dumps({"step": step, "gold": gold}) + "\n")
        shutil.rmtree(final, ignore_errors=True)
        staging.rename(final)

    def best_gold_dir(self) -> Path:
        return self.store.run_dir(self.tracker.run_id) / "best_gold_policy"

    def _checkpoint(self, step: int) -> None:
        directory = self.store.checkpoint_dir(self.tracker.run_id)
        info = CheckpointInfo(run_id=self.tracker.run_id, step=step, directory=str(directory))
        self.pools.learner.save_checkpoint(str(directory), info.tag, self._loop_state(step))
        self.store.commit(info, keep=self.config.train.keep_checkpoints)
        console.log(f"checkpoint at step {step}: {directory / info.tag}")

    def _loop_state(self, step: int) -> dict:
        """What the loop itself must carry across a resume, stored with the learner's checkpoint."""
        monitor = json.dumps(self.monitor.state_dict()) if self.monitor is not None else None
        return {"step": step, "kl_coef": self.kl.beta, "last_kl": self.last_kl, "monitor": monitor}

    def _restore(self, checkpoint: CheckpointInfo) -> int:
        """Load the learner state and push its weights to the engines; returns the step to continue after."""
        state = self.pools.learner.load_checkpoint(checkpoint.directory, checkpoint.tag)
        # Checkpoints written before the loop kept its own state hold only the step.
        self.kl.beta = state.get("kl_coef", self.kl.beta)
        self.last_kl = state.get("last_kl")
        if self.monitor is not None and state.get("monitor"):
            self.monitor = HackingMonitor.from_state_dict(
                self.config.monitor, json.loads(state["monitor"]), self.monitor.reference
            )
        self.pools.rollout.sync_weights(self.pools.learner.weights(), policy_version=checkpoint.step)
        console.log(f"resumed run {checkpoint.run_id} after step {checkpoint.step}")
        return checkpoint.step

    def _finish(self, last: int) -> RunSummary:
        tracker = self.tracker
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
        monitor = self._finish_monitor() if self.monitor is not None else {}
        keys = ("eval/accuracy", "eval/accuracy_sampled")
        before = {key: _value_at(history[key], 0) for key in keys}
        after = {key: _value_at(history[key], last) for key in keys}
        return RunSummary(
            run_id=tracker.run_id,
            accuracy_before=before["eval/accuracy"],
            accuracy_after=after["eval/accuracy"],
            sampled_before=before["eval/accuracy_sampled"],
            sampled_after=after["eval/accuracy_sampled"],
            model_dir=str(model_dir),
            model_uri=model_uri,
            steps_done=last,
            **monitor,
        )

    def _finish_monitor(self) -> dict:
        """Tags, the monitor's answers table and the proxy-vs-gold plot; the summary's monitor fields."""
        monitor, tracker = self.monitor, self.tracker
        alert = monitor.first_alert
        best_dir = self.best_gold_dir() if monitor.best_gold_step is not None else None
        tags = monitor.tags() or {"monitor.hacking_alert": "false"}
        if best_dir is not None:
            tags.update(
                {
                    "monitor.best_gold_step": str(monitor.best_gold_step),
                    "monitor.best_gold_policy": str(best_dir),
                }
            )
        tracker.set_tags(tags)
        tracker.log_table(self.monitor_rows, "monitor_samples.json")
        history = {key: read_metric_history(tracker.run_id, key) for key in ("monitor/proxy", "monitor/gold")}
        figure = proxy_vs_gold(
            history, alert_step=alert.step if alert else None, best_gold_step=monitor.best_gold_step
        )
        tracker.log_figure(figure, "plots/proxy_vs_gold.png")
        return {
            "alert_step": alert.step if alert else None,
            "best_gold_step": monitor.best_gold_step,
            "best_gold_dir": str(best_dir) if best_dir else None,
        }


SUMMARY_METRICS = ("eval/accuracy", "eval/accuracy_sampled", "train/reward_mean", "train/accuracy")


def is_due(step: int, every: int, *, at_zero: bool = False) -> bool:
    """Whether an action due every `every` steps (0: never) runs after `step`; at step 0 only if `at_zero`."""
    if not every or (step == 0 and not at_zero):
        return False
    return step % every == 0


def _alert_words(update) -> str:
    return f"ALERT: {', '.join(a.detector for a in update.active)}" if update.active else "no alert"


def _monitor_rows(stats, rewards, prompts, limit: int) -> list[dict]:
    """The first `limit` greedy answers the monitor scored, for the monitor's samples table."""
    return [
        {
            "step": stats.step,
            "prompt": prompt.messages[-1]["content"],
            "completion": text,
            "reward": reward.score,
            "components": json.dumps(reward.components),
        }
        for prompt, text, reward in list(zip(prompts, stats.responses, rewards, strict=True))[:limit]
    ]


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
