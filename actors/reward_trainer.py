"""A reward-model rank: one DeepSpeed rank training the scalar-head model (`rlsys.rlhf.reward_model`) with a
ranking loss (`rlsys.rlhf.losses`).

`RewardModelRank` is a plain class (a `DeepSpeedRank`, as the learner's, the critic's and SFT's ranks are);
`actors.trainer_pools.RayRewardModelPool` runs the ranks as Ray actors and splits each step's rankings among
them. Every rank divides its loss by the whole step's count (ordered pairs, or rankings: `loss_denominator`),
so the all-reduced gradient is the one of the unsharded step whatever the number of ranks.
"""

import torch

from actors.deepspeed_engine import DeepSpeedRank
from rlsys.rlhf.config import RMLearnerConfig
from rlsys.rlhf.losses import RANKING_LOSSES
from rlsys.rlhf.reward_model import (
    EncodedRanking,
    forward_scores,
    init_reward_model,
    ranking_micro_batches,
    ranking_tensors,
    save_reward_model,
    unflatten,
)


class RewardModelRank(DeepSpeedRank):
    """One rank of the reward model's learner pool, trained with the ranking loss `loss`."""

    def __init__(
        self,
        model_path: str,
        config: RMLearnerConfig,
        *,
        loss: str,
        rank: int,
        world_size: int,
        dtype: str = "float32",
        seed: int = 0,
    ) -> None:
        super().__init__(model_path, config, rank=rank, world_size=world_size, dtype=dtype, seed=seed)
        self.config: RMLearnerConfig = config
        self.loss_fn = RANKING_LOSSES[loss]

    def build_model(self) -> torch.nn.Module:
        """The causal LM's body with a fresh scalar head, drawn alike on every rank (same seed)."""
        return init_reward_model(self.model_path, self.dtype, self.seed)

    def _batches(self, rankings: list[EncodedRanking]) -> list[list[EncodedRanking]]:
        return ranking_micro_batches(
            rankings, self.config.micro_batch_size, self.config.max_tokens_per_micro_batch
        )

    def _scores(self, batch: list[EncodedRanking]) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(B, K) scores of the batch's responses, with their ranks and validity, on the scores' device."""
        input_ids, mask, ranks, valid, sizes = ranking_tensors(batch, self.pad_id)
        scores = unflatten(forward_scores(self.engine, input_ids, mask).float(), sizes)
        return scores, ranks.to(scores.device), valid.to(scores.device)

    def train_step(self, rankings: list[EncodedRanking], denominator: float, passes: int) -> dict[str, float]:
        """One optimizer step on this rank's share of a step: `passes` forward and backward passes, the most
        any rank needs (idle ones after this rank's own), each loss divided by the step's `denominator`.

        Returns this rank's share of each metric; the pool sums them: `loss` (the step's), `pairs`,
        `right_pairs` (ordered the right way, a tie in score counting one half), `margin_sum`, `grad_norm`,
        `lr`.
        """
        engine = self.engine
        engine.train()
        batches = self._batches(rankings)
        if len(batches) > passes:
            raise ValueError(f"{len(batches)} micro-batches on this rank but the pool planned {passes}")
        totals = {"loss": 0.0, "pairs": 0.0, "right_pairs": 0.0, "margin_sum": 0.0}
        for index in range(passes):
            engine.set_gradient_accumulation_boundary(index == passes - 1)
            if index >= len(batches):
                self.idle_micro_step()
                continue
            loss, metrics = self.loss_fn(*self._scores(batches[index]), denominator)
            # DeepSpeed averages gradients over ranks; scaling by world size turns that into the global sum.
            engine.backward(loss * self.world_size, scale_wrt_gas=False)
            totals["loss"] += metrics["loss"]
            totals["pairs"] += metrics["pairs"]
            totals["right_pairs"] += metrics["pair_accuracy"] * metrics["pairs"]
            totals["margin_sum"] += metrics["margin"] * metrics["pairs"]
        engine.step()
        totals["grad_norm"] = float(engine.get_global_grad_norm() or 0.0) / self.world_size
        totals["lr"] = engine.get_lr()[0] / self.world_size
        return totals

    @torch.no_grad()
    def score(self, rankings: list[EncodedRanking], passes: int) -> list[list[float]]:
        """The scores of each ranking's responses, in order (`passes` forwards, as in `train_step`)."""
        self.engine.eval()
        batches = self._batches(rankings)
        scores: list[list[float]] = []
        for index in range(passes):
            if index >= len(batches):
                self.idle_micro_step(backward=False)
                continue
            batch_scores, _, valid = self._scores(batches[index])  # (B, K), padded where a ranking is shorter
            scores += [row[row_valid].tolist() for row, row_valid in zip(batch_scores, valid, strict=True)]
        return scores

    def save_reward_model(self, directory: str, info: dict) -> None:
        """Write the model as `save_reward_model` does, its tokenizer and `info` beside it. Under ZeRO-3 every
        rank calls (gathering the shards is collective) and rank 0 alone writes."""
        from transformers import AutoTokenizer

        weights = self._cpu_weights()
        if self.rank != 0:
            return
        tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        save_reward_model(self._saved_model(), tokenizer, directory, info, state_dict=weights)
