"""Ray pools: replicas of the rollout engine, the verifier, the reward-model scorer, the learner rank and the
critic rank, each scaled and placed on its own, behind the verbs of `rlsys.protocols`.

Every call has a deadline from the pool's config (`call_timeout_s`, `start_timeout_s`). A rollout, verifier or
reward-model actor that crashes or overruns is restarted (killed first, if it overran) and the work it held is
dispatched again (`actors.dispatch`), so a rollout completes with every sample or fails loudly with
`PoolError`. A restarted engine is re-synced to the current weights, and the re-sync checked, before it
serves; every sample is checked to come from the weights the pool last synced. Learner and critic ranks are
not restarted: a lost or late rank loses optimizer state, so the step fails naming the rank and the job
resumes from its last checkpoint.

The rollout, verifier and reward-model pools are elastic (`actors.elastic`): between `replicas` and
`max_replicas`, on the backlog each measures. A new engine serves from the weight sync after its start, with
that sync's weights, checked like the others'.
"""

import time
from collections.abc import Iterator, Sequence
from typing import Any

import ray

from actors.critic import CriticRank
from actors.dispatch import ACTOR_LOST, OBJECT_LOST, ActorPool, Call, Slot, Task, actor_failure
from actors.elastic import ElasticPool
from actors.learner import LearnerRank
from actors.reward import RewardModelScorer
from actors.rollout import RolloutEngine, StaleWeightsError
from actors.tools import TOOL_GROUP, VerifierTools
from actors.weights import WeightCheck
from rlsys.batch import plan_micro_batches, response_token_count
from rlsys.config import (
    AlgorithmConfig,
    LearnerConfig,
    PoolConfig,
    RanksConfig,
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


class _PendingScores:
    """Scoring calls under way (`rlsys.protocols.Pending`): the parts of one batch, joined in order."""

    def __init__(self, pool: ActorPool, tasks: list[Task]) -> None:
        self.pool, self.tasks = pool, tasks

    def done(self) -> bool:
        refs = [task.call.ref for task in self.tasks]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        return len(ready) == len(refs)

    def result(self) -> list[Reward]:
        return [reward for part in self.pool.gather(self.tasks) for reward in part]


class RayRolloutPool(ElasticPool):
    """vLLM engines; each holds the whole policy and serves a contiguous share of the prompts. Grows up to
    `max_replicas` while generation outlasts the learner's work; a new engine serves from the first weight
    sync after its start, with the weights of that sync. With `rollout.max_tool_calls`, the responses' tool
    calls run on `tools`, the verifier pool."""

    noun = "engine"

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

        def spawn(number: int):
            return cls.remote(
                model_path,
                seed=seed + number,
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

        self.tools = tools
        self.tool_limits = ToolLimits(config.tool_timeout_s, config.tool_memory_mb, config.tool_output_chars)
        self.weights: ray.ObjectRef | None = None
        self.policy_version = 0  # every engine's initial weights are version 0
        self._checks: list[tuple[int, WeightCheck]] = []  # (engine, check) verified since the last sync
        super().__init__("rollout", config, spawn)

    def generate(
        self, prompts: Sequence[Prompt], sampling: Sampling, seeds: Sequence[int | None]
    ) -> Iterator[Chunk]:
        """One contiguous chunk of prompts per engine, sent at once; each chunk's groups as soon as its engine
        is done. Every sample is from the weights of `policy_version` (the last synced), or this fails. Tool
        calls go to the verifier actors of the moment (the pool may have grown or shrunk)."""
        bounds = _bounds(len(prompts), self.size())
        tools = VerifierTools(self.tools.actors, self.tool_limits) if sampling.max_tool_calls else None
        tasks = [
            self.submit(
                i,
                "generate",
                list(prompts[start:end]),
                sampling,
                list(seeds[start:end]),
                self.policy_version,
                tools,
            )
            for i, (start, end) in enumerate(bounds)
        ]
        return (
            [(bounds[index][0] + k, group) for k, group in enumerate(groups)]
            for index, groups in self.as_completed(tasks)
        )

    def sync_weights(self, weights: ray.ObjectRef, version: int) -> dict[str, float]:
        """Every engine loads `weights` (an object ref: fetched once per node, not through the driver) and
        proves it by the fingerprint of what it then serves; a mismatch fails with `PoolError`.

        An engine lost during the sync is restarted and re-synced before it serves again (checked then).
        Engines the pool grew by that have started join here, and are synced and checked like the others.
        Returns `sync/verified` (the share of engines whose new weights were verified now: 1.0 unless one was
        lost) and `sync/fingerprint_s` (the slowest engine's fingerprint of its served weights).
        """
        self.weights, self.policy_version = weights, version
        self._admit()
        for slot in list(self.slots):
            self._observe(slot)
        if not self.slots:
            raise PoolError("rollout pool: no engine left to take the new weights")
        self._checks = []
        syncs = {slot: self._sync(slot, self.config.call_timeout_s) for slot in self.slots}
        while waiting := [slot for slot, call in syncs.items() if slot in self.slots and call in slot.calls]:
            ray.wait(
                [slot.calls[0].ref for slot in waiting],
                num_returns=1,
                timeout=self._until(min(slot.deadline() for slot in waiting)),
            )
            self._enforce(set(waiting))
        verified = [check for _, check in self._checks if check.version == version]
        engines = {number for number, check in self._checks if check.version == version}
        return {
            "sync/verified": len(engines) / len(syncs),
            "sync/fingerprint_s": max((check.fingerprint_s for check in verified), default=0.0),
        }

    def _sync(self, slot: Slot, timeout_s: float) -> Call:
        ref = slot.actor.sync_weights.remote(self.weights, self.policy_version)
        return self._enqueue(slot, ref, "sync_weights", timeout_s, "call_timeout_s", probe=True)

    def _recovery_call(self, slot: Slot) -> tuple[ray.ObjectRef, str, float]:
        # A restarted engine comes back with its initial weights: it takes the current ones first.
        if self.weights is None:
            return super()._recovery_call(slot)
        ref = slot.actor.sync_weights.remote(self.weights, self.policy_version)
        return ref, "sync_weights", self.config.start_timeout_s + self.config.call_timeout_s

    def _after_start(self, slot: Slot) -> None:
        if self.weights is not None:
            self._sync(slot, self.config.call_timeout_s)

    def _probe_passed(self, slot: Slot, call: Call, result: Any) -> None:
        if call.method != "sync_weights":
            return
        problem = result.problem()
        if problem is not None:
            raise PoolError(
                f"rollout pool: engine {slot.number}, after the weight sync to policy version "
                f"{result.version}: {problem}"
            )
        self._checks.append((slot.number, result))

    def _recoverable(self, task: Task, err: Exception) -> bool:
        if isinstance(err, StaleWeightsError):  # restarted unseen, with its initial weights: re-sync it
            if not task.slot.recovering():
                self._recover(task.slot)
            return True
        return super()._recoverable(task, err)

    def _accept(self, task: Task, result: Any) -> Any:
        expected = task.args[3]  # generate(prompts, sampling, seeds, policy_version, tools)
        versions = {sample.policy_version for group in result for sample in group}
        if versions - {expected}:
            raise PoolError(
                f"rollout pool: engine {task.slot.number} returned samples of policy version(s) "
                f"{sorted(versions)}, expected {expected}: its weights are not the ones last synced"
            )
        return result


class RayVerifierPool(ElasticPool):
    """Reward functions (`rlsys.rewards.Verifier`); cheap to restart, so re-dispatch needs no preparation.
    Grows up to `max_replicas` while scoring trails generation. With `runs_tools` (rollouts may call tools),
    each actor also runs rollouts' tool calls, up to `tool_threads` at once in a concurrency group of their
    own (`actors.tools`), beside its scoring; without, the actors are the plain single-threaded kind."""

    noun = "verifier"

    def __init__(self, config: VerifierConfig, runs_tools: bool = False) -> None:
        remote = (
            ray.remote(concurrency_groups={TOOL_GROUP: config.tool_threads}) if runs_tools else ray.remote
        )
        cls = remote(Verifier).options(**_actor_options(config, restartable=True))
        spawn = lambda number: cls.remote(config)  # noqa: E731
        super().__init__("verifier", config, spawn)

    def score(self, prompts: Sequence[Prompt], samples: Sequence[Sample]) -> _PendingScores:
        """The batch spread over the verifiers, one contiguous part each."""
        self._admit()
        texts = [sample.text for sample in samples]
        tasks = [
            self.submit(i, "score", list(prompts[start:end]), texts[start:end])
            for i, (start, end) in enumerate(_bounds(len(samples), self.size()))
        ]
        return _PendingScores(self, tasks)


class RayRewardPool(ElasticPool):
    """Reward-model scorers: each holds the whole (small) reward model and scores a share of the samples.

    Like verifiers they keep no state between calls, so a restarted actor needs no preparation. A sample's
    Reward is `weight * score`, with the score itself as the component `config.name`. Grows up to
    `max_replicas` while scoring trails generation.
    """

    noun = "scorer"
    section = "reward_model"

    def __init__(self, config: RewardModelConfig, *, dtype: str) -> None:
        cls = ray.remote(RewardModelScorer).options(**_actor_options(config, restartable=True))
        threads = config.threads or max(1, int(config.num_cpus))

        def spawn(number: int):
            return cls.remote(
                config.path,
                name=config.name,
                weight=config.weight,
                batch_size=config.batch_size,
                threads=threads,
                dtype=dtype,
            )

        super().__init__("reward", config, spawn)

    def score(self, prompts: Sequence[Prompt], samples: Sequence[Sample]) -> _PendingScores:
        """The batch spread over the scorers, one contiguous part each."""
        self._admit()
        chats = [list(prompt.messages) for prompt in prompts]
        texts = [sample.text for sample in samples]
        tasks = [
            self.submit(i, "rewards", chats[start:end], texts[start:end])
            for i, (start, end) in enumerate(_bounds(len(samples), self.size()))
        ]
        return _PendingScores(self, tasks)


class _RankPool:
    """DeepSpeed ranks in one process group (`actors.deepspeed_engine.DeepSpeedRank`), named by their config
    section (`learner`, `critic`) in every error.

    Every call waits at most `<section>.call_timeout_s` (start-up: `start_timeout_s`). A rank that is lost or
    late fails the call with `PoolError` naming it; late ranks are stopped. Ranks are never restarted or
    retried: a rank's optimizer state dies with it, so the job resumes from its last checkpoint.
    """

    noun = "rank"

    def __init__(self, section: str, pool: RanksConfig, actor_class: type, **arguments: Any) -> None:
        """`arguments`: the rank class's own, besides `rank` and `world_size`."""
        cls = ray.remote(actor_class).options(**_actor_options(pool, restartable=False))
        world = pool.replicas
        self.section = section
        self.actors = [cls.remote(rank=rank, world_size=world, **arguments) for rank in range(world)]
        self.config = pool
        self.zero_stage = pool.zero_stage
        rendezvous = self.actors[0].rendezvous_address.remote()
        [(master_addr, master_port)] = self._get([rendezvous], "to start", [0], key="start_timeout_s")
        self._setup = [actor.setup.remote(master_addr, master_port) for actor in self.actors]

    def ready_refs(self) -> list[ray.ObjectRef]:
        """The ranks' set-up calls: they return once every rank has joined and built its engine."""
        return list(self._setup)

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)

    def _plans(self, sequences: Sequence[TrainSequence]) -> list[list[list[TrainSequence]]]:
        config = self.config
        return plan_micro_batches(
            sequences, len(self.actors), config.micro_batch_size, config.max_tokens_per_micro_batch
        )

    def save_checkpoint(self, directory: str, tag: str, loop_state: dict) -> None:
        self._get([a.save_checkpoint.remote(directory, tag, loop_state) for a in self.actors], "a checkpoint")

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        refs = [a.load_checkpoint.remote(directory, tag) for a in self.actors]
        return self._get(refs, "loading a checkpoint")[0]

    def _get(
        self,
        refs: list[ray.ObjectRef],
        doing: str,
        ranks: list[int] | None = None,
        *,
        key: str = "call_timeout_s",
    ) -> list:
        """Each rank's result (`refs[i]` is rank `ranks[i]`'s call), within the deadline `<section>.<key>`."""
        ranks = list(range(len(refs))) if ranks is None else ranks
        timeout_s = getattr(self.config, key)
        deadline = time.monotonic() + timeout_s
        pending = dict(zip(refs, ranks, strict=True))
        results = {}
        section = self.section
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=max(0.0, deadline - time.monotonic()))
            if not ready:
                late = sorted(pending.values())
                for rank in late:
                    ray.kill(self.actors[rank])
                which = f"rank {late[0]}" if len(late) == 1 else f"ranks {', '.join(map(str, late))}"
                raise PoolError(
                    f"{section} pool: {which} did not finish {doing} within {section}.{key} ({timeout_s:g}s) "
                    f"and {'was' if len(late) == 1 else 'were'} stopped; {section} ranks are not restarted: "
                    "resume the job from its last checkpoint"
                )
            rank = pending.pop(ready[0])
            try:
                results[rank] = ray.get(ready[0], timeout=timeout_s)
            except (*ACTOR_LOST, *OBJECT_LOST) as err:
                resume = f"; {section} ranks are not restarted: resume the job from its last checkpoint"
                message = actor_failure(section, f"rank {rank}", doing, err)
                raise PoolError(message + (resume if key == "call_timeout_s" else "")) from err
        return [results[rank] for rank in ranks]


