"""The SFT trainer pool: DeepSpeed ranks (`actors.rank.TrainerRank`) in one process group, started and placed
like the policy's learner pool (`actors.pools.RayLearnerPool`): `learner.replicas` ranks, each with its
`num_cpus` / `num_gpus` / `resources`. Ranks are not restarted: a lost rank's optimizer state is gone, so the
job fails and resumes from its last checkpoint.
"""

from collections.abc import Sequence

import ray

from actors.pools import _actor_options
from actors.sft import SFTRank
from rlsys.batch import balanced_shards
from rlsys.config import PoolConfig
from rlsys.sft.config import SFTLearnerConfig
from rlsys.sft.packing import plan_micro_batches
from rlsys.sft.tokens import Example


class RayTrainerPool:
    """`config.replicas` trainer ranks in one process group, with the verbs every trainer shares: set-up,
    checkpoints and the Hugging Face save."""

    def __init__(self, rank_class: type, config: PoolConfig, zero_stage: int, *args, **kwargs) -> None:
        """`config.replicas` actors of `rank_class(*args, rank=r, world_size=replicas, **kwargs)`, placed by
        `config`; their set-up (`TrainerRank.setup`) starts at once."""
        cls = ray.remote(rank_class).options(**_actor_options(config, restartable=False))
        world = config.replicas
        self.actors = [cls.remote(*args, rank=rank, world_size=world, **kwargs) for rank in range(world)]
        self.zero_stage = zero_stage
        master_addr, master_port = ray.get(self.actors[0].rendezvous_address.remote())
        self._setup = [actor.setup.remote(master_addr, master_port) for actor in self.actors]

    def ready_refs(self) -> list[ray.ObjectRef]:
        """The ranks' set-up calls: they return once every rank has joined and built its engine."""
        return list(self._setup)

    def save_checkpoint(self, directory: str, tag: str, loop_state: dict) -> None:
        ray.get([a.save_checkpoint.remote(directory, tag, loop_state) for a in self.actors])

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        return ray.get([a.load_checkpoint.remote(directory, tag) for a in self.actors])[0]

    def save_pretrained(self, directory: str) -> None:
        if self.zero_stage == 3:
            ray.get([a.save_pretrained.remote(directory) for a in self.actors])
        else:
            ray.get(self.actors[0].save_pretrained.remote(directory))


class RaySFTPool(RayTrainerPool):
    """SFT ranks: a step's examples are split across them by tokens, one optimizer step per call."""

    def __init__(
        self,
        model_path: str,
        config: SFTLearnerConfig,
        *,
        total_steps: int,
        packing: bool,
        max_tokens: int,
        dtype: str,
        seed: int,
        chat_template: str | None = None,
    ) -> None:
        super().__init__(
            SFTRank,
            config,
            config.zero_stage,
            model_path,
            config,
            total_steps=total_steps,
            packing=packing,
            max_tokens=max_tokens,
            dtype=dtype,
            seed=seed,
            chat_template=chat_template,
        )
        self.config, self.packing, self.max_tokens = config, packing, max_tokens

    def _shares(self, examples: Sequence[Example]) -> tuple[list[list[Example]], int]:
        """Each rank's examples (balanced by tokens) and the forward passes of the busiest rank, which every
        rank runs (ZeRO's collectives run in each)."""
        parts = [
            [examples[i] for i in part]
            for part in balanced_shards([len(e) for e in examples], len(self.actors))
        ]
        passes = max(
            len(
                plan_micro_batches(
                    [len(e) for e in part],
                    packing=self.packing,
                    max_tokens=self.max_tokens,
                    max_rows=self.config.micro_batch_size,
                    max_batch_tokens=self.config.max_tokens_per_micro_batch,
                )
            )
            for part in parts
        )
        return parts, passes

    def train_step(self, examples: Sequence[Example]) -> dict[str, float]:
        """One optimizer step over `examples`: `loss` is the step's mean over reply tokens, `tokens` their
        count, `real_tokens` all tokens trained through (padding excluded)."""
        num_tokens = sum(e.trained_tokens for e in examples)
        parts, passes = self._shares(examples)
        results = ray.get(
            [
                actor.train_step.remote(part, num_tokens, passes)
                for actor, part in zip(self.actors, parts, strict=True)
            ]
        )
        return {key: sum(r[key] for r in results) for key in results[0]}

    def evaluate(self, examples: Sequence[Example]) -> float:
        """The mean loss over the reply tokens of `examples`."""
        parts, passes = self._shares(examples)
        results = ray.get(
            [actor.evaluate.remote(part, passes) for actor, part in zip(self.actors, parts, strict=True)]
        )
        return sum(r["loss_sum"] for r in results) / sum(r["tokens"] for r in results)
