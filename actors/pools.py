"""Ray pools: replicas of the rollout, verifier, reward-model and learner classes, each scaled and placed on
its own.

The learner loop talks to pools through coarse verbs (`generate`, `score`, `train_step`, `sync_weights`).
A crashed rollout, verifier or reward-model actor is restarted by Ray (`max_restarts`) and the work it
held is dispatched again (to the restarted actor or a sibling), so a step completes with every sample or
fails loudly with `PoolError`. Learner ranks are not restarted: a lost rank loses optimizer state, so the
job fails and resumes from its last checkpoint.
"""

import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import count

import ray
from ray.exceptions import RayActorError

from actors.learner import Learner
from actors.reward import RewardModelScorer
from actors.rollout import RolloutEngine, SamplingSettings
from actors.verifier import Verifier
from rlsys.autoscale import ScalingRule, target_replicas
from rlsys.batch import TrainSequence, response_token_count, shard
from rlsys.config import (
    AlgorithmConfig,
    LearnerConfig,
    PoolConfig,
    RewardModelConfig,
    RolloutConfig,
    VerifierConfig,
)
from rlsys.errors import PoolError
from rlsys.rlhf.combine import add_component
from rlsys.types import Prompt, Reward, Sample


def _actor_options(pool: PoolConfig, *, restartable: bool) -> dict:
    return {
        "num_cpus": pool.num_cpus,
        "num_gpus": pool.num_gpus,
        "resources": dict(pool.resources),
        "max_restarts": pool.max_restarts if restartable else 0,
        "max_task_retries": 0,  # re-dispatch is ours: a restarted rollout engine needs weights first
    }


def _chunks(items: Sequence, parts: int) -> list[list]:
    """Split into at most `parts` contiguous, nearly equal, non-empty chunks."""
    parts = max(1, min(parts, len(items)))
    size, extra = divmod(len(items), parts)
    bounds = [0]
    for i in range(parts):
        bounds.append(bounds[-1] + size + (1 if i < extra else 0))
    return [list(items[bounds[i] : bounds[i + 1]]) for i in range(parts)]


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

    def __init__(self, actors: list) -> None:
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
                    raise PoolError(f"{task.method} failed {self.max_attempts} times: {err}") from err
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

    def size(self) -> int:
        return len(self.actors)


class RolloutPool(_ActorPool):
    """vLLM engines; each holds the whole policy and serves a share of the prompts."""

    def __init__(self, model_path: str, config: RolloutConfig, *, dtype: str, seed: int) -> None:
        cls = ray.remote(RolloutEngine).options(**_actor_options(config, restartable=True))
        threads = config.engine_threads or max(1, int(config.num_cpus))
        super().__init__(
            [
                cls.remote(
                    model_path,
                    seed=seed + replica,
                    dtype=dtype,
                    kv_cache_gib=config.kv_cache_gib,
                    gpu_memory_utilization=config.gpu_memory_utilization,
                    threads=threads,
                )
                for replica in range(config.replicas)
            ]
        )
        self.weights: ray.ObjectRef | None = None
        self.policy_version = 0
        self._stale: set[int] = set()

    def submit_generate(
        self, prompts: Sequence[Prompt], settings: SamplingSettings, seeds: Sequence[int | None]
    ) -> list[_Task]:
        """Split the prompts over the engines, one contiguous chunk each."""
        chunks = zip(_chunks(prompts, self.size()), _chunks(seeds, self.size()), strict=True)
        return [self.submit(i, "generate", ps, settings, ss) for i, (ps, ss) in enumerate(chunks)]

    def generate(
        self, prompts: Sequence[Prompt], settings: SamplingSettings, seeds: Sequence[int | None]
    ) -> list[list[Sample]]:
        """`settings.n` samples of each prompt, one group per prompt, in prompt order."""
        return [
            group for chunk in self.gather(self.submit_generate(prompts, settings, seeds)) for group in chunk
        ]

    def sync_weights(self, weights: ray.ObjectRef, policy_version: int) -> None:
        """Every engine loads `weights` (an object ref: fetched once per node, not through the driver).

        An engine that died meanwhile takes them when it is next given work.
        """
        self.weights, self.policy_version = weights, policy_version
        refs = [actor.sync_weights.remote(weights, policy_version) for actor in self.actors]
        for actor_index, ref in enumerate(refs):
            try:
                ray.get(ref)
            except RayActorError:
                self._lost(actor_index)

    def _lost(self, actor_index: int) -> None:
        # A restarted engine comes back with the initial weights: it must take the latest before new work.
        self._stale.add(actor_index)

    def _prepare(self, actor_index: int) -> None:
        if actor_index in self._stale and self.weights is not None:
            self.actors[actor_index].sync_weights.remote(self.weights, self.policy_version)
        self._stale.discard(actor_index)


class VerifierPool(_ActorPool):
    """Reward scoring; cheap to restart, so re-dispatch needs no preparation. Grows with its backlog."""

    def __init__(self, config: VerifierConfig) -> None:
        cls = ray.remote(Verifier).options(**_actor_options(config, restartable=True))
        self._spawn = lambda: cls.remote(config.rewards, config.timeout_s)
        super().__init__([self._spawn() for _ in range(config.replicas)])
        self.rule = ScalingRule(config.replicas, config.max_replicas or config.replicas)
        self.idle_streak = 0

    def submit_score(self, index: int, responses: Sequence[str], golds: Sequence[str]) -> _Task:
        return self.submit(index, "score", list(responses), list(golds))

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


