"""A learner rank: one DeepSpeed ZeRO engine holding a shard of the policy's training state.

`LearnerRank` is a plain class; `actors.pools.RayLearnerPool` runs `world_size` of them as Ray actors that
meet in one torch.distributed group (gloo on CPU, NCCL on GPU). Ranks receive disjoint shares of the step's
batch as equal numbers of micro-batches (`rlsys.batch.plan_micro_batches`), so they issue the same
collectives; the loss of each is divided by counts of the *global* batch (`GlobalCounts`: response tokens,
sequences), so the all-reduced gradient is the gradient of the whole batch's loss whatever the number of
ranks. The loss itself is the one `algorithm` selects (`rlsys.algorithms.objective.objective_for`).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import torch

from actors.deepspeed_engine import DeepSpeedRank, gathered_module
from actors.lora import merged_state_dict, with_adapters
from actors.weights import PackedWeights
from rlsys.algorithms.logprobs import token_entropy, token_logprobs
from rlsys.algorithms.objective import objective_for
from rlsys.algorithms.staleness import stale_correction
from rlsys.batch import PackedBatch, pack
from rlsys.config import AlgorithmConfig, LearnerConfig
from rlsys.types import TrainSequence


class LearnerRank(DeepSpeedRank):
    """One rank of the learner pool: the policy (with LoRA adapters, if configured) and its KL reference."""

    def __init__(
        self,
        model_path: str,
        config: LearnerConfig,
        algorithm: AlgorithmConfig,
        *,
        rank: int,
        world_size: int,
        dtype: str = "float32",
        seed: int = 0,
    ) -> None:
        super().__init__(model_path, config, rank=rank, world_size=world_size, dtype=dtype, seed=seed)
        self.algorithm = algorithm
        self.objective = objective_for(algorithm)

    def build_model(self) -> torch.nn.Module:
        from transformers import AutoModelForCausalLM

        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype)
        return with_adapters(model, self.config.lora) if self.config.lora is not None else model

    def setup(self, master_addr: str, master_port: int) -> None:
        """Join the process group, build the DeepSpeed engine and, with a KL weight, the reference."""
        from transformers import AutoModelForCausalLM

        super().setup(master_addr, master_port)
        self.reference = None
        # With adapters the reference is the frozen base, adapters switched off (`_reference_logprobs`).
        if self.algorithm.kl_coef > 0 and self.config.lora is None:
            self.reference = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype)
            self.reference.to(self.engine.device).eval().requires_grad_(False)

    @property
    def frozen_base(self) -> bool:
        return self.config.lora is not None

    @property
    def has_reference(self) -> bool:
        return self.reference is not None or self.config.lora is not None

    @torch.no_grad()
    def _reference_logprobs(self, batch: PackedBatch) -> torch.Tensor:
        targets = batch.targets.to(self.engine.device)
        if self.reference is not None:
            return token_logprobs(self._forward(self.reference, batch), targets)
        with self.engine.module.disable_adapter():
            return token_logprobs(self._forward(self.engine.module, batch), targets)

    def _forward(self, model, batch: PackedBatch) -> torch.Tensor:
        device = self.engine.device
        logits = model(
            input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)
        ).logits[:, :-1]
        return logits

    def train_step(
        self, micro_batches: list[list[TrainSequence]], num_tokens: int, kl_coef: float | None = None
    ) -> dict[str, float]:
        """One optimizer step over this rank's `micro_batches` (`rlsys.batch.plan_micro_batches`: every rank
        gets as many, padded with zero-weight ones) with the objective `algorithm` selects.

        The denominators are the whole batch's counts, which the ranks sum over what they hold, padding
        excluded (`_global_counts`); `num_tokens`, the global response-token count the pool sends, must agree.
        Each row's old log-probs and token weights come from its staleness (`stale_correction`): on-policy
        rows take their current log-probs, detached (ratio 1); stale rows are corrected by
        `algorithm.off_policy_correction`.

        `kl_coef` is this step's KL weight (the loop may adapt it); None: the configured one.
        Returns this rank's share of each metric; the pool sums them across ranks into global means.
        """
        kl_coef = self.algorithm.kl_coef if kl_coef is None else kl_coef
        if kl_coef > 0 and not self.has_reference:
            raise ValueError(
                "a KL weight was given but no reference model is loaded: algorithm.kl_coef was 0 at start"
            )
        engine = self.engine
        counts = self._global_counts([s for chunk in micro_batches for s in chunk if not s.padding])
        if counts.tokens != num_tokens:
            raise ValueError(
                f"the ranks hold {counts.tokens} response tokens but the pool sent {num_tokens}: the shards "
                "lost or repeated sequences"
            )
        algorithm = self.algorithm
        totals: dict[str, float] = {}
        for index, chunk in enumerate(micro_batches):
            batch = pack(chunk, self.pad_id)
            mask = batch.response_mask.to(engine.device)
            engine.set_gradient_accumulation_boundary(index == len(micro_batches) - 1)
            logits = self._forward(engine, batch)
            logprobs = token_logprobs(logits, batch.targets.to(engine.device))
            ref_logprobs = self._reference_logprobs(batch) if kl_coef > 0 else None
            sampler_logprobs = batch.sampler_logprobs.to(engine.device)
            old_logprobs, token_weights, stale = stale_correction(
                logprobs,
                sampler_logprobs,
                mask,
                batch.staleness.to(engine.device),
                correction=algorithm.off_policy_correction,
                is_cap=algorithm.is_cap,
                band=algorithm.mask_band,
            )
            loss, metrics = self.objective(
                logprobs,
                old_logprobs,
                batch.advantages.to(engine.device),
                mask,
                counts,
                kl_coef=kl_coef,
                ref_logprobs=ref_logprobs,
                token_weights=token_weights,
            )
            # DeepSpeed averages gradients over ranks; scaling by world size turns that into the global sum.
            engine.backward(loss * self.world_size, scale_wrt_gas=False)
            with torch.no_grad():
                # `logprob_mismatch`: the learner's log-prob of each of the policy's own tokens against the
                # sampler's (tool output is masked: the sampler never sampled it); near 0 when they agree.
                per_token = {
                    "entropy": token_entropy(logits),
                    "logprob_mismatch": (logprobs.detach() - sampler_logprobs).abs(),
                    "stale_share": stale["stale"],
                    "stale_is_weight": stale["is_weight"],
                    "stale_masked_share": stale["masked"],
                }
                for key, values in per_token.items():
                    metrics[key] = (values * mask).sum().item() / counts.tokens
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + value
        engine.step()
        totals["grad_norm"] = float(engine.get_global_grad_norm() or 0.0) / self.world_size
        totals["lr"] = engine.get_lr()[0] / self.world_size
        totals["optimizer_state_mb"] = self.optimizer_state_bytes() / 2**20  # summed over ranks: the total
        return totals

    @contextmanager
    def _full_state_dict(self) -> Iterator[dict[str, torch.Tensor]]:
        """The module's state dict under Hugging Face names (a LoRA policy's merged), ZeRO-3 shards gathered
        (`gathered_module`: every rank must enter; copy what leaves the context)."""
        with gathered_module(self.engine, self.config.zero_stage) as module:
            yield merged_state_dict(module) if self.config.lora is not None else module.state_dict()

    def packed_weights(self) -> tuple[PackedWeights | None, dict[str, str]]:
        """The full policy weights in one buffer, for the rollout engines, and their fingerprint
        (`PackedWeights.fingerprint`) for the pool, which reads it without fetching the weights.

        ZeRO-3: every rank must call (gathering is collective); only rank 0 packs, the others return
        (None, {}). The pool calls this with `num_returns=2`.
        """
        with self._full_state_dict() as state:
            if self.rank != 0:
                return None, {}
            weights = PackedWeights.pack(state.items())
        return weights, weights.fingerprint

    def _saved_model(self) -> torch.nn.Module:
        """A LoRA policy is saved merged, as the plain model it now is."""
        module = self.engine.module
        return module.get_base_model() if self.config.lora is not None else module
