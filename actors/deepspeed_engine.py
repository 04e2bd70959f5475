"""A DeepSpeed engine for every trainer here (the policy's learner ranks, the reward-model trainer): the
process group a rank joins, and AdamW with linear warmup under ZeRO, built from an `OptimizerConfig`."""

import logging
import os
import socket

import torch

from rlsys.config import OptimizerConfig


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
    model: torch.nn.Module, optimizer: OptimizerConfig, *, dtype: torch.dtype, micro_batch_size: int
):
    """A DeepSpeed engine training `model` with AdamW, a linear warmup over `optimizer.warmup_steps` then a
    constant learning rate, gradient clipping and ZeRO `optimizer.zero_stage`.

    `micro_batch_size` is what DeepSpeed is told one forward holds; callers that drive micro-batching
    themselves pass 1 and set the accumulation boundary by hand.
    """
    import deepspeed

    trainable = [parameter for parameter in model.parameters() if parameter.requires_grad]  # not LoRA's base
    adamw = torch.optim.AdamW(
        trainable, lr=optimizer.lr, betas=optimizer.betas, weight_decay=optimizer.weight_decay
    )
    warmup = optimizer.warmup_steps
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        adamw, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0
    )
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