class RewardPool(_ActorPool):
    """Reward-model scorers: each holds the whole (small) reward model and scores a share of the samples.

    Like verifiers they keep no state between calls, so a restarted actor needs no preparation.
    """

    def __init__(self, config: RewardModelConfig, *, dtype: str) -> None:
        cls = ray.remote(RewardModelScorer).options(**_actor_options(config, restartable=True))
        threads = config.threads or max(1, int(config.num_cpus))
        super().__init__(
            [
                cls.remote(config.path, batch_size=config.batch_size, threads=threads, dtype=dtype)
                for _ in range(config.replicas)
            ]
        )
        self.name, self.weight = config.name, config.weight

    def submit_score(
        self, index: int, prompts: Sequence[Sequence[dict[str, str]]], responses: Sequence[str]
    ) -> _Task:
        return self.submit(index, "score", [list(p) for p in prompts], list(responses))

    def score(self, prompts: Sequence[Sequence[dict[str, str]]], responses: Sequence[str]) -> list[float]:
        """One score per (prompt messages, response), in order; the batch is spread over the scorers."""
        parts = zip(_chunks(prompts, self.size()), _chunks(responses, self.size()), strict=True)
        tasks = [self.submit_score(i, ps, rs) for i, (ps, rs) in enumerate(parts)]
        return [value for part in self.gather(tasks) for value in part]


class LearnerPool:
    """DeepSpeed ranks in one process group; a batch is sharded across them, one optimizer step per call."""

    def __init__(
        self, model_path: str, config: LearnerConfig, algorithm: AlgorithmConfig, *, dtype: str, seed: int
    ) -> None:
        cls = ray.remote(Learner).options(**_actor_options(config, restartable=False))
        world = config.replicas
        self.actors = [
            cls.remote(model_path, config, algorithm, rank=rank, world_size=world, dtype=dtype, seed=seed)
            for rank in range(world)
        ]
        self.zero_stage = config.zero_stage
        master_addr, master_port = ray.get(self.actors[0].rendezvous_address.remote())
        ray.get([actor.setup.remote(master_addr, master_port) for actor in self.actors])

    def train_step(
        self, sequences: Sequence[TrainSequence], kl_coef: float | None = None, off_policy: bool = False
    ) -> dict[str, float]:
        """One optimizer step over all sequences; metrics are global per-token means.

        `kl_coef` is this step's KL weight (an adaptive beta); None: the configured `algorithm.kl_coef`.
        `off_policy`: the samples came from older weights than the learner's (see `Learner.train_step`).
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

    def save_checkpoint(self, directory: str, tag: str, client_state: dict) -> None:
        ray.get([a.save_checkpoint.remote(directory, tag, client_state) for a in self.actors])

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        return ray.get([a.load_checkpoint.remote(directory, tag) for a in self.actors])[0]

    def save_pretrained(self, directory: str) -> None:
        if self.zero_stage == 3:
            ray.get([a.save_pretrained.remote(directory) for a in self.actors])
        else:
            ray.get(self.actors[0].save_pretrained.remote(directory))


@dataclass(frozen=True)
class ScoredRollout:
    """Groups of samples and their rewards, in prompt order, with where the time went."""

    groups: list[list[Sample]]
    rewards: list[list[Reward]]
    generate_s: float  # until the last engine finished
    verify_wait_s: float  # scoring that did not overlap generation: what scoring added to the step
    verify_backlog: int  # verifier tasks still queued or running when generation finished


def generate_and_score(
    rollout: RolloutPool,
    verifier: VerifierPool,
    prompts: Sequence[Prompt],
    settings: SamplingSettings,
    seeds: Sequence[int | None],
    reward: RewardPool | None = None,
) -> ScoredRollout:
    """Sample groups for the prompts and score them, streaming: each engine's chunk is spread over the
    verifiers (and the reward-model scorers) as soon as it is done, while the other engines still generate.

    With a reward pool, each sample's Reward gains the reward model's score as the component
    `reward.name`, added to the total with `reward.weight`."""
    start = time.perf_counter()
    prompt_of = {p.id: p for p in prompts}
    chunks: dict[int, list[list[Sample]]] = {}
    verified: list[Sample] = []  # in the order the verifier tasks cover them
    modelled: list[Sample] = []  # in the order the reward-model tasks cover them
    verify_tasks, model_tasks = [], []
    for index, groups in rollout.as_completed(rollout.submit_generate(prompts, settings, seeds)):
        chunks[index] = groups
        samples = [s for group in groups for s in group]
        for part in _chunks(samples, verifier.size()):
            verified.extend(part)
            texts, golds = [s.text for s in part], [prompt_of[s.prompt_id].gold for s in part]
            verify_tasks.append(verifier.submit_score(len(verify_tasks), texts, golds))
        if reward is None:
            continue
        for part in _chunks(samples, reward.size()):
            modelled.extend(part)
            chats = [prompt_of[s.prompt_id].messages for s in part]
            model_tasks.append(reward.submit_score(len(model_tasks), chats, [s.text for s in part]))
    generated = time.perf_counter()
    _, backlog = ray.wait([t.ref for t in verify_tasks], num_returns=len(verify_tasks), timeout=0)
    flat_rewards = [r for part in verifier.gather(verify_tasks) for r in part]
    reward_of = dict(zip(map(id, verified), flat_rewards, strict=True))
    if reward is not None:
        scores = [value for part in reward.gather(model_tasks) for value in part]
        combined = add_component(
            [reward_of[id(s)] for s in modelled], scores, name=reward.name, weight=reward.weight
        )
        reward_of = dict(zip(map(id, modelled), combined, strict=True))
    groups_out = [group for index in sorted(chunks) for group in chunks[index]]
    return ScoredRollout(
        groups=groups_out,
        rewards=[[reward_of[id(s)] for s in group] for group in groups_out],
        generate_s=generated - start,
        verify_wait_s=time.perf_counter() - generated,
        verify_backlog=len(backlog),
    )
