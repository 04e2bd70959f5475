"""An SFT rank: one DeepSpeed rank training a causal LM on chat examples, the loss on the replies only.

`SFTRank` is a plain class (a `DeepSpeedRank`, as the learner's and the critic's ranks are);
`actors.trainer_pools.RaySFTPool` runs the ranks as Ray actors and splits each step's examples among them,
balanced by tokens. Every rank divides its loss by the reply tokens of the whole step
(`rlsys.sft.packing.sft_loss`), so the all-reduced gradient is the one of the step's per-token mean whatever
the number of ranks, and packing changes only how fast a step runs.
"""

from collections.abc import Callable
from functools import partial

import torch

from actors.deepspeed_engine import DeepSpeedRank
from rlsys.errors import ConfigError
from rlsys.schedule import lr_factor
from rlsys.sft.config import SFTLearnerConfig
from rlsys.sft.packing import Batch, micro_batches, packing_is_isolated, sft_loss
from rlsys.sft.tokens import Example


class SFTRank(DeepSpeedRank):
    """One rank of the SFT learner pool."""

    def __init__(
        self,
        model_path: str,
        config: SFTLearnerConfig,
        *,
        total_steps: int,
        packing: bool,
        max_tokens: int,
        rank: int,
        world_size: int,
        dtype: str = "float32",
        seed: int = 0,
        chat_template: str | None = None,
    ) -> None:
        super().__init__(
            model_path,
            config,
            rank=rank,
            world_size=world_size,
            dtype=dtype,
            seed=seed,
            chat_template=chat_template,
        )
        self.config: SFTLearnerConfig = config
        self.total_steps, self.packing, self.max_tokens = total_steps, packing, max_tokens

    def build_model(self) -> torch.nn.Module:
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype)

    def schedule(self) -> Callable[[int], float]:
        """Warmup, then constant or a cosine decay to `min_lr_ratio` at the job's last step."""
        total = self.total_steps if self.config.lr_schedule == "cosine" else None
        return partial(
            lr_factor,
            warmup_steps=self.config.warmup_steps,
            total_steps=total,
            min_ratio=self.config.min_lr_ratio,
        )

    def setup(self, master_addr: str, master_port: int) -> None:
        """Join the group, build the engine, and check the model keeps packed documents apart."""
        super().setup(master_addr, master_port)
        module = self.engine.module
        with torch.no_grad():
            isolated = not self.packing or packing_is_isolated(module, module.config.vocab_size)
        if not isolated:
            raise ConfigError(
                f"data.packing: {type(module).__name__} lets packed conversations attend to each other "
                "(its attention ignores restarting position ids): set data.packing=false"
            )

    def _batches(self, examples: list[Example]) -> list[Batch]:
        return micro_batches(
            examples,
            self.pad_id,
            packing=self.packing,
            max_tokens=self.max_tokens,
            max_rows=self.config.micro_batch_size,
            max_batch_tokens=self.config.max_tokens_per_micro_batch,
        )

    def _logits(self, batch: Batch) -> torch.Tensor:
        device = self.engine.device
        inputs = {
            k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.model_inputs().items()
        }
        return self.engine(**inputs).logits

    def train_step(self, examples: list[Example], num_tokens: int, passes: int) -> dict[str, float]:
        """One optimizer step on this rank's share of a step: `passes` forward and backward passes, the most
        any rank needs (idle ones after this rank's own), each loss divided by the step's `num_tokens`.

        Returns this rank's share of each metric; the pool sums them: `loss` (the step's per-token mean),
        `tokens` (reply tokens), `real_tokens` (all tokens, padding excluded), `grad_norm`, `lr`.
        """
        engine = self.engine
        engine.train()
        batches = self._batches(examples)
        if len(batches) > passes:
            raise ValueError(f"{len(batches)} micro-batches on this rank but the pool planned {passes}")
        totals = {"loss": 0.0, "tokens": 0.0, "real_tokens": 0.0}
        for index in range(passes):
            engine.set_gradient_accumulation_boundary(index == passes - 1)
            if index >= len(batches):
                self.idle_micro_step()
                continue
            batch = batches[index]
            loss, metrics = sft_loss(self._logits(batch), batch.labels, num_tokens)
            # DeepSpeed averages gradients over ranks; scaling by world size turns that into the global sum.
            engine.backward(loss * self.world_size, scale_wrt_gas=False)
            totals["loss"] += metrics["loss"]
            totals["tokens"] += metrics["tokens"]
            totals["real_tokens"] += batch.tokens
        engine.step()
        totals["grad_norm"] = float(engine.get_global_grad_norm() or 0.0) / self.world_size
        totals["lr"] = engine.get_lr()[0] / self.world_size
        return totals

    @torch.no_grad()
    def evaluate(self, examples: list[Example], passes: int) -> dict[str, float]:
        """The summed loss over this rank's held-out examples and their reply tokens (`passes` forwards, as
        in `train_step`)."""
        self.engine.eval()
        batches = self._batches(examples)
        summed, tokens = 0.0, 0.0
        for index in range(passes):
            if index >= len(batches):
                self.idle_micro_step(backward=False)
                continue
            loss, metrics = sft_loss(self._logits(batches[index]), batches[index].labels, 1)
            summed += loss.item()
            tokens += metrics["tokens"]
        return {"loss_sum": summed, "tokens": tokens}
