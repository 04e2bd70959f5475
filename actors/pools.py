"""Ray pools: replicas of the rollout engine, the verifier, the reward-model scorer and the learner rank, each
scaled and placed on its own, behind the verbs of `rlsys.protocols`.

A crashed rollout, verifier or reward-model actor is restarted by Ray (`max_restarts`) and the work it held
is dispatched again (to the restarted actor or a sibling), so a rollout completes with every sample or
fails loudly with `PoolError`. Learner ranks are not restarted: a lost rank loses optimizer state, so the
job fails and resumes from its last checkpoint.
"""

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count

import ray
from ray.exceptions import RayActorError

from actors.learner import LearnerRank
from actors.reward import RewardModelScorer
from actors.rollout import RolloutEngine
from actors.tools import TOOL_GROUP, VerifierTools
from rlsys.autoscale import ScalingRule, target_replicas
from rlsys.batch import response_token_count, shard
from rlsys.config import (
    AlgorithmConfig,
    LearnerConfig,
    PoolConfig,
    RewardModelConfig,
    RolloutConfig,
    VerifierConfig,
)
from rlsys.errors import PoolError
from rlsys.protocols import Chunk
from rlsys.rewards import Verifier
from rlsys.tools import ToolLimits
from rlsys.types import Prompt, Reward, Sample, Sampling, TrainSequence


def _actor_options(pool: PoolConfig, *, restartable: bool) -> dict:
    return {
        "num_cpus": pool.num_cpus,
        "num_gpus": pool.num_gpus,
        "resources": dict(pool.resources),
        "max_restarts": pool.max_restarts if restartable else 0,
        "max_task_retries": 0,  # re-dispatch is ours: a restarted rollout engine needs weights first
    }


def _bounds(total: int, parts: int) -> list[tuple[int, int]]:
    """[start, end) of at most `parts` contiguous, nearly equal, non-empty slices of `total` items."""
    parts = max(1, min(parts, total))
    size, extra = divmod(total, parts)
    bounds, start = [], 0
    for i in range(parts):
        end = start + size + (1 if i < extra else 0)
        bounds.append((start, end))
        start = end
    return bounds


@dataclass
class _Task:
    index: int  # position in the caller's list of work; kept by re-dispatched copies
    method: str
    args: tuple
    actor_index: int
    attempt: int
    ref: ray.ObjectRef


class _ActorPool:
    """Round-robin dispatch over actors, with re-dispatch of work lost to a dead actor."""

    max_attempts = 3

    def __init__(self, name: str, actors: list) -> None:
        self.name = name
        self.actors = actors
        self._next = count()
        self.retried_tasks = 0

    def submit(
        self, index: int, method: str, *args, actor_index: int | None = None, attempt: int = 0
    ) -> _Task:
        actor_index = next(self._next) % len(self.actors) if actor_index is None else actor_index
        self._prepare(actor_index)
        ref = getattr(self.actors[actor_index], method).remote(*args)
        return _Task(index, method, args, actor_index, attempt, ref)

    def _prepare(self, actor_index: int) -> None:
        """Hook: queue what an actor needs before new work (Ray runs one actor's calls in order)."""

    def _lost(self, actor_index: int) -> None:
        """Hook: an actor died; Ray restarts it with only its constructor's state."""

    def as_completed(self, tasks: list[_Task]) -> Iterator[tuple[int, object]]:
        """Yield (task index, result) as results arrive; a task whose actor died runs again elsewhere."""
        pending = {task.ref: task for task in tasks}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            task = pending.pop(ready[0])
            try:
                result = ray.get(task.ref)
            except RayActorError as err:
                if task.attempt + 1 >= self.max_attempts:
                    raise PoolError(
                        f"{self.name} pool: {task.method} failed {self.max_attempts} times: {err}"
                    ) from err
                self.retried_tasks += 1
                self._lost(task.actor_index)
                actor_index = (task.actor_index + 1) % len(self.actors)
                retry = self.submit(
                    task.index, task.method, *task.args, actor_index=actor_index, attempt=task.attempt + 1
                )
                pending[retry.ref] = retry
                continue
            yield task.index, result

    def gather(self, tasks: list[_Task]) -> list:
        """Every task's result, in index order."""
        results = dict(self.as_completed(tasks))
        return [results[i] for i in sorted(results)]

    def ready_refs(self) -> list[ray.ObjectRef]:
        """One call per actor that returns once its constructor has finished (the start-up check)."""
        return [actor.ready.remote() for actor in self.actors]

    def size(self) -> int:
        return len(self.actors)

    def metrics(self) -> dict[str, float]:
        return {f"pool/{self.name}_replicas": self.size(), "pool/retried_tasks": self.retried_tasks}


