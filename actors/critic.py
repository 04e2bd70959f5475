"""A critic rank: one DeepSpeed ZeRO engine holding a shard of PPO's value model.

The value model is the policy's base model with a value head: `AutoModelForTokenClassification` with one
label, a linear layer over the last hidden state (new, so it starts near 0), dropout off. The value at
target position t (`rlsys.batch.PackedBatch`) is read from the hidden state of token t, the state in which
the policy chose token t+1. `actors.pools.RayCriticPool` runs `world_size` of these as Ray actors; like the
learner's ranks they receive equal numbers of micro-batches and divide by the global batch's counts.
"""

import torch

from actors.deepspeed_engine import DeepSpeedRank
from rlsys.algorithms.value import clipped_value_loss
from rlsys.batch import PackedBatch, pack
from rlsys.config import RanksConfig
from rlsys.types import TrainSequence


class CriticRank(DeepSpeedRank):
    """One rank of the critic pool."""

    def __init__(
        self,
        model_path: str,
        config: RanksConfig,
        *,
        value_clip: float | None,
        rank: int,
        world_size: int,
        dtype: str = "float32",
        seed: int = 0,
    ) -> None:
        super().__init__(model_path, config, rank=rank, world_size=world_size, dtype=dtype, seed=seed)
        self.value_clip = value_clip

    def build_model(self) -> torch.nn.Module:
        from transformers import AutoConfig, AutoModelForTokenClassification
        from transformers.utils import logging as hf_logging

        config = AutoConfig.from_pretrained(self.model_path, num_labels=1)
        # Dropout would make the values GAE used differ from the ones the loss clips against. Set here: a
        # from_pretrained keyword does not reach the head.
        config.classifier_dropout = 0.0
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # "score.weight newly initialized" is the point here, not a warning
        try:
            return AutoModelForTokenClassification.from_pretrained(
                self.model_path, config=config, dtype=self.dtype
            )
        finally:
            hf_logging.set_verbosity(verbosity)

    def _values(self, batch: PackedBatch) -> torch.Tensor:
        """(B, T) the value of each target position (the state before its token was chosen)."""
        device = self.engine.device
        out = self.engine(
            input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)
        )
        return out.logits[:, :-1, 0].float()

    @torch.no_grad()
    def values(self, micro_batches: list[list[TrainSequence]]) -> list[list[tuple[float, ...]]]:
        """Each sequence's values at its response tokens, micro-batch by micro-batch as given (every rank is
        given as many, `rlsys.batch.plan_micro_batches`: a ZeRO-3 forward is collective)."""
        values = []
        for chunk in micro_batches:
            table = self._values(pack(chunk, self.pad_id)).cpu()
            values.append(
                [
                    tuple(table[row, len(s.prompt_token_ids) - 1 :][: len(s.token_ids)].tolist())
                    for row, s in enumerate(chunk)
                ]
            )
        return values

    def train_step(self, micro_batches: list[list[TrainSequence]], num_tokens: int) -> dict[str, float]:
        """One optimizer step of the clipped value loss (`clipped_value_loss`) toward each sequence's
        `returns`, clipped around its `values`. Returns this rank's share of each metric (`value_loss`,
        `value_clip_fraction`, `values`), which the pool sums over ranks into global token means."""
        engine = self.engine
        counts = self._global_counts([s for chunk in micro_batches for s in chunk if not s.padding])
        if counts.tokens != num_tokens:
            raise ValueError(
                f"the ranks hold {counts.tokens} response tokens but the pool sent {num_tokens}: the shards "
                "lost or repeated sequences"
            )
        totals: dict[str, float] = {}
        for index, chunk in enumerate(micro_batches):
            batch = pack(chunk, self.pad_id)
            if batch.returns is None or batch.old_values is None:
                raise ValueError("the critic trains on sequences carrying returns and values (with_gae)")
            engine.set_gradient_accumulation_boundary(index == len(micro_batches) - 1)
            loss, metrics = clipped_value_loss(
                self._values(batch),
                batch.old_values.to(engine.device),
                batch.returns.to(engine.device),
                batch.response_mask.to(engine.device),
                counts,
                clip=self.value_clip,
            )
            # DeepSpeed averages gradients over ranks; scaling by world size turns that into the global sum.
            engine.backward(loss * self.world_size, scale_wrt_gas=False)
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + value
        engine.step()
        totals["grad_norm"] = float(engine.get_global_grad_norm() or 0.0) / self.world_size
        totals["lr"] = engine.get_lr()[0] / self.world_size
        return totals
