"""A DeepSpeed engine for every trainer here (the policy's learner ranks, the critic's ranks, SFT, the
reward model): the process group a rank joins, AdamW with a learning-rate schedule under ZeRO built from an
`OptimizerConfig`, and `DeepSpeedRank`, what the learner's, the critic's, SFT's and the reward model's ranks
share.

Ranks of ZeRO-2 and ZeRO-3 reduce gradients (and ZeRO-3 gathers weights) inside every forward and backward,
so every rank must run the same number of them in a step, whatever its share of the data: a rank with fewer
micro-batches runs zero-weight ones (the learner's padding sequences, SFT's `idle_micro_step`).
"""

import logging
import os
import shutil
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from functools import partial
from pathlib import Path

import torch
import torch.distributed as dist

from rlsys import atomic
from rlsys.algorithms.aggregation import GlobalCounts
from rlsys.config import OptimizerConfig, RanksConfig, torch_dtype
from rlsys.schedule import lr_factor
from rlsys.types import TrainSequence, trained_token_count


def free_port() -> tuple[str, int]:
    """This node's IP and a free TCP port, for rank 0 to host the process-group rendezvous."""
    with socket.socket() as sock:
        sock.bind(("", 0))
        port = sock.getsockname()[1]
    return socket.gethostbyname(socket.gethostname()), port


def join_process_group(rank: int, world_size: int, master_addr: str, master_port: int) -> None:
    """Set the environment torch.distributed and DeepSpeed read, and join the group (gloo on CPU, NCCL on
    GPU). Every rank of a group calls this together."""
    os.environ.update(
        MASTER_ADDR=master_addr,
        MASTER_PORT=str(master_port),
        RANK=str(rank),
        LOCAL_RANK="0",  # each rank is its own actor process with at most its own device
        WORLD_SIZE=str(world_size),
    )
    if not torch.cuda.is_available():
        os.environ["DS_ACCELERATOR"] = "cpu"  # read when deepspeed is first imported, just below
    import deepspeed

    logging.getLogger("DeepSpeed").setLevel(logging.WARNING)
    deepspeed.init_distributed(dist_backend="nccl" if torch.cuda.is_available() else "gloo")


def build_engine(
    model: torch.nn.Module,
    optimizer: OptimizerConfig,
    *,
    dtype: torch.dtype,
    micro_batch_size: int,
    schedule: Callable[[int], float] | None = None,
):
    """A DeepSpeed engine training `model` with AdamW, gradient clipping and ZeRO `optimizer.zero_stage`, its
    learning rate `optimizer.lr` times `schedule(optimizer step)` (`rlsys.schedule.lr_factor`; None: a linear
    warmup over `optimizer.warmup_steps`, then constant).

    `micro_batch_size` is what DeepSpeed is told one forward holds; callers that drive micro-batching
    themselves pass 1 and set the accumulation boundary by hand.
    """
    import deepspeed

    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]  # not LoRA's base
    adamw = torch.optim.AdamW(
        trainable, lr=optimizer.lr, betas=optimizer.betas, weight_decay=optimizer.weight_decay
    )
    if schedule is None:
        schedule = partial(lr_factor, warmup_steps=optimizer.warmup_steps)
    scheduler = torch.optim.lr_scheduler.LambdaLR(adamw, schedule)
    engine, *_ = deepspeed.initialize(
        model=model,
        optimizer=adamw,
        lr_scheduler=scheduler,
        config={
            "train_micro_batch_size_per_gpu": micro_batch_size,
            "gradient_accumulation_steps": 1,
            "gradient_clipping": optimizer.grad_clip,
            "zero_optimization": {"stage": optimizer.zero_stage},
            "zero_allow_untested_optimizer": True,
            "bf16": {"enabled": dtype == torch.bfloat16},
            "fp16": {"enabled": dtype == torch.float16},
            "steps_per_print": 2**31,
        },
    )
    return engine


@contextmanager
def gathered_module(engine, zero_stage: int) -> Iterator[torch.nn.Module]:
    """The engine's module with its ZeRO-3 shards gathered (every rank must enter), gradients off: read its
    state dict inside.

    Its tensors can be views into DeepSpeed's flat buffers: copy what leaves the context (pickling a
    view sends its whole storage; returning views slowed the tiny model's sync 7x, 0.06 -> 0.45 s).
    """
    import deepspeed

    module = engine.module
    gather = (
        deepspeed.zero.GatheredParameters(list(module.parameters()), modifier_rank=None)
        if zero_stage == 3
        else nullcontext()
    )
    with gather, torch.no_grad():
        yield module