class _PendingScores:
    """Scoring calls under way (`rlsys.protocols.Pending`): the parts of one batch, joined in order."""

    def __init__(self, pool: _ActorPool, tasks: list[_Task]) -> None:
        self.pool, self.tasks = pool, tasks

    def done(self) -> bool:
        refs = [task.ref for task in self.tasks]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        return len(ready) == len(refs)

    def result(self) -> list[Reward]:
        return [reward for part in self.pool.gather(self.tasks) for reward in part]


class RayRolloutPool(_ActorPool):
    """vLLM engines; each holds the whole policy and serves a contiguous share of the prompts. With
    `rollout.max_tool_calls`, the responses' tool calls run on `tools`, the verifier pool."""

    def __init__(
        self,
        model_path: str,
        config: RolloutConfig,
        *,
        dtype: str,
        seed: int,
        chat_template: str | None = None,
        tools: "RayVerifierPool | None" = None,
    ) -> None:
        cls = ray.remote(RolloutEngine).options(**_actor_options(config, restartable=True))
        threads = config.engine_threads or max(1, int(config.num_cpus))
        uses_tools = config.max_tool_calls > 0
        if uses_tools and tools is None:
            raise ValueError("rollouts with tool calls need the verifier pool to run them")
        engines = [
            cls.remote(
                model_path,
                seed=seed + replica,
                dtype=dtype,
                kv_cache_gib=config.kv_cache_gib,
                gpu_memory_utilization=config.gpu_memory_utilization,
                threads=threads,
                chat_template=chat_template,
                tool_tokens=(config.tool_call_start, config.tool_call_end) if uses_tools else None,
                # Calls queue behind each other on the verifiers' tool threads; the sandbox ends each one by
                # its own limit, so this deadline is reached only when a verifier stops answering.
                tool_deadline_s=120 + 20 * config.tool_timeout_s,
            )
            for replica in range(config.replicas)
        ]
        super().__init__("rollout", engines)
        self.tools = tools
        self.tool_limits = ToolLimits(config.tool_timeout_s, config.tool_memory_mb, config.tool_output_chars)
        self.weights: ray.ObjectRef | None = None
        self.policy_version = 0
        self._stale: set[int] = set()

    def generate(
        self, prompts: Sequence[Prompt], sampling: Sampling, seeds: Sequence[int | None]
    ) -> Iterator[Chunk]:
        """One contiguous chunk of prompts per engine, sent at once; each chunk's groups as soon as its engine
        is done. Tool calls go to the verifier actors of the moment (the pool may have grown or shrunk)."""
        bounds = _bounds(len(prompts), self.size())
        tools = VerifierTools(self.tools.actors, self.tool_limits) if sampling.max_tool_calls else None
        tasks = [
            self.submit(i, "generate", list(prompts[start:end]), sampling, list(seeds[start:end]), tools)
            for i, (start, end) in enumerate(bounds)
        ]
        return (
            [(bounds[index][0] + k, group) for k, group in enumerate(groups)]
            for index, groups in self.as_completed(tasks)
        )

    def sync_weights(self, weights: ray.ObjectRef, version: int) -> None:
        """Every engine loads `weights` (an object ref: fetched once per node, not through the driver).

        An engine that died meanwhile takes them when it is next given work.
        """
        self.weights, self.policy_version = weights, version
        refs = [actor.sync_weights.remote(weights, version) for actor in self.actors]
        for actor_index, ref in enumerate(refs):
            try:
                ray.get(ref)
            except RayActorError:
                self._lost(actor_index)

    def autoscale(self, wait_s: float, generate_s: float) -> None:
        """Fixed size (elastic rollout pools are future work)."""

    def _lost(self, actor_index: int) -> None:
        # A restarted engine comes back with the initial weights: it must take the latest before new work.
        self._stale.add(actor_index)

    def _prepare(self, actor_index: int) -> None:
        if actor_index in self._stale and self.weights is not None:
            self.actors[actor_index].sync_weights.remote(self.weights, self.policy_version)
        self._stale.discard(actor_index)


class RayVerifierPool(_ActorPool):
    """Reward functions (`rlsys.rewards.Verifier`); cheap to restart, so re-dispatch needs no preparation.
    Grows with its backlog up to `max_replicas`. Each actor also runs rollouts' tool calls, up to
    `tool_threads` at once in a concurrency group of their own (`actors.tools`), beside its scoring."""

    def __init__(self, config: VerifierConfig) -> None:
        remote = ray.remote(concurrency_groups={TOOL_GROUP: config.tool_threads})
        cls = remote(Verifier).options(**_actor_options(config, restartable=True))
        self._spawn = lambda: cls.remote(config)
        super().__init__("verifier", [self._spawn() for _ in range(config.replicas)])
        self.rule = ScalingRule(config.replicas, config.max_replicas or config.replicas)
        self.idle_streak = 0

    def score(self, prompts: Sequence[Prompt], samples: Sequence[Sample]) -> _PendingScores:
        """The batch spread over the verifiers, one contiguous part each."""
        texts = [sample.text for sample in samples]
        tasks = [
            self.submit(i, "score", list(prompts[start:end]), texts[start:end])
            for i, (start, end) in enumerate(_bounds(len(samples), self.size()))
        ]
        return _PendingScores(self, tasks)

    def autoscale(self, wait_s: float, generate_s: float) -> None:
        """Between steps: add a replica while scoring delays steps, drop one after a spell of idleness."""
        self.idle_streak = self.idle_streak + 1 if wait_s < self.rule.idle_below_s else 0
        target = target_replicas(self.rule, self.size(), wait_s, generate_s, self.idle_streak)
        if target == self.size():
            return
        if target > self.size():
            self.actors.append(self._spawn())
        else:
            ray.kill(self.actors.pop())  # between steps it holds no work
        self.idle_streak = 0  # judge the new size on its own steps


