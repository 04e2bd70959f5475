"""A learner rank: one DeepSpeed ZeRO engine holding a shard of the policy's training state.

`LearnerRank` is a plain class; `actors.pools.RayLearnerPool` runs `world_size` of them as Ray actors that
meet in one torch.distributed group (gloo on CPU, NCCL on GPU). Ranks receive disjoint shards of the step's
batch; the loss of each is divided by the *global* response-token count, so the all-reduced gradient is
the gradient of the per-token mean over the whole batch whatever the number of ranks.
"""

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch

from actors.deepspeed_engine import build_engine, free_port, join_process_group
from actors.weights import PackedWeights
from rlsys.algorithms.logprobs import token_entropy, token_logprobs
from rlsys.algorithms.objective import grpo_loss
from rlsys.batch import PackedBatch, micro_batches, pack
from rlsys.config import AlgorithmConfig, LearnerConfig, torch_dtype
from rlsys.types import TrainSequence


class LearnerRank:
    """One rank of the learner pool."""

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
        self.model_path = model_path
        self.config = config
        self.algorithm = algorithm
        self.rank = rank
        self.world_size = world_size
        self.dtype = torch_dtype(dtype)
        self.seed = seed
        if config.torch_threads or config.num_cpus >= 1:
            torch.set_num_threads(config.torch_threads or int(config.num_cpus))

    def rendezvous_address(self) -> tuple[str, int]:
        """Where the process group meets: this rank's node and a free port (asked of rank 0)."""
        return free_port()

    def setup(self, master_addr: str, master_port: int) -> None:
        """Join the process group and build the DeepSpeed engine (every rank calls this together)."""
        from transformers import AutoModelForCausalLM

        join_process_group(self.rank, self.world_size, master_addr, master_port)
        torch.manual_seed(self.seed)
        model = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype)
        self.pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
        # Micro-batching and accumulation are driven here (the batch size varies per step), so DeepSpeed is
        # told one sequence per micro-step and the accumulation boundary is set by hand.
        self.engine = build_engine(model, self.config, dtype=self.dtype, micro_batch_size=1)
        self.reference = None
        if self.algorithm.kl_coef > 0:
            self.reference = AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype)
            self.reference.to(self.engine.device).eval().requires_grad_(False)

    def _forward(self, model, batch: PackedBatch) -> torch.Tensor:
        device = self.engine.device
        logits = model(
            input_ids=batch.input_ids.to(device), attention_mask=batch.attention_mask.to(device)
        ).logits[:, :-1]
        return logits

    def train_step(
        self,
        sequences: list[TrainSequence],
        num_tokens: int,
        kl_coef: float | None = None,
        off_policy: bool = False,
    ) -> dict[str, float]:
        """One optimizer step on this rank's shard; `num_tokens` is the global response-token count.

        `kl_coef` is this step's KL weight (the loop may adapt it); None: the configured one. `off_policy`:
        the samples came from older weights (generated ahead), so the PPO ratio is taken against the
        sampler's log-probs: it reweights each token by pi_now / pi_sampler and the clip bounds how far the
        step follows a stale sample. On-policy the old log-probs are the current ones, detached (ratio 1),
        which spares the ratio the small numeric gap between the engine's and the learner's forward.
        Returns this rank's share of each metric; the pool sums them across ranks into global token means.
        """
        kl_coef = self.algorithm.kl_coef if kl_coef is None else kl_coef
        if kl_coef > 0 and self.reference is None:
            raise ValueError(
                "a KL weight was given but no reference model is loaded: algorithm.kl_coef was 0 at start"
            )
        engine = self.engine
        chunks = micro_batches(
            sequences, self.config.micro_batch_size, self.config.max_tokens_per_micro_batch
        )
        totals: dict[str, float] = {}
        for index, chunk in enumerate(chunks):
            batch = pack(chunk, self.pad_id)
            mask = batch.response_mask.to(engine.device)
            engine.set_gradient_accumulation_boundary(index == len(chunks) - 1)
            logits = self._forward(engine, batch)
            logprobs = token_logprobs(logits, batch.targets.to(engine.device))
            ref_logprobs = None
            if self.reference is not None:
                with torch.no_grad():
                    ref_logprobs = token_logprobs(self._forward(self.reference, batch), batch.targets)
            sampler_logprobs = batch.sampler_logprobs.to(engine.device)
            loss, metrics = grpo_loss(
                logprobs,
                sampler_logprobs if off_policy else logprobs.detach(),
                batch.advantages.to(engine.device),
                mask,
                num_tokens=num_tokens,
                clip_eps=self.algorithm.clip_eps,
                kl_coef=kl_coef,
                ref_logprobs=ref_logprobs,
            )
            # DeepSpeed averages gradients over ranks; scaling by world size turns that into the global sum.
            engine.backward(loss * self.world_size, scale_wrt_gas=False)
            with torch.no_grad():
                metrics["entropy"] = (token_entropy(logits) * mask).sum().item() / num_tokens
                drift = (logprobs.detach() - sampler_logprobs).abs()
                metrics["sampler_logprob_diff"] = (drift * mask).sum().item() / num_tokens
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + value
        engine.step()
        totals["grad_norm"] = float(engine.get_global_grad_norm() or 0.0) / self.world_size
        totals["lr"] = engine.get_lr()[0] / self.world_size
        return totals

    @contextmanager
    def _full_state_dict(self) -> Iterator[dict[str, torch.Tensor]]:
        """The module's state dict under Hugging Face names, ZeRO-3 shards gathered (every rank must enter).

        Its tensors can be views into DeepSpeed's flat buffers: copy what leaves the context (pickling a
        view sends its whole storage; returning views slowed the tiny model's sync 7x, 0.06 -> 0.45 s).
        """
        import deepspeed

        module = self.engine.module
        gather = (
            deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None)
            if self.config.zero_stage == 3
            else nullcontext()
        )
        with gather, torch.no_grad():
            yield module.state_dict()

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

    def save_checkpoint(self, directory: str, tag: str, client_state: dict) -> None:
        """DeepSpeed checkpoint of model, optimizer and scheduler (every rank calls)."""
        self.engine.save_checkpoint(directory, tag=tag, client_state=client_state)

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        _, client_state = self.engine.load_checkpoint(directory, tag=tag)
        return client_state or {}

    def save_pretrained(self, directory: str) -> None:
        """Write the current policy as a Hugging Face model directory, tokenizer included (rank 0)."""
        from transformers import AutoTokenizer

        with self._full_state_dict() as state:
            weights = {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}
        self.engine.module.save_pretrained(directory, state_dict=weights)
        AutoTokenizer.from_pretrained(self.model_path).save_pretrained(directory)
        generation_config = Path(self.model_path) / "generation_config.json"
        if generation_config.is_file():
            (Path(directory) / "generation_config.json").write_text(generation_config.read_text())
