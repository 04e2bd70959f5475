"""Connecting to Ray and starting a job's pools on it.

`start_pools` builds every pool a job config asks for and waits until each actor has started (models loaded,
engines warmed up), so the first step does not pay for start-up. Pools that reserve more than the cluster
has are pointed out first: Ray queues an actor that fits nowhere until a node with room joins, which without
an autoscaler is never.
"""

import os
import time

import ray

from actors.pools import RayLearnerPool, RayRewardPool, RayRolloutPool, RayVerifierPool
from rlsys.config import JobConfig
from rlsys.console import actor_runtime_env, note
from rlsys.protocols import Pools


def connect() -> None:
    """Join the cluster in RAY_ADDRESS (set inside a submitted job), or start a local Ray runtime."""
    if ray.is_initialized():
        return
    address = os.environ.get("RAY_ADDRESS")
    runtime_env = actor_runtime_env()
    if address is None:
        # The job's own modules (reward functions) import from where it runs; a submitted job's working
        # dir is on its actors' path already.
        paths = [os.getcwd(), os.environ.get("PYTHONPATH", "")]
        runtime_env["env_vars"]["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
    ray.init(address=address, runtime_env=runtime_env, logging_level="WARNING")


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


def start_pools(config: JobConfig, model_path: str, chat_template: str | None = None) -> tuple[Pools, float]:
    """Every pool of the job, started; and the seconds the actors took to start. `chat_template`: the
    job's template for a model without one (`rlsys.models.job_chat_template`)."""
    for line in resource_shortfall(config, ray.cluster_resources()):
        note(
            f"{line}. The actors that do not fit wait for the autoscaler to add a node; "
            "on a fixed cluster or locally, lower those pools' replicas or num_cpus/num_gpus"
        )
    start = time.perf_counter()
    dtype = config.model.dtype
    verifier = RayVerifierPool(config.verifier)
    pools = Pools(
        rollout=RayRolloutPool(
            model_path,
            config.rollout,
            dtype=dtype,
            seed=config.seed,
            chat_template=chat_template,
            tools=verifier,  # runs the rollouts' tool calls
        ),
        verifier=verifier,
        learner=RayLearnerPool(model_path, config.learner, config.algorithm, dtype=dtype, seed=config.seed),
        reward_model=RayRewardPool(config.reward_model, dtype=dtype) if config.reward_model else None,
    )
    ray.get([ref for pool in (pools.rollout, *pools.scorers(), pools.learner) for ref in pool.ready_refs()])
    return pools, time.perf_counter() - start