class RayRewardPool(_ActorPool):
    """Reward-model scorers: each holds the whole (small) reward model and scores a share of the samples.

    Like verifiers they keep no state between calls, so a restarted actor needs no preparation. A sample's
    Reward is `weight * score`, with the score itself as the component `config.name`.
    """

    def __init__(self, config: RewardModelConfig, *, dtype: str) -> None:
        cls = ray.remote(RewardModelScorer).options(**_actor_options(config, restartable=True))
        threads = config.threads or max(1, int(config.num_cpus))
        scorers = [
            cls.remote(
                config.path,
                name=config.name,
                weight=config.weight,
                batch_size=config.batch_size,
                threads=threads,
                dtype=dtype,
            )
            for _ in range(config.replicas)
        ]
        super().__init__("reward", scorers)

    def score(self, prompts: Sequence[Prompt], samples: Sequence[Sample]) -> _PendingScores:
        """The batch spread over the scorers, one contiguous part each."""
        chats = [list(prompt.messages) for prompt in prompts]
        texts = [sample.text for sample in samples]
        tasks = [
            self.submit(i, "rewards", chats[start:end], texts[start:end])
            for i, (start, end) in enumerate(_bounds(len(samples), self.size()))
        ]
        return _PendingScores(self, tasks)

    def autoscale(self, wait_s: float, generate_s: float) -> None:
        """Fixed size (elastic reward pools are future work)."""


class RayLearnerPool:
    """DeepSpeed ranks in one process group; a batch is sharded across them, one optimizer step per call."""

    def __init__(
        self, model_path: str, config: LearnerConfig, algorithm: AlgorithmConfig, *, dtype: str, seed: int
    ) -> None:
        cls = ray.remote(LearnerRank).options(**_actor_options(config, restartable=False))
        world = config.replicas
        self.actors = [
            cls.remote(model_path, config, algorithm, rank=rank, world_size=world, dtype=dtype, seed=seed)
            for rank in range(world)
        ]
        self.zero_stage = config.zero_stage
        self.algorithm = algorithm
        master_addr, master_port = ray.get(self.actors[0].rendezvous_address.remote())
        self._setup = [actor.setup.remote(master_addr, master_port) for actor in self.actors]

    def ready_refs(self) -> list[ray.ObjectRef]:
        """The ranks' set-up calls: they return once every rank has joined and built its engine."""
        return list(self._setup)

    def train_step(
        self, sequences: Sequence[TrainSequence], *, kl_coef: float, off_policy: bool
    ) -> dict[str, float]:
        """One optimizer step over all sequences; metrics are global per-token means.

        `kl_coef` is this step's KL weight; `off_policy`: the samples came from older weights than the
        learner's (see `LearnerRank.train_step`).
        """
        num_tokens = response_token_count(sequences)
        parts = shard(sequences, len(self.actors))
        results = ray.get(
            [
                actor.train_step.remote(part, num_tokens, kl_coef=kl_coef, off_policy=off_policy)
                for actor, part in zip(self.actors, parts, strict=True)
            ]
        )
        return {key: sum(r[key] for r in results) for key in results[0]}

    def weights(self) -> ray.ObjectRef:
        """An object ref to the full weights (rank 0's `PackedWeights`), for the rollout engines to fetch."""
        if self.zero_stage == 3:  # gathering ZeRO-3 shards is collective: every rank takes part
            refs = [actor.packed_weights.remote() for actor in self.actors]
            ray.wait(refs, num_returns=len(refs))
            return refs[0]
        return self.actors[0].packed_weights.remote()

    def save_checkpoint(self, directory: str, tag: str, loop_state: dict) -> None:
        ray.get([a.save_checkpoint.remote(directory, tag, loop_state) for a in self.actors])

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        return ray.get([a.load_checkpoint.remote(directory, tag) for a in self.actors])[0]

    def save_pretrained(self, directory: str) -> None:
        if self.zero_stage == 3:
            ray.get([a.save_pretrained.remote(directory) for a in self.actors])
        else:
            ray.get(self.actors[0].save_pretrained.remote(directory))
