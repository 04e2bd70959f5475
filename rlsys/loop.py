"""The learner loop: generate → verify/score → advantages → train → sync weights → eval/monitor/checkpoint.

`RLLoop` is handed its pools, tracker and checkpoint store (`rlsys.protocols`); it holds no model and calls
no Ray. `rlsys.job.run` wires it to Ray pools and MLflow; the loop's unit tests wire it to in-memory fakes.

One step s (counted from 1):
  1. the prompts of step s: a pure function of (seed, s), so a resumed run sees the same ones;
  2. `rollout.samples_per_prompt` samples each, scored by the verifiers (and a reward model);
  3. group-normalised advantages; groups whose samples all scored the same are dropped (no signal);
  4. one learner step on the rest, with this step's KL weight (adaptive when `algorithm.kl_target` is set);
  5. the new weights go to the engines, tagged as policy version s.
With `train.max_staleness` K the engines sample up to K steps ahead during 3-5 (`rlsys.pipeline`), from
weights up to K versions old; the learner corrects those samples (`algorithm.off_policy_correction`).
"""

import json
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

from rlsys.algorithms.kl_control import KLController
from rlsys.batch import training_batch, useful_groups
from rlsys.checkpoint import CheckpointInfo, CheckpointStore
from rlsys.config import JobConfig
from rlsys.console import console
from rlsys.data import load_task
from rlsys.errors import RewardError
from rlsys.lineage import lineage
from rlsys.metrics import rollout_metrics, sample_rows, staleness_metrics, step_line, tool_metrics
from rlsys.order import extra_batch, request_seed, step_batch
from rlsys.pipeline import RolloutPipeline
from rlsys.plots import training_summary
from rlsys.protocols import Pools, Tracker
from rlsys.rlhf.watch import MonitorOutcome, MonitorWatch
from rlsys.scoring import ScoredRollout, evaluate, sample_and_score, with_signal
from rlsys.types import Prompt, Sampling, TaskData, trained_token_count
from rlsys.versions import staleness_of

SUMMARY_METRICS = (
    "eval/accuracy",
    "eval/accuracy_sampled",
    "eval/tool/used_share",
    "train/reward_mean",
    "train/accuracy",
    "tool/used_share",
)


@dataclass(frozen=True)
class StepRollout:
    prompts: list[Prompt]
    scored: ScoredRollout
    extra_rounds: int = 0  # dynamic sampling's rounds of extra prompts


@dataclass(frozen=True)
class RunSummary:
    run_id: str
    accuracy_before: float
    accuracy_after: float
    sampled_before: float
    sampled_after: float
    model_dir: str
    model_uri: str | None  # the registered model version, when tracking.registered_model is set
    steps_done: int  # fewer than train.steps when the monitor stopped the run
    monitor: MonitorOutcome | None = None


