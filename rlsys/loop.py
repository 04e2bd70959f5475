"""The learner loop: generate → verify/score → advantages → train → sync weights → eval/monitor/checkpoint.

`RLLoop` is handed its pools, tracker and checkpoint store (`rlsys.protocols`); it holds no model and calls
no Ray. `rlsys.job.run` wires it to Ray pools and MLflow; the loop's unit tests wire it to in-memory fakes.

One step s (counted from 1):
  1. the prompts of step s: a pure function of (seed, s), so a resumed run sees the same ones;
  2. `rollout.samples_per_prompt` samples each, scored by the verifiers (and a reward model);
  3. group-normalised advantages; groups whose samples all scored the same are dropped (no signal); with a
     critic (PPO), per-token advantages by GAE over its values instead, and one critic step;
  4. one learner step on the rest, with this step's KL weight (adaptive when `algorithm.kl_target` is set);
  5. the new weights go to the engines, tagged as policy version s; there, with no rollout in flight, each
     elastic pool grows or shrinks on the backlog the step measured (`rlsys.autoscale`).
With `train.max_staleness` K the engines sample up to K steps ahead during 3-5 (`rlsys.pipeline`), from
weights up to K versions old; the learner corrects those samples (`algorithm.off_policy_correction`).
"""

import json
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field, replace
from pathlib import Path

from rlsys.algorithms.kl_control import KLController
from rlsys.atomic import os_reason
from rlsys.autoscale import SCORING_SLACK
from rlsys.batch import training_batch, useful_groups, with_gae
from rlsys.checkpoint import CheckpointInfo, CheckpointStore
from rlsys.config import JobConfig
from rlsys.console import console
from rlsys.data import load_task
from rlsys.errors import RewardError, StorageError
from rlsys.lineage import lineage
from rlsys.metrics import rollout_metrics, sample_rows, staleness_metrics, step_line, tool_metrics
from rlsys.order import extra_batch, request_seed, step_batch
from rlsys.pipeline import RolloutPipeline
from rlsys.plots import calibration_plot, training_summary
from rlsys.protocols import Pools, Tracker
from rlsys.rlhf.watch import MonitorOutcome, MonitorWatch
from rlsys.scoring import ScoredRollout, evaluate, sample_and_score, with_signal
from rlsys.types import Prompt, Sampling, TaskData, TrainSequence, trained_token_count
from rlsys.versions import staleness_of

