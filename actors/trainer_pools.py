"""The SFT and reward-model trainer pools: DeepSpeed ranks (`actors.deepspeed_engine.DeepSpeedRank`) in one
process group, started and placed like the policy's learner pool (`actors.pools.RayLearnerPool`):
`learner.replicas` ranks, each with its `num_cpus` / `num_gpus` / `resources`. Ranks are not restarted: a
lost rank's optimizer state is gone, so the job fails and resumes from its last checkpoint.
"""

from collections.abc import Sequence
from typing import Any

import ray
from ray.exceptions import GetTimeoutError, RayError, RayTaskError

from actors.dispatch import actor_failure
from actors.pools import _actor_options
from actors.reward_trainer import RewardModelRank
from actors.sft import SFTRank
from rlsys.batch import balanced_shards
from rlsys.config import PoolConfig
from rlsys.errors import PoolError, RlsysError
from rlsys.rlhf.config import RMLearnerConfig
from rlsys.rlhf.losses import loss_denominator
from rlsys.rlhf.reward_model import EncodedRanking, heldout_metrics, ranking_micro_batches
from rlsys.sft.config import SFTLearnerConfig
from rlsys.sft.packing import plan_micro_batches
from rlsys.sft.tokens import Example


class RayTrainerPool:
    """`config.replicas` trainer ranks in one process group, with the verbs every trainer shares: set-up,
    checkpoints and the Hugging Face save. Every call waits at most `call_timeout_s` (the rendezvous:
    `start_timeout_s`); a rank that fails or overruns fails the job, to resume from its last checkpoint."""

    noun = "rank"

    def __init__(self, rank_class: type, config: PoolConfig, zero_stage: int, *args, **kwargs) -> None:
        """`config.replicas` actors of `rank_class(*args, rank=r, world_size=replicas, **kwargs)`, placed by
        `config`; their set-up (`DeepSpeedRank.setup`) starts at once."""
        cls = ray.remote(rank_class).options(**_actor_options(config, restartable=False))
        world = config.replicas
        self.actors = [cls.remote(*args, rank=rank, world_size=world, **kwargs) for rank in range(world)]
        self.pool_config, self.zero_stage = config, zero_stage
        [(master_addr, master_port)] = self._get(
            [self.actors[0].rendezvous_address.remote()], "to start", config.start_timeout_s
        )
        self._setup = [actor.setup.remote(master_addr, master_port) for actor in self.actors]

    def ready_refs(self) -> list[ray.ObjectRef]:
        """The ranks' set-up calls: they return once every rank has joined and built its engine."""
        return list(self._setup)

    def shutdown(self) -> None:
        for actor in self.actors:
            ray.kill(actor)

    def _get(self, refs: list[ray.ObjectRef], doing: str, timeout_s: float | None = None) -> list:
        """The results of `refs` (one call per rank), or a `PoolError` naming what failed or overran."""
        key = "start_timeout_s" if timeout_s is not None else "call_timeout_s"
        timeout_s = timeout_s if timeout_s is not None else self.pool_config.call_timeout_s
        try:
            return ray.get(refs, timeout=timeout_s)
        except GetTimeoutError:
            raise PoolError(
                f"learner pool: a rank did not finish {doing} within learner.{key} ({timeout_s:g}s); raise "
                "it if the step is that slow, else resume from the last checkpoint (--resume)"
            ) from None
        except RayTaskError as err:
            if isinstance(err.cause, RlsysError):
                raise err.cause from None
            raise PoolError(actor_failure("learner", "a rank", doing, err)) from None
        except RayError as err:
            raise PoolError(actor_failure("learner", "a rank", doing, err)) from None

    def _on_each_rank(self, method: str, parts: Sequence, *args: Any, doing: str) -> list:
        """`method(part, *args)` on every rank at once, each with its own part of the work; the results in
        rank order."""
        return self._get(
            [
                getattr(actor, method).remote(part, *args)
                for actor, part in zip(self.actors, parts, strict=True)
            ],
            doing,
        )

    def _shares(self, items: Sequence, costs: Sequence[int]) -> tuple[list[list], int]:
        """Each rank's items (balanced by `costs`, their tokens) and the forward passes of the busiest rank,
        which every rank runs (ZeRO's collectives run in each)."""
        parts = [[items[i] for i in part] for part in balanced_shards(costs, len(self.actors))]
        return parts, max(self._forwards(part) for part in parts)

    def _forwards(self, part: list) -> int:
        """The forward passes one rank's part of the work takes (`_shares`: every rank runs the most)."""
        raise NotImplementedError

    def _savers(self) -> list:
        """The ranks a save calls: all under ZeRO-3 (gathering the shards is collective), else rank 0."""
        return self.actors if self.zero_stage == 3 else self.actors[:1]

    def save_checkpoint(self, directory: str, tag: str, loop_state: dict) -> None:
        self._get([a.save_checkpoint.remote(directory, tag, loop_state) for a in self.actors], "a checkpoint")

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        return self._get(
            [a.load_checkpoint.remote(directory, tag) for a in self.actors], "a checkpoint load"
        )[0]

    def save_pretrained(self, directory: str) -> None:
        self._get([a.save_pretrained.remote(directory) for a in self._savers()], "the model save")