class RLLoop:
    """One job's RL loop over the pools it is given: `run` the whole job, `train_steps` the steps alone."""

    def __init__(
        self,
        config: JobConfig,
        pools: Pools,
        tracker: Tracker,
        store: CheckpointStore,
        task: TaskData | None = None,
        base_model: str | None = None,
    ) -> None:
        """`task`: the job's prompts when already loaded (the job checks them before starting pools);
        `base_model`: the model directory training starts from, for the registered policy's lineage."""
        self.config, self.pools, self.tracker, self.store = config, pools, tracker, store
        self.base_model = base_model
        self.task = task or load_task(config.task, config.verifier)
        self.train_prompts = self.task.train
        self.eval_prompts = next(iter(self.task.evals.values()))  # the primary set: eval/accuracy, monitor
        rollout = config.rollout
        self.sampling = Sampling(
            n=rollout.samples_per_prompt,
            temperature=rollout.temperature,
            top_p=rollout.top_p,
            max_new_tokens=rollout.max_new_tokens,
            max_tool_calls=rollout.max_tool_calls,
        )
        algorithm = config.algorithm
        self.kl = KLController(algorithm.kl_coef, algorithm.kl_target, algorithm.kl_horizon)
        self.sample_rows: list[dict] = []
        self._pipeline: RolloutPipeline | None = None  # while train_steps runs
        self.mismatch_alert_step: int | None = None
        self.last_step = 0  # the last step completed, for the summary and an interrupted run's message
        self.watch = (
            MonitorWatch(
                config.monitor,
                prompts=self.eval_prompts,
                max_new_tokens=rollout.max_new_tokens,
                reward_model=config.reward_model,
                pools=pools,
                tracker=tracker,
                run_dir=store.run_dir(tracker.run_id),
            )
            if config.monitor is not None
            else None
        )

    def run(self, checkpoint: CheckpointInfo | None = None) -> RunSummary:
        """Eval, `train.steps` RL steps with their evals, monitor looks and checkpoints; the policy saved,
        then a final eval. With a `checkpoint`, continue after its step instead of starting."""
        config = self.config
        if checkpoint is None:
            self.tracker.log_params(config.flat())
            self.tracker.log_dict(config.model_dump(mode="json"), "config/job.json")
            self.evaluate(0)
            self._look(0)
        else:
            self.last_step = self.restore(checkpoint)
        for step, _ in self.train_steps(self.last_step + 1, config.train.steps):
            self.last_step = step
            stop = self._look(step)
            if not stop and step < config.train.steps and is_due(step, config.train.eval_every):
                self.evaluate(step)
            if is_due(step, config.train.checkpoint_every):
                self.checkpoint(step)
            if stop:
                console.log(f"monitor.stop_on_alert: stopping after step {step}")
                break
        # The policy first: whatever fails after it (the final eval, MLflow) cannot lose the run's result.
        model_dir = self.store.run_dir(self.tracker.run_id) / "policy"
        self.pools.learner.save_pretrained(str(model_dir))
        console.log(f"policy saved to {model_dir}")
        self.evaluate(self.last_step)
        return self._finish(self.last_step, model_dir)

    def train_steps(self, first: int, last: int) -> Iterator[tuple[int, dict[str, float]]]:
        """Run RL steps `first`..`last`; yield each step and its metrics once its weights are synced.

        The rollouts run on a pipeline of their own (`rlsys.pipeline`), up to `train.max_staleness` steps
        ahead of training. Leaving the loop early lets the rollout under way finish; an error or an
        interrupt does not wait for it (the job's end takes the pools down with it).
        """
        pipeline = RolloutPipeline(
            self._rollout,
            range(first, last + 1),
            max_staleness=self.config.train.max_staleness,
            version=first - 1,
        )
        self._pipeline = pipeline
        finished = False
        try:
            for step in range(first, last + 1):
                started = time.perf_counter()
                yield step, self._step(step, pipeline.take(step), started)
            finished = True
        except GeneratorExit:  # the caller stopped early on purpose: the rollout under way may finish
            finished = True
            raise
        finally:
            self._pipeline = None
            pipeline.close(wait=finished)

    def _engines_idle(self) -> AbstractContextManager:
        """No rollout runs on the engines inside this block (a sync, an evaluation)."""
        return self._pipeline.engines_idle() if self._pipeline is not None else nullcontext()

    def _rollout(self, step: int) -> StepRollout:
        """Step `step`'s prompts, sampled and scored with the weights the engines hold now; with dynamic
        sampling, topped up until enough groups carry signal."""
        seed, size = self.config.seed, self.config.train.prompts_per_step
        # Steps count from 1; the batch and seeds of step s are those of index s-1 in the prompt order.
        first = step_batch(self.train_prompts, step - 1, size, seed)

        def sampled(prompts: list[Prompt], offset: int) -> tuple[list[Prompt], ScoredRollout]:
            seeds = [request_seed(seed, step - 1, offset + i) for i in range(len(prompts))]
            self.store.record_prompts(self.tracker.run_id, step, [p.id for p in prompts])
            return prompts, sample_and_score(
                self.pools.rollout, self.pools.scorers(), prompts, self.sampling, seeds
            )

        def more(round_: int) -> tuple[list[Prompt], ScoredRollout]:
            return sampled(extra_batch(self.train_prompts, step - 1, round_, size, seed), round_ * size)

        algorithm = self.config.algorithm
        prompts, scored, rounds = with_signal(
            sampled(first, 0),
            more,
            lambda rollout: useful_groups(rollout.groups, rollout.rewards, algorithm),
            wanted=size,
            rounds=algorithm.dynamic_sampling_rounds,
        )
        return StepRollout(prompts, scored, rounds)

    def _step(self, step: int, rollout: StepRollout, started: float) -> dict:
        """One RL step: train on the informative groups, push the weights out; returns the step's metrics.
        `started`: when this step began waiting for its rollout."""
        pools, scored = self.pools, rollout.scored
        groups = scored.groups
        began_training = time.perf_counter()
        # Checked before training: a sample from weights outside the staleness window fails the step.
        staleness = staleness_of(groups, step, max_staleness=self.config.train.max_staleness)
        sequences, kept = training_batch(
            groups, scored.rewards, self.config.algorithm, learner_version=step - 1
        )
        metrics = rollout_metrics(groups, scored.rewards)
        if self.sampling.max_tool_calls:
            metrics.update(tool_metrics([s for group in groups for s in group]))
        self._check_rewards(step, metrics["verifier/error_rate"], scored)
        metrics.update(
            {
                "train/informative_groups": kept,
                "train/kl_coef": self.kl.beta,
                "train/sampling_rounds": rollout.extra_rounds,
                **staleness_metrics(sequences, staleness),
            }
        )
        kl = None
        if sequences:
            trained_on = pools.learner.train_step(sequences, kl_coef=self.kl.beta)
            metrics.update({f"train/{k}": v for k, v in trained_on.items()})
            self._check_mismatch(step, trained_on["logprob_mismatch"])
            kl = trained_on.get("kl")  # measured against the reference when kl_coef > 0
            if kl is not None:
                self.kl.update(kl, len(sequences))
        trained = time.perf_counter()
        with self._engines_idle():
            engines_free = time.perf_counter()
            sync = pools.rollout.sync_weights(pools.learner.weights(), version=step)  # sync/verified
        if self._pipeline is not None:
            self._pipeline.advance(step)
        synced = time.perf_counter()
        for scorer in pools.scorers():
            scorer.autoscale(scored.score_wait_s, scored.generate_s)
        lengths = [trained_token_count(s.token_ids, s.loss_mask) for group in groups for s in group]
        if self.watch is not None:
            untrained = all(s.policy_version == 0 for group in groups for s in group)
            self.watch.observe_training(lengths, kl, untrained=untrained)
        metrics.update(
            {
                "time/generate_s": scored.generate_s,
                "time/verify_s": scored.score_wait_s,  # scoring overlaps generation; the rest
                "time/rollout_wait_s": began_training - started,  # the whole rollout, unless run ahead
                "time/train_s": trained - began_training,
                "time/ahead_wait_s": engines_free - trained,  # a rollout ahead outlasting training
                "time/sync_s": synced - engines_free,
                "time/step_s": synced - started,
                "rollout/tokens_per_s": sum(lengths)
                / max(scored.generate_s, 1e-9),  # sampled, not tool output
                "pool/scoring_backlog": scored.score_backlog,
                **pools.metrics(),
                **sync,
            }
        )
        self.tracker.log_metrics(metrics, step)
        self.sample_rows.extend(
            sample_rows(
                step,
                rollout.prompts,
                rollout.scored.groups,
                rollout.scored.rewards,
                self.config.train.log_samples,
            )
        )
        console.log(step_line(step, self.config.train.steps, metrics))
        return metrics

    def _check_rewards(self, step: int, error_rate: float, scored: ScoredRollout) -> None:
        """Fail the step when reward functions failed on more samples than `verifier.max_error_rate` allows:
        training on the zeros they left would teach the policy nothing true."""
        limit = self.config.verifier.max_error_rate
        if error_rate > limit:
            first = next(e for rewards in scored.rewards for r in rewards for e in r.errors)
            raise RewardError(
                f"step {step}: reward scoring failed on {error_rate:.0%} of the samples, above "
                f"verifier.max_error_rate ({limit:.0%}); the first failure: {first}"
            )

    def _check_mismatch(self, step: int, mismatch: float) -> None:
        """Warn, and tag the run, the first time the sampler's and the learner's log-probs of the trained
        tokens drift apart beyond `train.max_logprob_mismatch`: an engine computing something other than the
        learner's policy (a precision or kernel difference, weights not synced) or samples too stale to
        correct. `train/logprob_mismatch` shows every step."""
        limit = self.config.train.max_logprob_mismatch
        if limit is None or mismatch <= limit or self.mismatch_alert_step is not None:
            return
        self.mismatch_alert_step = step
        console.log(
            f"[yellow]alert: step {step}: train/logprob_mismatch {mismatch:.3f} is above "
            f"train.max_logprob_mismatch {limit}: the engines' log-probs no longer match the learner's"
        )
        self.tracker.set_tags({"rlsys.alert.logprob_mismatch": f"step {step}: {mismatch:.4f}"})

    def evaluate(self, step: int) -> None:
        """Held-out accuracy on every eval set, greedy and sampled at the training temperature, logged at
        `step`: `eval/<set>/*` for named sets, and plain `eval/*` for the first."""
        config = self.config
        sampled = replace(self.sampling, n=config.train.eval_samples)
        greedy = replace(self.sampling, n=1, temperature=0.0, top_p=1.0)
        for index, (name, prompts) in enumerate(self.task.evals.items()):
            seeds = [request_seed(config.seed + 1, step, i) for i in range(len(prompts))]
            with self._engines_idle():
                metrics = evaluate(self.pools, prompts, greedy=greedy, sampled=sampled, seeds=seeds)
            logged = dict(metrics) if index == 0 else {}
            if name:
                logged.update({key.replace("eval/", f"eval/{name}/", 1): v for key, v in metrics.items()})
            self.tracker.log_metrics(logged, step)
            console.log(
                f"eval{f' {name}' if name else ''} at step {step}: accuracy {metrics['eval/accuracy']:.3f}  "
                f"sampled {metrics['eval/accuracy_sampled']:.3f}  "
                f"multi-line answers {metrics['eval/multiline_share']:.2f}"
                + (
                    f"  calling the tool {metrics['eval/tool/used_share']:.2f}"
                    if greedy.max_tool_calls
                    else ""
                )
            )

    def _look(self, step: int) -> bool:
        if self.watch is None:
            return False
        with self._engines_idle():
            return self.watch.look(step)

    def checkpoint(self, step: int) -> None:
        """The learner's state and the loop's own (KL weight, monitor), written whole, then committed as the
        run's newest; its manifest digest goes to the tracker, where a resume checks it."""
        info = self.store.prepare(self.tracker.run_id, step)
        loop_state = {"step": step, "kl_coef": self.kl.beta}
        if self.watch is not None:
            loop_state["monitor"] = json.dumps(self.watch.state_dict())
        self.pools.learner.save_checkpoint(info.directory, info.staging_tag, loop_state)
        digest = self.store.commit(info, keep=self.config.train.keep_checkpoints)
        self.tracker.set_tags({f"rlsys.checkpoint.{info.tag}.sha256": digest})
        console.log(f"checkpoint at step {step}: {info.path}")

    def restore(self, checkpoint: CheckpointInfo) -> int:
        """Load a checkpoint and push its weights to the engines; returns the step to continue after."""
        state = self.pools.learner.load_checkpoint(checkpoint.directory, checkpoint.tag)
        self.kl.beta = state.get("kl_coef", self.kl.beta)
        if self.watch is not None and state.get("monitor"):
            self.watch.load_state_dict(json.loads(state["monitor"]))
        self.pools.rollout.sync_weights(self.pools.learner.weights(), version=checkpoint.step)
        console.log(f"resumed run {checkpoint.run_id} after step {checkpoint.step}")
        return checkpoint.step

    def _finish(self, last: int, model_dir: Path) -> RunSummary:
        tracker = self.tracker
        history = {key: tracker.history(key) for key in SUMMARY_METRICS}
        model_uri = None
        if self.config.tracking.registered_model:
            checkpoint = self.store.latest(tracker.run_id)
            made_by = lineage(
                self.config,
                sources=self.task.sources,
                run_id=tracker.run_id,
                base_model=self.base_model,
                checkpoint=checkpoint,
                checkpoint_digest=self.store.manifest_digest(checkpoint) if checkpoint else None,
                evaluation={
                    k: values[-1][1] for k, values in history.items() if k.startswith("eval/") and values
                },
            )
            model_uri = tracker.register_model(str(model_dir), self.config.tracking.registered_model, made_by)
            tracker.set_tags({"rlsys.model_uri": model_uri})
        tracker.log_table(self.sample_rows, "samples.json")
        tracker.log_figure(training_summary(history), "plots/accuracy.png")
        accuracy, sampled = history["eval/accuracy"], history["eval/accuracy_sampled"]
        return RunSummary(
            run_id=tracker.run_id,
            accuracy_before=_value_at(accuracy, 0),
            accuracy_after=_value_at(accuracy, last),
            sampled_before=_value_at(sampled, 0),
            sampled_after=_value_at(sampled, last),
            model_dir=str(model_dir),
            model_uri=model_uri,
            steps_done=last,
            monitor=self.watch.finish() if self.watch is not None else None,
        )


def is_due(step: int, every: int) -> bool:
    """Whether an action due every `every` steps (0: never) runs after `step` (never at step 0)."""
    return bool(every) and step > 0 and step % every == 0


def _value_at(history: list[tuple[int, float]], step: int) -> float:
    """The last value logged at `step` (a resumed run may have logged a step twice)."""
    return [value for at, value in history if at == step][-1]
