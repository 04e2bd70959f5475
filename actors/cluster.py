"""Connecting to Ray and starting a job's pools on it.

`start_pools` builds every pool a job config asks for and waits until each actor has started (models loaded,
engines warmed up), so the first step does not pay for start-up. Pools that reserve more than the cluster
has are pointed out first: Ray queues an actor that fits nowhere until a node with room joins, which without
an autoscaler is never; so each pool's start has a deadline (`start_timeout_s`). An actor that cannot start
ends the job with one line (`PoolError`): the pool, the actor, the library's reason and where the full log
is; the actors already started are stopped.

Joining a cluster has a deadline too: `ray.init` retries a head that is down or frozen without end, so the
head is first asked for a gRPC handshake, for at most `$RLSYS_RAY_CONNECT_TIMEOUT_S` seconds (default 60).
"""

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

import grpc
import ray
from ray.exceptions import RayError, RayTaskError

from actors.dispatch import actor_failure
from actors.pools import RayCriticPool, RayLearnerPool, RayRewardPool, RayRolloutPool, RayVerifierPool
from rlsys.config import JobConfig, PoolConfig
from rlsys.console import actor_runtime_env, note
from rlsys.errors import ClusterError, PoolError, RlsysError
from rlsys.protocols import Pools


class HasPools(Protocol):
    """A job config that names its actor pools (RL, SFT, reward-model and probe jobs)."""

    def pools(self) -> dict[str, PoolConfig]: ...


CONNECT_TIMEOUT_ENV = "RLSYS_RAY_CONNECT_TIMEOUT_S"
DEFAULT_CONNECT_TIMEOUT_S = 60.0


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
    else:
        check_head_answers(address, connect_timeout_s())
    ray.init(address=address, runtime_env=runtime_env, logging_level="WARNING")


def connect_timeout_s() -> float:
    """The deadline for joining a cluster: `$RLSYS_RAY_CONNECT_TIMEOUT_S`, else 60 s."""
    value = os.environ.get(CONNECT_TIMEOUT_ENV, str(DEFAULT_CONNECT_TIMEOUT_S))
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not seconds > 0:
        raise ClusterError(f"{CONNECT_TIMEOUT_ENV}={value!r}: give the seconds to wait for the head, e.g. 60")
    return seconds


def check_head_answers(address: str, timeout_s: float) -> None:
    """Raise `ClusterError` unless the Ray head at `address` (`host:port`, or `ray://host:port` for Ray
    Client) completes a gRPC handshake within `timeout_s`: a closed port, an unreachable host and a frozen
    head (its port open, nobody answering) all fail it. `auto` and TLS clusters are left to Ray."""
    target = address.removeprefix("ray://")
    if ":" not in target or os.environ.get("RAY_USE_TLS", "0").lower() in {"1", "true"}:
        return
    channel = grpc.insecure_channel(target)
    try:
        grpc.channel_ready_future(channel).result(timeout=timeout_s)
    except grpc.FutureTimeoutError:
        raise ClusterError(
            f"the Ray cluster at {address} (RAY_ADDRESS) did not answer within {timeout_s:g} s: "
            "start its head (`ray start --head`), fix RAY_ADDRESS, or unset it to run on a local Ray "
            f"runtime (the wait is ${CONNECT_TIMEOUT_ENV})"
        ) from None
    finally:
        channel.close()


@contextmanager
def session() -> Iterator[None]:
    """A driver's Ray connection: the cluster in RAY_ADDRESS, or a local runtime that goes down with every
    actor of the job when the block ends (one this process had already started stays up)."""
    local = os.environ.get("RAY_ADDRESS") is None and not ray.is_initialized()
    connect()
    try:
        yield
    finally:
        if local:
            ray.shutdown()


def resource_shortfall(config: HasPools, cluster: dict[str, float]) -> list[str]:
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


def _note_shortfall(config: HasPools) -> None:
    for line in resource_shortfall(config, ray.cluster_resources()):
        note(
            f"{line}. The actors that do not fit wait for the autoscaler to add a node; "
            "on a fixed cluster or locally, lower those pools' replicas or num_cpus/num_gpus"
        )


