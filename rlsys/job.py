"""An RL job end to end: the model resolved, the data checked, Ray pools started, an MLflow run, the loop
run over them.

    rlsys run jobs/quickstart.yaml train.steps=20                 # locally (a Ray runtime of its own)
    rlsys run jobs/quickstart.yaml --resume                       # continue the job's newest checkpoint
    ray job submit --address http://HEAD:8265 --working-dir . -- rlsys run jobs/quickstart.yaml

The driver holds no model: rollout engines (vLLM), verifiers, reward-model scorers and learner ranks
(DeepSpeed) are Ray actor pools, each sized and placed by its own section of the job config. Everything a
user can get wrong (the config, the data, a model without a chat template, an output folder that cannot be
written) is checked before any actor starts. A resumed run continues its checkpoint in the same MLflow run,
after checking that the checkpoint is whole and unchanged and that the config computes the same thing.
Ctrl-C (or SIGTERM) stops the run, marks it KILLED and says where to resume from (`Interrupted`).
"""

import os
import signal

import ray

from actors.cluster import connect, start_pools
from rlsys.checkpoint import CheckpointInfo, CheckpointStore, math_differences
from rlsys.config import JobConfig
from rlsys.console import console
from rlsys.data import load_task
from rlsys.errors import ConfigError, Interrupted, PoolError, StorageError, TrackingError
from rlsys.loop import RLLoop, RunSummary
from rlsys.models import check_tool_calls, job_chat_template, load_tokenizer, resolve_model
from rlsys.rlhf.watch import check_reward_model_base
from rlsys.submit import SUBMISSION_ID_ENV
from rlsys.tracking import Tracker, read_run, use_store


def run(config: JobConfig, *, resume: str | None = None) -> RunSummary:
    """Run a whole job: pools up, eval, `train.steps` RL steps, eval, save; everything logged to MLflow.

    `resume`: continue from a checkpoint: of run `resume`, or of the job's most recent run when "".
    """
    stop_on_sigterm()
    store = CheckpointStore(config.train.output_dir, config.name)
    store.check_writable()
    use_store(config.tracking)  # a resume reads the checkpoint's run from it
    checkpoint = (
        checkpoint_to_resume(
            store, resume, config.flat(), JobConfig().flat(), retry_timeout_s=config.tracking.retry_timeout_s
        )
        if resume is not None
        else None
    )
    model_path = resolve_model(config.model)
    template = job_chat_template(config.model)
    tokenizer = load_tokenizer(model_path, template)  # a model without a chat template fails here
    check_tool_calls(tokenizer, config.rollout)  # and one that cannot call tools, not in an engine
    task = load_task(config.task, config.verifier)
    if config.reward_model is not None:
        check_reward_model_base(config.reward_model.path, model_path)
    local = os.environ.get("RAY_ADDRESS") is None
    run_name = config.tracking.run_name or config.name
    loop = None
    try:
        # MLflow first: a tracking server that does not answer fails the job before Ray starts.
        with Tracker(
            config.tracking, run_name=run_name, run_id=checkpoint.run_id if checkpoint else None
        ) as tracker:
            connect()
            stop_on_sigterm()  # again: connecting installs Ray's own handler, which aborts the driver
            if checkpoint is None:
                tracker.log_params({"model.resolved_path": model_path})
            if os.environ.get(SUBMISSION_ID_ENV):  # submitted with `rlsys submit`: `rlsys status ID` finds it
                tracker.set_tags({"rlsys.submission_id": os.environ[SUBMISSION_ID_ENV]})
            console.log(f"MLflow run {tracker.run_id}; starting pools")
            pools, seconds = start_pools(config, model_path, template)
            console.log(f"pools started in {seconds:.1f}s")
            loop = RLLoop(config, pools, tracker, store, task, base_model=model_path)
            return loop.run(checkpoint)
    except KeyboardInterrupt:
        if loop is None:
            raise interrupted(store, None, 0, "rlsys run") from None
        raise interrupted(store, loop.tracker.run_id, loop.last_step, "rlsys run") from None
    except (PoolError, StorageError, TrackingError) as err:
        if loop is None:  # nothing trained yet: the message says it all
            raise
        raise type(err)(
            f"{err}; stopped {progress(store, loop.tracker.run_id, loop.last_step, 'rlsys run')}"
        ) from None
    finally:
        if local:  # the local runtime and every actor of this job go with the driver
            ray.shutdown()


def stop_on_sigterm() -> None:
    """SIGTERM (`kill`, a stopped Ray job) unwinds like Ctrl-C: the MLflow run is marked killed, the local Ray
    runtime shuts down with its actors, and the message says where to resume from."""
    signal.signal(signal.SIGTERM, _raise_interrupt)


def _raise_interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def checkpoint_to_resume(
    store: CheckpointStore,
    run_id: str,
    current: dict[str, object],
    defaults: dict[str, object],
    *,
    retry_timeout_s: float = 300.0,
) -> CheckpointInfo:
    """The checkpoint a resume continues (of run `run_id`, or the job's most recent run when ""), once it is
    shown to be whole, unchanged, and of the same math: `current` (the flat config) against the params of the
    run that made it (a key that run did not have counts only when set away from its `defaults` value)."""
    checkpoint = store.latest(run_id or None)
    if checkpoint is None:
        where = f"run {run_id}" if run_id else f"any run under {store.job_dir}"
        raise ConfigError(f"nothing to resume: no complete checkpoint of {where} (run without --resume)")
    digest = store.verify(checkpoint)
    params, tags = read_run(checkpoint.run_id, retry_timeout_s)
    recorded = tags.get(f"rlsys.checkpoint.{checkpoint.tag}.sha256")
    if recorded is not None and recorded != digest:
        raise ConfigError(
            f"checkpoint {checkpoint.path} is not the one run {checkpoint.run_id} recorded (its manifest "
            f"changed): resume from another run, or start a new one"
        )
    differences = math_differences(params, current, defaults)
    if differences:
        raise ConfigError(
            f"the config differs from the one run {checkpoint.run_id} was checkpointed with, in keys that "
            f"change what it computes:\n  " + "\n  ".join(differences) + "\nresume with the same values, "
            "or start a new run (drop --resume)"
        )
    return checkpoint


def interrupted(store: CheckpointStore, run_id: str | None, last_step: int, command: str) -> Interrupted:
    """What an interrupted run says: how far it got, its last complete checkpoint, how to resume (`command`,
    e.g. `rlsys run`). `run_id` None: it was interrupted while starting."""
    if run_id is None:
        return Interrupted("interrupted while starting; nothing was trained")
    return Interrupted(f"interrupted {progress(store, run_id, last_step, command)}")


def progress(store: CheckpointStore, run_id: str, last_step: int, command: str) -> str:
    """Where a stopped run got to: the last step done, the last complete checkpoint, how to resume
    (`command`, e.g. `rlsys run`)."""
    checkpoint = store.latest(run_id)
    if checkpoint is None:
        return f"after step {last_step}; no checkpoint yet ({store.run_dir(run_id)})"
    return (
        f"after step {last_step}; the last complete checkpoint is step {checkpoint.step} "
        f"({store.run_dir(run_id)}); resume with `{command} <job> --resume {run_id}`"
    )