def _summed(results: list[dict[str, float]]) -> dict[str, float]:
    """The ranks' shares of each metric, added up."""
    return {key: sum(result[key] for result in results) for key in results[0]}


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

    def _forwards(self, part: list[Example]) -> int:
        return len(
            plan_micro_batches(
                [len(e) for e in part],
                packing=self.packing,
                max_tokens=self.max_tokens,
                max_rows=self.config.micro_batch_size,
                max_batch_tokens=self.config.max_tokens_per_micro_batch,
            )
        )

    def train_step(self, examples: Sequence[Example]) -> dict[str, float]:
        """One optimizer step over `examples`: `loss` is the step's mean over reply tokens, `tokens` their
        count, `real_tokens` all tokens trained through (padding excluded)."""
        num_tokens = sum(e.trained_tokens for e in examples)
        parts, passes = self._shares(examples, [len(e) for e in examples])
        return _summed(self._on_each_rank("train_step", parts, num_tokens, passes, doing="a training step"))

    def evaluate(self, examples: Sequence[Example]) -> float:
        """The mean loss over the reply tokens of `examples`."""
        parts, passes = self._shares(examples, [len(e) for e in examples])
        totals = _summed(self._on_each_rank("evaluate", parts, passes, doing="an evaluation"))
        return totals["loss_sum"] / totals["tokens"]


class RayRewardModelPool(RayTrainerPool):
    """Reward-model ranks: a step's rankings are split across them by tokens, one optimizer step per call."""

    def __init__(self, model_path: str, config: RMLearnerConfig, *, loss: str, dtype: str, seed: int) -> None:
        super().__init__(
            RewardModelRank, config, config.zero_stage, model_path, config, loss=loss, dtype=dtype, seed=seed
        )
        self.config, self.loss = config, loss

    def _forwards(self, part: list[EncodedRanking]) -> int:
        return len(
            ranking_micro_batches(part, self.config.micro_batch_size, self.config.max_tokens_per_micro_batch)
        )

    def _ranking_shares(self, rankings: Sequence[EncodedRanking]) -> tuple[list[list[EncodedRanking]], int]:
        """`_shares`, balanced by the tokens of every response of a ranking."""
        return self._shares(rankings, [sum(len(seq) for seq in ranking.sequences) for ranking in rankings])

    def train_step(self, rankings: Sequence[EncodedRanking]) -> dict[str, float]:
        """One optimizer step over `rankings`: the step's `loss`, and `pair_accuracy` and `margin` over its
        `pairs` (every strictly ordered pair), as one rank computing the whole batch reports them."""
        denominator = loss_denominator(self.loss, [ranking.ranks for ranking in rankings])
        parts, passes = self._ranking_shares(rankings)
        totals = _summed(
            self._on_each_rank("train_step", parts, denominator, passes, doing="a training step")
        )
        pairs = totals["pairs"]
        return {
            "loss": totals["loss"],
            "pair_accuracy": totals["right_pairs"] / pairs if pairs else 0.0,
            "margin": totals["margin_sum"] / pairs if pairs else 0.0,
            "pairs": pairs,
            "grad_norm": totals["grad_norm"],
            "lr": totals["lr"],
        }

    def evaluate(self, rankings: Sequence[EncodedRanking]) -> dict[str, float]:
        """Loss, pair metrics and where the scores lie over all of `rankings` (`heldout_metrics`): each rank
        scores its share, the metrics are computed over every score at once."""
        parts, passes = self._ranking_shares(rankings)
        scores = self._on_each_rank("score", parts, passes, doing="an evaluation")
        ranks = [ranking.ranks for part in parts for ranking in part]
        return heldout_metrics(self.loss, [row for rank_scores in scores for row in rank_scores], ranks)

    def save_reward_model(self, directory: str, info: dict) -> None:
        """The trained model as a Hugging Face directory with `info` beside it (`save_reward_model`)."""
        self._get([a.save_reward_model.remote(directory, info) for a in self._savers()], "the model save")