class RayLearnerPool(_RankPool):
    """The policy's DeepSpeed ranks (`actors.learner.LearnerRank`); a batch is sharded across them, one
    optimizer step per call."""

    def __init__(
        self, model_path: str, config: LearnerConfig, algorithm: AlgorithmConfig, *, dtype: str, seed: int
    ) -> None:
        self.algorithm = algorithm
        self.fingerprint: dict[str, str] = {}  # of the weights last packed for the engines
        super().__init__(
            "learner",
            config,
            LearnerRank,
            model_path=model_path,
            config=config,
            algorithm=algorithm,
            dtype=dtype,
            seed=seed,
        )

    def train_step(self, sequences: Sequence[TrainSequence], *, kl_coef: float) -> dict[str, float]:
        """One optimizer step over all sequences, each rank given the same number of micro-batches
        (`plan_micro_batches`); metrics are global per-token means, `stale_is_weight` the mean importance
        weight of the stale tokens. `kl_coef` is this step's KL weight."""
        plans = self._plans(sequences)
        num_tokens = response_token_count(sequences)
        results = self._get(
            [
                actor.train_step.remote(plan, num_tokens, kl_coef=kl_coef)
                for actor, plan in zip(self.actors, plans, strict=True)
            ],
            "a training step",
        )
        metrics = {key: sum(r[key] for r in results) for key in results[0]}
        # Summed per token over all tokens; the mean over the stale ones is what a reader wants.
        metrics["stale_is_weight"] /= max(metrics["stale_share"], 1e-12)
        return metrics

    def weights(self) -> ray.ObjectRef:
        """An object ref to the full weights (rank 0's `PackedWeights`), for the rollout engines to fetch.

        Waits until they are packed, reading only their fingerprint (kept in `fingerprint`), so a late or lost
        rank fails here, named, rather than in the engines that would fetch its weights.
        """
        ranks = list(range(len(self.actors))) if self.zero_stage == 3 else [0]  # ZeRO-3 gathers collectively
        pairs = [self.actors[rank].packed_weights.options(num_returns=2).remote() for rank in ranks]
        self.fingerprint = self._get([prints for _, prints in pairs], "packing the weights", ranks)[0]
        return pairs[0][0]

    def save_pretrained(self, directory: str) -> None:
        if self.zero_stage == 3:
            self._get([a.save_pretrained.remote(directory) for a in self.actors], "saving the policy")
        else:
            self._get([self.actors[0].save_pretrained.remote(directory)], "saving the policy", [0])


