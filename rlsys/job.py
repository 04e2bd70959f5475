"""An RL job end to end: the model resolved, the data checked, Ray pools started, an MLflow run, the loop
run over them.

    rlsys run jobs/quickstart.yaml train.steps=20                 # locally (a Ray runtime of its own)
    ray job submit --address http://HEAD:8265 --working-dir . -- rlsys run jobs/quickstart.yaml

The driver holds no model: rollout engines (vLLM), verifiers, reward-model scorers and learner ranks
(DeepSpeed) are Ray actor pools, each sized and placed by its own section of the job config. Everything a
user can get wrong (the config, the data, a model without a chat template) is checked before any actor
starts. With `resume`, the job continues its newest checkpoint in the same MLflow run.
"""

from actors.cluster import connect, start_pools
from rlsys.checkpoint import CheckpointStore
from rlsys.config import JobConfig
from rlsys.console import console
from rlsys.data import load_task
from rlsys.errors import ConfigError
from rlsys.loop import RLLoop, RunSummary
from rlsys.models import job_chat_template, load_tokenizer, resolve_model
from rlsys.rlhf.watch import check_reward_model_base
from rlsys.tracking import Tracker


def run(config: JobConfig, *, resume: bool = False) -> RunSummary:
    """Run a whole job: pools up, eval, `train.steps` RL steps, eval, save; everything logged to MLflow."""
    store = CheckpointStore(config.train.output_dir, config.name)
    checkpoint = store.latest() if resume else None
    if resume and checkpoint is None:
        raise ConfigError(f"nothing to resume: no checkpoint under {store.job_dir} (run without --resume)")
    model_path = resolve_model(config.model)
    template = job_chat_template(config.model)
    load_tokenizer(model_path, template)  # a model without a chat template fails here, not in an engine
    task = load_task(config.task, config.verifier)
    if config.reward_model is not None:
        check_reward_model_base(config.reward_model.path, model_path)
    connect()
    run_name = config.tracking.run_name or config.name
    with Tracker(
        config.tracking, run_name=run_name, run_id=checkpoint.run_id if checkpoint else None
    ) as tracker:
        if checkpoint is None:
            tracker.log_params({"model.resolved_path": model_path})
        console.log(f"MLflow run {tracker.run_id}; starting pools")
        pools, seconds = start_pools(config, model_path, template)
        console.log(f"pools started in {seconds:.1f}s")
        return RLLoop(config, pools, tracker, store, task).run(checkpoint)
