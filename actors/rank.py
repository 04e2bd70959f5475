"""A trainer rank: one process of a DeepSpeed ZeRO process group, holding one engine over one model.

SFT runs on ranks like this one (`actors.sft.SFTRank`); the policy's learner (`actors.learner.LearnerRank`)
and the reward-model trainer (`actors.reward_trainer`) still set up their own engines and are to move onto
this class. A subclass says which model it loads and what a step does; joining the group, building the
engine, checkpoints and the Hugging Face save are here. `actors.trainer_pools.RayTrainerPool` runs
`world_size` of them as Ray actors.

Ranks of ZeRO-2 and ZeRO-3 reduce gradients (and ZeRO-3 gathers weights) inside every forward and backward,
so every rank must run the same number of them in a step, whatever its share of the data: a rank with fewer
micro-batches runs idle ones (`idle_micro_step`).
"""

import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist

from actors.deepspeed_engine import build_engine, free_port, gathered_module, join_process_group
from rlsys import atomic
from rlsys.config import OptimizerConfig, torch_dtype
from rlsys.schedule import lr_factor


def rank_threads(torch_threads: int, num_cpus: float) -> int:
    """Torch threads of a CPU rank: `torch_threads` when set, else the CPUs Ray reserved (0: torch's own)."""
    return torch_threads or (int(num_cpus) if num_cpus >= 1 else 0)


class TrainerRank:
    """One rank: `setup` joins the group and builds the engine; subclasses add the training step."""

    def __init__(
        self,
        model_path: str,
        optimizer: OptimizerConfig,
        *,
        rank: int,
        world_size: int,
        dtype: str = "float32",
        seed: int = 0,
        threads: int = 0,
        micro_batch_size: int = 1,
        chat_template: str | None = None,
    ) -> None:
        """`micro_batch_size`: what DeepSpeed is told one forward holds; ranks that drive micro-batching
        themselves keep 1 and set the accumulation boundary by hand. `chat_template`: the job's template for
        a model without one, saved with the model (`save_pretrained`)."""
        self.model_path = model_path
        self.optimizer = optimizer
        self.rank = rank
        self.world_size = world_size
        self.dtype = torch_dtype(dtype)
        self.seed = seed
        self.micro_batch_size = micro_batch_size
        self.chat_template = chat_template
        if threads:
            torch.set_num_threads(threads)

    def rendezvous_address(self) -> tuple[str, int]:
        """Where the process group meets: this rank's node and a free port (asked of rank 0)."""
        return free_port()

    def setup(self, master_addr: str, master_port: int) -> None:
        """Join the process group, load the model and build the DeepSpeed engine (every rank together)."""
        join_process_group(self.rank, self.world_size, master_addr, master_port)
        torch.manual_seed(self.seed)
        model = self.load_model()
        self.pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
        self.engine = build_engine(
            model,
            self.optimizer,
            dtype=self.dtype,
            micro_batch_size=self.micro_batch_size,
            schedule=self.schedule(),
        )

    def load_model(self) -> torch.nn.Module:
        """The model this rank trains (a causal LM; the reward-model trainer loads a scalar-head one)."""
        from transformers import AutoModelForCausalLM

        return AutoModelForCausalLM.from_pretrained(self.model_path, dtype=self.dtype)

    def schedule(self) -> Callable[[int], float]:
        """The learning rate's multiplier per optimizer step: warmup, then constant."""
        return partial(lr_factor, warmup_steps=self.optimizer.warmup_steps)

    def global_sum(self, values: list[float]) -> list[float]:
        """`values` summed over every rank (one all-reduce, which every rank joins)."""
        summed = torch.tensor(values, dtype=torch.float64, device=self.engine.device)
        dist.all_reduce(summed)
        return summed.tolist()

    def idle_micro_step(self, backward: bool = True) -> None:
        """A forward (and backward) that changes nothing, for a rank with less data than the others: ZeRO's
        collectives inside them must run as often on every rank."""
        inputs = torch.tensor([[self.pad_id]], device=self.engine.device)
        output = self.engine(input_ids=inputs).logits.sum() * 0.0
        if backward:
            self.engine.backward(output, scale_wrt_gas=False)

    @contextmanager
    def _full_state_dict(self) -> Iterator[dict[str, torch.Tensor]]:
        """The module's state dict under Hugging Face names, ZeRO-3 shards gathered (`gathered_module`: every
        rank must enter; copy what leaves the context)."""
        with gathered_module(self.engine, self.optimizer.zero_stage) as module:
            yield module.state_dict()

    def save_checkpoint(self, directory: str, tag: str, client_state: dict) -> None:
        """DeepSpeed checkpoint of model, optimizer and scheduler under `directory/tag` (every rank calls).
        The caller commits it (`rlsys.checkpoint`): DeepSpeed's own `latest` file is not written."""
        self.engine.save_checkpoint(directory, tag=tag, client_state=client_state, save_latest=False)

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        _, client_state = self.engine.load_checkpoint(directory, tag=tag)
        return client_state or {}

    def save_pretrained(self, directory: str) -> None:
        """Write the current model as a Hugging Face model directory, tokenizer included, atomically (it
        replaces `directory` whole, or leaves it as it was). Under ZeRO-3 every rank calls (gathering the
        shards is collective) and rank 0 alone writes."""
        from transformers import AutoTokenizer

        with self._full_state_dict() as state:
            weights = {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}
        if self.rank != 0:
            return
        tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        if self.chat_template is not None:
            tokenizer.chat_template = self.chat_template
        with atomic.directory(directory) as staging:
            self.engine.module.save_pretrained(staging, state_dict=weights)
            tokenizer.save_pretrained(staging)
            generation_config = Path(self.model_path) / "generation_config.json"
            if generation_config.is_file():
                shutil.copyfile(generation_config, staging / "generation_config.json")