SUMMARY_METRICS = (
    "eval/accuracy",
    "eval/accuracy_sampled",
    "eval/tool/used_share",
    "train/reward_mean",
    "train/accuracy",
    "tool/used_share",
)
CRITIC_TAG = "critic"  # the critic's state inside each checkpoint, beside the learner's
ABSTENTION_METRICS = ("accuracy", "abstain_rate", "hallucination_rate")


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
    # With the abstain reward: eval/[<set>/]{accuracy, abstain_rate, hallucination_rate} -> (before, after).
    abstention: dict[str, tuple[float, float]] = field(default_factory=dict)


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
        if (config.algorithm.advantage == "gae") != (pools.critic is not None):
            raise ValueError("a critic pool is given exactly when algorithm.advantage=gae (ppo)")
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
        self.calibration: dict[int, list[tuple[float, str]]] = {}  # step -> every eval question's point
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
            with _writing("the monitor's best-gold policy", self.store.run_dir(self.tracker.run_id)):
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
        with _writing("the policy", model_dir):
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
            run_dir = self.store.run_dir(self.tracker.run_id)
            with _writing(f"the prompt record of step {step}", run_dir / "prompts.jsonl"):
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
                "train/trained_samples": len(sequences),  # 0: no group carried signal, the step did not train
                "train/kl_coef": self.kl.beta,
                "train/sampling_rounds": rollout.extra_rounds,
                **staleness_metrics(sequences, staleness),
            }
        )
        kl = None
        if sequences and pools.critic is not None:
            sequences = self._critic_step(sequences, metrics)
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
            synced = time.perf_counter()
            self._autoscale(scored, learner_s=(trained - began_training) + (synced - engines_free))
        if self._pipeline is not None:
            self._pipeline.advance(step)
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
                # Tokens the policy sampled, not tool output.
                "rollout/tokens_per_s": sum(lengths) / max(scored.generate_s, 1e-9),
                **pools.metrics(),
                **sync,
            }
        )
        self.tracker.log_metrics(metrics, step)
        rows = sample_rows(step, rollout.prompts, groups, scored.rewards, self.config.train.log_samples)
        run_dir = self.store.run_dir(self.tracker.run_id)
        with _writing(f"the samples of step {step}", run_dir / "samples.jsonl"):
            self.store.record_samples(self.tracker.run_id, step, rows)
        console.log(step_line(step, self.config.train.steps, metrics))
        return metrics

    def _critic_step(self, sequences: list[TrainSequence], metrics: dict[str, float]) -> list[TrainSequence]:
        """PPO: the critic's values of the batch, GAE's per-token advantages and returns (`with_gae`), then
        one critic step toward those returns; the sequences come back carrying their per-token advantages.
        Adds `critic/*` to `metrics`: the step's value loss and how much of the returns' variance the values
        explained before it (not logged when the returns do not vary); and `time/critic_s`, part of
        `time/train_s`."""
        began = time.perf_counter()
        algorithm, critic = self.config.algorithm, self.pools.critic
        sequences, explained = with_gae(
            sequences, critic.values(sequences), gamma=algorithm.gamma, lam=algorithm.gae_lambda
        )
        metrics.update({f"critic/{key}": value for key, value in critic.train_step(sequences).items()})
        if explained is not None:
            metrics["critic/explained_variance"] = explained
        metrics["time/critic_s"] = time.perf_counter() - began
        return sequences

    def _autoscale(self, scored: ScoredRollout, learner_s: float) -> None:
        """Each elastic pool resizes on this step's backlog, here where none holds work (no rollout runs
        inside `engines_idle`): the engines against the learner's own time in the step (train and sync),
        each scoring pool against `SCORING_SLACK` of the generation time (`rlsys.autoscale`)."""
        self.pools.rollout.autoscale(scored.prompts_sampled, budget_s=learner_s)
        for scorer, queued in zip(self.pools.scorers(), scored.score_queued, strict=True):
            scorer.autoscale(queued, budget_s=SCORING_SLACK * scored.generate_s)

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
                evaluation = evaluate(self.pools, prompts, greedy=greedy, sampled=sampled, seeds=seeds)
            metrics = evaluation.metrics
            if evaluation.calibration:
                self.calibration.setdefault(step, []).extend(evaluation.calibration)
            logged = dict(metrics) if index == 0 else {}
            if name:
                logged.update({key.replace("eval/", f"eval/{name}/", 1): v for key, v in metrics.items()})
            self.tracker.log_metrics(logged, step)
            abstention = ""
            if "eval/abstain_rate" in metrics:
                abstention = (
                    f"  hallucination {metrics['eval/hallucination_rate']:.3f}  "
                    f"abstain {metrics['eval/abstain_rate']:.3f}"
                )
            tool_use = ""
            if greedy.max_tool_calls:
                tool_use = f"  calling the tool {metrics['eval/tool/used_share']:.2f}"
            console.log(
                f"eval{f' {name}' if name else ''} at step {step}: accuracy {metrics['eval/accuracy']:.3f}  "
                f"sampled {metrics['eval/accuracy_sampled']:.3f}  "
                f"multi-line answers {metrics['eval/multiline_share']:.2f}{abstention}{tool_use}"
            )

    def _look(self, step: int) -> bool:
        if self.watch is None:
            return False
        with self._engines_idle():
            return self.watch.look(step)

    def checkpoint(self, step: int) -> None:
        """The learner's state, the critic's (PPO) and the loop's own (KL weight, monitor), written whole,
        then committed as the run's newest; its manifest digest goes to the tracker, where a resume checks
        it."""
        where = self.store.checkpoint_dir(self.tracker.run_id)
        with _writing(f"the checkpoint of step {step}", where):
            info = self.store.prepare(self.tracker.run_id, step)
        loop_state = {"step": step, "kl_coef": self.kl.beta}
        if self.watch is not None:
            loop_state["monitor"] = json.dumps(self.watch.state_dict())
        # A failed save leaves nothing behind: the partial folder goes (and on a full disk the room it took).
        with _writing(f"the checkpoint of step {step}", where, cleanup=lambda: self.store.discard(info)):
            self.pools.learner.save_checkpoint(info.directory, info.staging_tag, loop_state)
            if self.pools.critic is not None:
                critic_dir = str(Path(info.directory) / info.staging_tag)
                self.pools.critic.save_checkpoint(critic_dir, CRITIC_TAG, {"step": step})
            digest = self.store.commit(info, keep=self.config.train.keep_checkpoints)
        self.tracker.set_tags({f"rlsys.checkpoint.{info.tag}.sha256": digest})
        console.log(f"checkpoint at step {step}: {info.path}")

    def restore(self, checkpoint: CheckpointInfo) -> int:
        """Load a checkpoint and push its weights to the engines; returns the step to continue after."""
        state = self.pools.learner.load_checkpoint(checkpoint.directory, checkpoint.tag)
        if self.pools.critic is not None:
            self.pools.critic.load_checkpoint(str(checkpoint.path), CRITIC_TAG)
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
        tracker.log_table(self.store.recorded_samples(tracker.run_id), "samples.json")
        tracker.log_figure(training_summary(history), "plots/accuracy.png")
        if self.calibration:
            steps = sorted(self.calibration)
            tracker.log_figure(
                calibration_plot({step: self.calibration[step] for step in (steps[0], steps[-1])}),
                "plots/calibration.png",
            )
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
            abstention=self._abstention_change(last),
        )

    def _abstention_change(self, last: int) -> dict[str, tuple[float, float]]:
        """Each eval set's accuracy, abstain and hallucination rates at step 0 and at `last`, when the job
        scores abstention (empty otherwise)."""
        change = {}
        for index, name in enumerate(self.task.evals):
            prefixes = ["eval/"] if index == 0 else []
            prefixes += [f"eval/{name}/"] if name else []
            for prefix in prefixes:
                if not self.tracker.history(f"{prefix}abstain_rate"):
                    return {}
                for metric in ABSTENTION_METRICS:
                    history = self.tracker.history(prefix + metric)
                    change[prefix + metric] = (_value_at(history, 0), _value_at(history, last))
        return change


@contextmanager
def _writing(what: str, where: Path, cleanup: Callable[[], None] | None = None) -> Iterator[None]:
    """A write into the run's folder that fails (a full disk, a read-only or vanished folder) ends the run
    with one line naming what, where and why (`StorageError`), after `cleanup`. Only file errors (with an
    errno) are turned; anything else propagates as it is."""
    try:
        yield
    except OSError as err:
        reason = os_reason(err)
        if reason is None:
            raise
        if cleanup is not None:
            cleanup()
        raise StorageError(f"train.output_dir: could not write {what} to {where}: {reason}") from None


def is_due(step: int, every: int) -> bool:
    """Whether an action due every `every` steps (0: never) runs after `step` (never at step 0)."""
    return bool(every) and step > 0 and step % every == 0


def _value_at(history: list[tuple[int, float]], step: int) -> float:
    """The last value logged at `step` (a resumed run may have logged a step twice)."""
    return [value for at, value in history if at == step][-1]
