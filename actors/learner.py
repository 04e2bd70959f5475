"""A learner rank: one DeepSpeed ZeRO engine holding a shard of the policy's training state.

`LearnerRank` is a plain class; `actors.pools.RayLearnerPool` runs `world_size` of them as Ray actors that
meet in one torch.distributed group (gloo on CPU, NCCL on GPU). Ranks receive disjoint shards of the step's
batch; the loss of each is divided by counts of the *global* batch (`GlobalCounts`: response tokens,
sequences), so the all-reduced gradient is the gradient of the whole batch's loss whatever the number of
ranks. The loss itself is the one `algorithm` selects (`rlsys.algorithms.objective.objective_for`).
"""

import shutil
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import torch
import torch.distributed as dist

from actors.deepspeed_engine import build_engine, free_port, join_process_group
from actors.weights import PackedWeights
from rlsys import atomic
from rlsys.algorithms.aggregation import GlobalCounts
from rlsys.algorithms.logprobs import token_entropy, token_logprobs
from rlsys.algorithms.objective import objective_for
from rlsys.batch import PackedBatch, micro_batches, pack, response_token_count
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
        self.objective = objective_for(algorithm)
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
        """One optimizer step on this rank's shard with the objective `algorithm` selects.

        The denominators are the whole batch's counts, which the ranks sum over their shards
        (`_global_counts`); `num_tokens`, the global response-token count the pool sends, must agree.

        `kl_coef` is this step's KL weight (the loop may adapt it); None: the configured one. `off_policy`:
        the samples came from older weights (generated ahead), so the PPO ratio is taken against the
        sampler's log-probs: it reweights each token by pi_now / pi_sampler and the clip bounds how far the
        step follows a stale sample. On-policy the old log-probs are the current ones, detached (ratio 1),
        which spares the ratio the small numeric gap between the engine's and the learner's forward.
        Returns this rank's share of each metric; the pool sums them across ranks into global means.
        """
        kl_coef = self.algorithm.kl_coef if kl_coef is None else kl_coef
        if kl_coef > 0 and self.reference is None:
            raise ValueError(
                "a KL weight was given but no reference model is loaded: algorithm.kl_coef was 0 at start"
            )
        engine = self.engine
        counts = self._global_counts(sequences)
        if counts.tokens != num_tokens:
            raise ValueError(
                f"the ranks hold {counts.tokens} response tokens but the pool sent {num_tokens}: the shards "
                "lost or repeated sequences"
            )
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
            loss, metrics = self.objective(
                logprobs,
                sampler_logprobs if off_policy else logprobs.detach(),
                batch.advantages.to(engine.device),
                mask,
                counts,
                kl_coef=kl_coef,
                ref_logprobs=ref_logprobs,
            )
            # DeepSpeed averages gradients over ranks; scaling by world size turns that into the global sum.
            engine.backward(loss * self.world_size, scale_wrt_gas=False)
            with torch.no_grad():
                metrics["entropy"] = (token_entropy(logits) * mask).sum().item() / counts.tokens
                # The learner's log-prob of each of the policy's own tokens against the sampler's (tool output
                # is masked: the sampler never sampled it): near 0 when trainer and engine agree.
                drift = (logprobs.detach() - sampler_logprobs).abs()
                metrics["logprob_mismatch"] = (drift * mask).sum().item() / counts.tokens
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + value
        engine.step()
        totals["grad_norm"] = float(engine.get_global_grad_norm() or 0.0) / self.world_size
        totals["lr"] = engine.get_lr()[0] / self.world_size
        return totals

    def _global_counts(self, sequences: list[TrainSequence]) -> GlobalCounts:
        """Response tokens and sequences of the whole step's batch, summed over every rank's shard.

        Counted here rather than sent by the pool so every denominator comes from the shards the ranks
        really hold; it costs one two-number all-reduce a step, which every rank joins.
        """
        local = [response_token_count(sequences), len(sequences)]  # tokens the loss covers (tool output not)
        summed = torch.tensor(local, dtype=torch.int64, device=self.engine.device)
        dist.all_reduce(summed)
        return GlobalCounts(tokens=int(summed[0]), sequences=int(summed[1]))

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

    def packed_weights(self) -> PackedWeights:
        """The full policy weights in one buffer, for the rollout engines (ZeRO-3: every rank must call)."""
        with self._full_state_dict() as state:
            return PackedWeights.pack(state.items())

    def save_checkpoint(self, directory: str, tag: str, client_state: dict) -> None:
        """DeepSpeed checkpoint of model, optimizer and scheduler under `directory/tag` (every rank calls).
        The caller commits it (`rlsys.checkpoint`): DeepSpeed's own `latest` file is not written."""
        self.engine.save_checkpoint(directory, tag=tag, client_state=client_state, save_latest=False)

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        _, client_state = self.engine.load_checkpoint(directory, tag=tag)
        return client_state or {}

    def save_pretrained(self, directory: str) -> None:
        """Write the current policy as a Hugging Face model directory, tokenizer included, atomically (it
        replaces `directory` whole, or leaves it as it was). Under ZeRO-3 every rank calls (gathering the
        shards is collective) and rank 0 alone writes."""
        from transformers import AutoTokenizer

        with self._full_state_dict() as state:
            weights = {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}
        if self.rank != 0:
            return
        with atomic.directory(directory) as staging:
            self.engine.module.save_pretrained(staging, state_dict=weights)
            AutoTokenizer.from_pretrained(self.model_path).save_pretrained(staging)
            generation_config = Path(self.model_path) / "generation_config.json"
            if generation_config.is_file():
                shutil.copyfile(generation_config, staging / "generation_config.json")
