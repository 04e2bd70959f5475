"""`rlsys sft JOB`: supervised fine-tuning on chat data, on the learner pool; MLflow; a Hugging Face model.

    rlsys sft jobs/sft_quickstart.yaml train.steps=200 learner.replicas=2   # locally (its own Ray runtime)
    rlsys sft jobs/sft_quickstart.yaml --resume                             # continue the newest checkpoint
    ray job submit --address http://HEAD:8265 --working-dir . -- rlsys sft jobs/sft_quickstart.yaml

Every row is read, encoded and checked before any actor starts (`rlsys.sft.data`). A step takes the next
`train.examples_per_step` conversations of a seeded per-epoch order (a function of (seed, step): a resumed
run sees the ones an uninterrupted run would), encodes them with the model's chat template, the loss on the
replies only, and hands them to the learner pool (DeepSpeed ranks, `actors.trainer_pools.RaySFTPool`), which
packs them into blocks and takes one optimizer step. The held-out loss is measured at the start, every
`train.eval_every` steps and at the end; checkpoints as in RL (`rlsys.checkpoint`); the model is saved,
atomically, to <output_dir>/<name>/<run id>/model before the final evaluation, where `rlsys run
model.path=...` takes it as it is.
"""

import time
from dataclasses import dataclass

from actors.cluster import session, start_named_pools
from actors.trainer_pools import RaySFTPool
from rlsys.checkpoint import CheckpointInfo, CheckpointStore
from rlsys.console import console
from rlsys.job import checkpoint_to_resume, interrupted, stop_on_sigterm
from rlsys.lineage import lineage
from rlsys.loop import is_due
from rlsys.models import job_chat_template, load_tokenizer, resolve_model
from rlsys.order import step_batch
from rlsys.plots import sft_losses
from rlsys.sft.config import SFTConfig, sft_defaults
from rlsys.sft.data import SFTData, load_sft_data
from rlsys.sft.tokens import encode_chat
from rlsys.tracking import Tracker

_LINES = 50  # step lines on the console in a run, at most (every step is in MLflow)


@dataclass(frozen=True)
class SFTSummary:
    run_id: str
    model_dir: str
    loss_before: float  # held-out loss at step 0 (or where a resumed run's first evaluation was)
    loss_after: float
    steps: int
    tokens_per_s: float  # tokens trained through per second of training steps, padding excluded
    model_uri: str | None


def run(config: SFTConfig, *, resume: str | None = None) -> SFTSummary:
    """The whole job: data checked, the learner pool up, `train.steps` steps with held-out evaluations and
    checkpoints, the model saved; everything in MLflow. `resume`: continue a run's newest checkpoint (of run
    `resume`, or of the job's most recent run when "")."""
    stop_on_sigterm()
    store = CheckpointStore(config.train.output_dir, config.name)
    store.check_writable()
    checkpoint = (
        checkpoint_to_resume(store, resume, config.flat(), sft_defaults()) if resume is not None else None
    )
    model_path = resolve_model(config.model)
    template = job_chat_template(config.model)
    tokenizer = load_tokenizer(model_path, template)
    data = load_sft_data(config.data, tokenizer, config.seed)
    for line in data.report:
        console.log(line)
    loop = None
    try:
        with session():
            stop_on_sigterm()  # again: connecting installs Ray's own handler, which aborts the driver
            run_id = checkpoint.run_id if checkpoint else None
            with Tracker(
                config.tracking, run_name=config.tracking.run_name or config.name, run_id=run_id
            ) as tracker:
                console.log(
                    f"MLflow run {tracker.run_id}; starting {config.learner.replicas} learner rank(s)"
                )
                pools, seconds = start_named_pools(
                    config,
                    {
                        "learner": lambda: RaySFTPool(
                            model_path,
                            config.learner,
                            total_steps=config.train.steps,
                            packing=config.data.packing,
                            max_tokens=config.data.max_tokens,
                            dtype=config.model.dtype,
                            seed=config.seed,
                            chat_template=template,
                        )
                    },
                )
                console.log(f"learner pool started in {seconds:.1f}s")
                loop = SFTLoop(config, pools["learner"], tracker, store, data, tokenizer, model_path)
                try:
                    return loop.run(checkpoint)
                finally:  # on a cluster, or in a process that keeps its Ray runtime, the ranks go now
                    pools["learner"].shutdown()
    except KeyboardInterrupt:
        if loop is None:
            raise interrupted(store, None, 0, "rlsys sft") from None
        raise interrupted(store, loop.tracker.run_id, loop.last_step, "rlsys sft") from None


