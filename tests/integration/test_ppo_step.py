"""PPO on the real pools and the tiny model: the loop runs two steps with a critic on DeepSpeed ranks of its
own, logs a finite value loss to MLflow, checkpoints the critic with the run, and a fresh critic restored
from that checkpoint values a batch exactly as the trained one did, then trains on."""

import math
from pathlib import Path

import mlflow
import pytest

from actors.cluster import start_pools
from actors.pools import RayCriticPool
from rlsys.checkpoint import CheckpointStore
from rlsys.config import load_job
from rlsys.loop import RLLoop
from rlsys.protocols import Pools
from rlsys.tracking import Tracker
from rlsys.types import TrainSequence

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PROBE = [
    TrainSequence((5, 6, 7), tuple(range(30, 30 + n)), 0.0, (-2.5,) * n) for n in (4, 6, 3)
]  # fmt: skip


def test_a_ppo_step_trains_the_critic_and_a_resume_restores_it(
    tiny_model_dir, ray_runtime, mlflow_store, tmp_path
):
    ray = ray_runtime
    ranks = ["num_cpus=0.25", "torch_threads=1", "micro_batch_size=16"]
    config = load_job(
        ROOT / "jobs" / "quickstart.yaml",
        [
            "algorithm.name=ppo",
            f"model.path={tiny_model_dir}",
            f"train.output_dir={tmp_path / 'runs'}",
            "train.steps=2",
            "train.checkpoint_every=2",
            "train.prompts_per_step=4",
            "train.eval_samples=1",
            "task.eval_size=4",
            "task.train_size=100",
            "rollout.samples_per_prompt=2",
            "rollout.max_new_tokens=12",
            "rollout.kv_cache_gib=0.05",
            "rollout.replicas=1",
            "rollout.num_cpus=0.5",
            "verifier.num_cpus=0.25",
            # The hidden preference tells any two answers apart, so the returns vary (the tiny model is
            # rarely right) and the critic has something to explain.
            "verifier.rewards={math: 1.0, hidden_preference: 0.1}",
            "tracking.registered_model=null",
            *(f"learner.{key}" for key in ranks),
            *(f"critic.{key}" for key in [*ranks, "lr=1e-3"]),
        ],
    )
    pools, _ = start_pools(config, str(tiny_model_dir))
    fresh = RayCriticPool(str(tiny_model_dir), config.critic, value_clip=0.2, dtype="float32", seed=1)
    store = CheckpointStore(config.train.output_dir, config.name)
    try:
        ray.get(fresh.ready_refs())
        with Tracker(config.tracking, run_name="ppo") as tracker:
            RLLoop(config, pools, tracker, store).run()
        client = mlflow.tracking.MlflowClient()
        for key in ("critic/value_loss", "critic/explained_variance", "train/policy_loss"):
            history = client.get_metric_history(tracker.run_id, key)
            assert sorted(m.step for m in history) == [1, 2], key
            assert all(math.isfinite(m.value) for m in history), key

        checkpoint = store.latest(tracker.run_id)
        assert checkpoint.step == 2 and (checkpoint.path / "critic").is_dir()
        trained = pools.critic.values(PROBE)
        assert [len(v) for v in trained] == [4, 6, 3]
        assert fresh.values(PROBE) != trained  # another seed's value head

        # The same run resumed on a fresh critic: the checkpoint's values, and the next step trains.
        config = config.model_copy(update={"train": config.train.model_copy(update={"steps": 3})})
        resumed = Pools(pools.rollout, pools.verifier, pools.learner, critic=fresh)
        with Tracker(config.tracking, run_name="ppo", run_id=tracker.run_id) as tracker:
            loop = RLLoop(config, resumed, tracker, store)
            assert loop.restore(checkpoint) == 2
            assert fresh.values(PROBE) == trained
            ((step, metrics),) = list(loop.train_steps(3, 3))
        assert step == 3 and math.isfinite(metrics["critic/value_loss"])
    finally:
        for pool in (pools.rollout, pools.verifier, pools.learner, pools.critic, fresh):
            pool.shutdown()