class DeepSpeedRank:
    """One rank of a pool of DeepSpeed ranks (`actors.pools`, `actors.trainer_pools`): its place in the
    process group, its engine over the model `build_model` makes, the global batch counts, checkpoints and
    the Hugging Face save. Subclasses add the verbs.

    A plain class: the pools run `world_size` of them as Ray actors that meet in one torch.distributed group.
    """

    def __init__(
        self,
        model_path: str,
        config: RanksConfig,
        *,
        rank: int,
        world_size: int,
        dtype: str = "float32",
        seed: int = 0,
        chat_template: str | None = None,
    ) -> None:
        """`chat_template`: the job's template for a model without one, saved with it (`save_pretrained`)."""
        self.model_path = model_path
        self.config = config
        self.rank = rank
        self.world_size = world_size
        self.dtype = torch_dtype(dtype)
        self.seed = seed
        self.chat_template = chat_template
        if config.torch_threads or config.num_cpus >= 1:
            torch.set_num_threads(config.torch_threads or int(config.num_cpus))

    def rendezvous_address(self) -> tuple[str, int]:
        """Where the process group meets: this rank's node and a free port (asked of rank 0)."""
        return free_port()

    def setup(self, master_addr: str, master_port: int) -> None:
        """Join the process group and build the DeepSpeed engine (every rank calls this together)."""
        join_process_group(self.rank, self.world_size, master_addr, master_port)
        torch.manual_seed(self.seed)
        model = self.build_model()
        self.pad_id = model.config.pad_token_id if model.config.pad_token_id is not None else 0
        # Micro-batching and accumulation are driven here (the batch size varies per step), so DeepSpeed is
        # told one sequence per micro-step and the accumulation boundary is set by hand.
        self.engine = build_engine(
            model, self.config, dtype=self.dtype, micro_batch_size=1, schedule=self.schedule()
        )

    def build_model(self) -> torch.nn.Module:
        """The module this rank trains, loaded from `model_path`."""
        raise NotImplementedError

    def schedule(self) -> Callable[[int], float] | None:
        """The learning rate's multiplier per optimizer step; None: warmup, then constant (`build_engine`)."""
        return None

    def idle_micro_step(self, backward: bool = True) -> None:
        """A forward (and backward) that changes nothing, for a rank with less data than the others: ZeRO's
        collectives inside them must run as often on every rank."""
        inputs = torch.tensor([[self.pad_id]], device=self.engine.device)
        output = self.engine(input_ids=inputs).logits.sum() * 0.0
        if backward:
            self.engine.backward(output, scale_wrt_gas=False)

    def _global_counts(self, sequences: list[TrainSequence]) -> GlobalCounts:
        """Response tokens and sequences of the whole step's batch, summed over every rank's share.

        Counted here rather than sent by the pool so every denominator comes from the sequences the ranks
        really hold; it costs one two-number all-reduce a step, which every rank joins.
        """
        # Tokens the loss covers: tool output in a response is masked out of it (`TrainSequence.loss_mask`).
        local = GlobalCounts.of([trained_token_count(s.token_ids, s.loss_mask) for s in sequences])
        summed = torch.tensor([local.tokens, local.sequences], dtype=torch.int64, device=self.engine.device)
        dist.all_reduce(summed)
        return GlobalCounts(tokens=int(summed[0]), sequences=int(summed[1]))

    def optimizer_state_bytes(self) -> int:
        """Bytes of this rank's optimizer state, everything a checkpoint saves of it (Adam's moments and
        ZeRO's fp32 partitions): what LoRA shrinks."""
        return sum(t.numel() * t.element_size() for t in _tensors(self.engine.optimizer.state_dict()))

    @property
    def frozen_base(self) -> bool:
        """Whether the base is frozen (LoRA): checkpoints then leave it out, the model path holds it."""
        return False

    def save_checkpoint(self, directory: str, tag: str, client_state: dict) -> None:
        """DeepSpeed checkpoint of model, optimizer and scheduler under `directory/tag` (every rank calls).
        The caller commits it (`rlsys.checkpoint`): DeepSpeed's own `latest` file is not written. A frozen
        base (LoRA) is left out: the model path holds it."""
        with atomic.disk_full_as_oserror(directory):
            self.engine.save_checkpoint(
                directory,
                tag=tag,
                client_state=client_state,
                save_latest=False,
                exclude_frozen_parameters=self.frozen_base,
            )

    def load_checkpoint(self, directory: str, tag: str) -> dict:
        _, client_state = self.engine.load_checkpoint(
            directory, tag=tag, load_module_strict=not self.frozen_base
        )
        return client_state or {}

    @contextmanager
    def _full_state_dict(self) -> Iterator[dict[str, torch.Tensor]]:
        """The module's state dict under Hugging Face names, ZeRO-3 shards gathered (`gathered_module`: every
        rank must enter; copy what leaves the context)."""
        with gathered_module(self.engine, self.config.zero_stage) as module:
            yield module.state_dict()

    def _saved_model(self) -> torch.nn.Module:
        """The Hugging Face model whose `save_pretrained` writes `_full_state_dict`."""
        return self.engine.module

    def _cpu_weights(self) -> dict[str, torch.Tensor]:
        """The full state dict (`_full_state_dict`), copied to CPU: what a save writes. Under ZeRO-3 every
        rank calls (gathering the shards is collective)."""
        with self._full_state_dict() as state:
            return {name: tensor.detach().to("cpu", copy=True) for name, tensor in state.items()}

    def save_pretrained(self, directory: str) -> None:
        """Write the current model as a Hugging Face model directory, tokenizer included, atomically (it
        replaces `directory` whole, or leaves it as it was). Under ZeRO-3 every rank calls (gathering the
        shards is collective) and rank 0 alone writes."""
        from transformers import AutoTokenizer

        weights = self._cpu_weights()
        if self.rank != 0:
            return
        tokenizer = AutoTokenizer.from_pretrained(self.model_path)
        if self.chat_template is not None:
            tokenizer.chat_template = self.chat_template
        # The failure is judged before the staging folder is removed (removing it frees the room).
        with atomic.directory(directory) as staging, atomic.disk_full_as_oserror(staging):
            self._saved_model().save_pretrained(staging, state_dict=weights)
            tokenizer.save_pretrained(staging)
            generation_config = Path(self.model_path) / "generation_config.json"
            if generation_config.is_file():
                shutil.copyfile(generation_config, staging / "generation_config.json")


def _tensors(state: object) -> Iterator[torch.Tensor]:
    """Every tensor in a nested state dict (dicts, lists, tuples)."""
    if isinstance(state, torch.Tensor):
        yield state
    elif isinstance(state, dict):
        for value in state.values():
            yield from _tensors(value)
    elif isinstance(state, list | tuple):
        for value in state:
            yield from _tensors(value)