class SFTLoop:
    """One SFT job's steps over the learner pool it is given: `run` the whole job."""

    def __init__(
        self,
        config: SFTConfig,
        pool: RaySFTPool,
        tracker: Tracker,
        store: CheckpointStore,
        data: SFTData,
        tokenizer,
        base_model: str,
    ) -> None:
        self.config, self.pool, self.tracker, self.store, self.data = config, pool, tracker, store, data
        self.tokenizer, self.base_model = tokenizer, base_model
        self.last_step = 0
        self.trained_tokens = 0.0  # tokens through training steps (padding excluded), and their seconds
        self.train_seconds = 0.0

    def run(self, checkpoint: CheckpointInfo | None) -> SFTSummary:
        config, tracker = self.config, self.tracker
        if checkpoint is None:
            tracker.log_params({**config.flat(), "model.resolved_path": self.base_model})
            tracker.log_params({f"data.source.{split}": src for split, src in self.data.sources.items()})
            tracker.log_dict(config.model_dump(mode="json"), "config/job.json")
            self.evaluate(0)
        else:
            self.last_step = self.restore(checkpoint)
        steps = config.train.steps
        for step in range(self.last_step + 1, steps + 1):
            self.train_step(step)
            self.last_step = step
            if step < steps and is_due(step, config.train.eval_every):
                self.evaluate(step)
            if is_due(step, config.train.checkpoint_every):
                self.checkpoint(step)
        # The model first: whatever fails after it (the final eval, MLflow) cannot lose the run's result.
        model_dir = self.store.run_dir(tracker.run_id) / "model"
        self.pool.save_pretrained(str(model_dir))
        console.log(f"model saved to {model_dir}")
        self.evaluate(self.last_step)
        return self._finish(str(model_dir))

    def train_step(self, step: int) -> None:
        """Step `step`'s conversations (steps count from 1), encoded and trained on; metrics logged."""
        started = time.perf_counter()
        size = self.config.train.examples_per_step
        examples = [
            encode_chat(self.tokenizer, messages)
            for messages in step_batch(self.data.train, step - 1, size, self.config.seed)
        ]
        encoded = time.perf_counter()
        metrics = self.pool.train_step(examples)
        finished = time.perf_counter()
        self.trained_tokens += metrics["real_tokens"]
        self.train_seconds += finished - encoded
        logged = {
            "train/loss": metrics["loss"],
            "train/reply_tokens": metrics["tokens"],
            "train/tokens_per_s": metrics["real_tokens"] / (finished - encoded),
            "train/grad_norm": metrics["grad_norm"],
            "train/lr": metrics["lr"],
            "train/epoch": step * size / len(self.data.train),
            "time/encode_s": encoded - started,
            "time/train_s": finished - encoded,
            "time/step_s": finished - started,
        }
        self.tracker.log_metrics(logged, step)
        steps = self.config.train.steps
        if step % max(1, steps // _LINES) == 0 or step == steps:
            console.log(
                f"step {step}/{steps}  loss {metrics['loss']:.4f}  lr {metrics['lr']:.2e}  "
                f"{logged['train/tokens_per_s']:.0f} tokens/s  step {logged['time/step_s']:.2f}s"
            )

    def evaluate(self, step: int) -> float:
        """The held-out loss (per reply token), logged as eval/loss at `step`."""
        loss = self.pool.evaluate(self.data.heldout)
        self.tracker.log_metrics({"eval/loss": loss}, step)
        console.log(f"held-out loss at step {step}: {loss:.4f}")
        return loss

    def checkpoint(self, step: int) -> None:
        """The learner's state, written whole, then committed as the run's newest; its manifest digest goes to
        the tracker, where a resume checks it."""
        info = self.store.prepare(self.tracker.run_id, step)
        self.pool.save_checkpoint(info.directory, info.staging_tag, {"step": step})
        digest = self.store.commit(info, keep=self.config.train.keep_checkpoints)
        self.tracker.set_tags({f"rlsys.checkpoint.{info.tag}.sha256": digest})
        console.log(f"checkpoint at step {step}: {info.path}")

    def restore(self, checkpoint: CheckpointInfo) -> int:
        """Load a checkpoint; returns the step to continue after."""
        self.pool.load_checkpoint(checkpoint.directory, checkpoint.tag)
        console.log(f"resumed run {checkpoint.run_id} after step {checkpoint.step}")
        return checkpoint.step

    def _finish(self, model_dir: str) -> SFTSummary:
        tracker = self.tracker
        history = {key: tracker.history(key) for key in ("train/loss", "eval/loss")}
        tracker.log_figure(sft_losses(history), "plots/loss.png")
        model_uri = None
        if self.config.tracking.registered_model:
            checkpoint = self.store.latest(tracker.run_id)
            made_by = lineage(
                self.config,
                sources=self.data.sources,
                run_id=tracker.run_id,
                base_model=self.base_model,
                checkpoint=checkpoint,
                checkpoint_digest=self.store.manifest_digest(checkpoint) if checkpoint else None,
                evaluation={"eval/loss": history["eval/loss"][-1][1]},
            )
            model_uri = tracker.register_model(model_dir, self.config.tracking.registered_model, made_by)
            tracker.set_tags({"rlsys.model_uri": model_uri})
        evals = history["eval/loss"]
        return SFTSummary(
            run_id=tracker.run_id,
            model_dir=model_dir,
            loss_before=evals[0][1],
            loss_after=evals[-1][1],
            steps=self.last_step,
            tokens_per_s=self.trained_tokens / max(self.train_seconds, 1e-9),
            model_uri=model_uri,
        )