def start_named_pools(
    config: HasPools, builders: dict[str, Callable[[], object]]
) -> tuple[dict[str, object], float]:
    """The pools `builders` make (by name, each a section of `config.pools()`), each started within its
    `start_timeout_s`, and the seconds they took: for the jobs that are not RL runs (SFT, probe). A pool that
    cannot start stops the others (`await_started`)."""
    _note_shortfall(config)
    start = time.perf_counter()
    sections = config.pools()
    started: dict = {}
    try:
        for name, build in builders.items():
            started[name] = build()
        await_started(started, {name: sections[name].start_timeout_s for name in started})
    except RlsysError:
        for pool in started.values():
            pool.shutdown()
        raise
    return started, time.perf_counter() - start


def start_pools(config: JobConfig, model_path: str, chat_template: str | None = None) -> tuple[Pools, float]:
    """Every pool of the job, started; and the seconds the actors took to start. `chat_template`: the
    job's template for a model without one (`rlsys.models.job_chat_template`)."""
    _note_shortfall(config)
    start = time.perf_counter()
    dtype = config.model.dtype
    started: dict = {}
    # The verifier pool first: the rollout pool sends its tool calls there.
    builders = {
        "verifier": lambda: RayVerifierPool(config.verifier, runs_tools=config.rollout.max_tool_calls > 0),
        "rollout": lambda: RayRolloutPool(
            model_path,
            config.rollout,
            dtype=dtype,
            seed=config.seed,
            chat_template=chat_template,
            tools=started["verifier"],  # runs the rollouts' tool calls
        ),
        "learner": lambda: RayLearnerPool(
            model_path, config.learner, config.algorithm, dtype=dtype, seed=config.seed
        ),
    }
    if config.critic is not None:
        builders["critic"] = lambda: RayCriticPool(
            model_path, config.critic, value_clip=config.algorithm.value_clip, dtype=dtype, seed=config.seed
        )
    if config.reward_model is not None:
        builders["reward"] = lambda: RayRewardPool(config.reward_model, dtype=dtype)
    try:
        for name, build in builders.items():
            started[name] = build()
        await_started(started, {name: getattr(config, _SECTION[name]).start_timeout_s for name in started})
    except RlsysError:
        for pool in started.values():
            pool.shutdown()
        raise
    pools = Pools(
        rollout=started["rollout"],
        verifier=started["verifier"],
        learner=started["learner"],
        reward_model=started.get("reward"),
        critic=started.get("critic"),
    )
    return pools, time.perf_counter() - start


def await_started(pools: dict, timeouts_s: dict[str, float]) -> None:
    """Wait for every actor of `pools` (by name) to start, each pool within its own deadline from now.

    Fails at the first actor that cannot start, or when a pool overruns its deadline, with a `PoolError` of
    one line naming the pool, the actor and the reason.
    """
    start = time.monotonic()
    pending = {
        ref: (name, number) for name, pool in pools.items() for number, ref in enumerate(pool.ready_refs())
    }
    while pending:
        deadline = min(start + timeouts_s[name] for name, _ in pending.values())
        ready, _ = ray.wait(list(pending), num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
        if not ready:
            name, number = min(pending.values(), key=lambda item: timeouts_s[item[0]])
            raise PoolError(
                f"{name} pool: {_actor(pools[name], number)} did not start within "
                f"{_SECTION.get(name, name)}.start_timeout_s "
                f"({timeouts_s[name]:g}s); if the cluster has no room for it, lower the pool's replicas or "
                "num_cpus/num_gpus, else raise the deadline"
            )
        name, number = pending.pop(ready[0])
        try:
            ray.get(ready[0], timeout=timeouts_s[name])
        except RayTaskError as err:
            if isinstance(err.cause, RlsysError):  # the user's to fix (say, a model SFT cannot pack): say so
                raise err.cause from None
            raise PoolError(actor_failure(name, _actor(pools[name], number), "to start", err)) from None
        except RayError as err:
            raise PoolError(actor_failure(name, _actor(pools[name], number), "to start", err)) from None


def _actor(pool, number: int) -> str:
    return f"{pool.noun} {number}"


# The config section of each pool.
_SECTION = {
    "rollout": "rollout",
    "verifier": "verifier",
    "learner": "learner",
    "critic": "critic",
    "reward": "reward_model",
}