class RayCriticPool(_RankPool):
    """PPO's value model on DeepSpeed ranks of its own (`actors.critic.CriticRank`), sized and placed by the
    job's critic section; a batch is sharded across them like the learner's."""

    def __init__(
        self, model_path: str, config: RanksConfig, *, value_clip: float | None, dtype: str, seed: int
    ) -> None:
        super().__init__(
            "critic",
            config,
            CriticRank,
            model_path=model_path,
            config=config,
            value_clip=value_clip,
            dtype=dtype,
            seed=seed,
        )

    def values(self, sequences: Sequence[TrainSequence]) -> list[tuple[float, ...]]:
        """The critic's value at every response token of each sequence, in order."""
        plans = self._plans(sequences)
        results = self._get(
            [actor.values.remote(plan) for actor, plan in zip(self.actors, plans, strict=True)],
            "computing values",
        )
        # The plans hold the very sequence objects given (padding rows are copies, not among them).
        by_sequence = {
            id(seq): values
            for plan, result in zip(plans, results, strict=True)
            for chunk, chunk_values in zip(plan, result, strict=True)
            for seq, values in zip(chunk, chunk_values, strict=True)
            if not seq.padding
        }
        return [by_sequence[id(seq)] for seq in sequences]

    def train_step(self, sequences: Sequence[TrainSequence]) -> dict[str, float]:
        """One optimizer step of the value loss over all sequences (each carrying its returns and values);
        metrics are global per-token means, summed over the ranks."""
        plans = self._plans(sequences)
        num_tokens = response_token_count(sequences)
        results = self._get(
            [
                actor.train_step.remote(plan, num_tokens)
                for actor, plan in zip(self.actors, plans, strict=True)
            ],
            "a critic step",
        )
        return {key: sum(r[key] for r in results) for key in results[0]}
