"""Plain torch training loops for the embedded model: causal-LM pretraining and chat SFT.

This is a one-off build step on a CPU, not the learner pool: one process, AdamW, linear warm-up then cosine
decay (`rlsys.schedule.lr_factor`), gradient clipping. Batches are drawn with a seeded ``torch.Generator``
so a build is reproducible for a seed. The SFT stage is `rlsys sft`'s in one process: conversations encoded
by `rlsys.sft.tokens.encode_chat`, padded by `rlsys.sft.packing.padded_batch` and trained on with
`rlsys.sft.packing.sft_loss` (`scripts/sft_reproduce.py` repeats it on the learner pool).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from transformers import PreTrainedModel, PreTrainedTokenizerFast

from rlsys.schedule import lr_factor
from rlsys.sft.packing import Batch, padded_batch, sft_loss
from rlsys.sft.tokens import IGNORE_INDEX, Example


def pack_documents(tokenizer: PreTrainedTokenizerFast, docs: list[str], block_size: int) -> torch.Tensor:
    """Concatenate the documents, each followed by the end-of-text token, into rows of ``block_size``.

    Returns a (N, block_size) tensor of token ids; the ragged tail is dropped.
    """
    ids: list[int] = []
    for encoded in tokenizer(docs, add_special_tokens=False)["input_ids"]:
        ids += encoded
        ids.append(tokenizer.pad_token_id)  # the pad token doubles as the document separator
    n_rows = len(ids) // block_size
    return torch.tensor(ids[: n_rows * block_size]).view(n_rows, block_size)


def block_batches(blocks: torch.Tensor, batch_size: int, generator: torch.Generator) -> Callable[[], Batch]:
    """A sampler of random pretraining batches (full attention, loss on every token) from packed blocks."""

    def sample() -> Batch:
        rows = blocks[torch.randint(len(blocks), (batch_size,), generator=generator)]  # (B, T)
        return Batch(rows, rows, rows.numel(), attention_mask=torch.ones_like(rows))

    return sample


def sft_batches(
    examples: Sequence[Example], pad_id: int, batch_size: int, generator: torch.Generator
) -> Callable[[], Batch]:
    """A sampler of random SFT batches (drawn with replacement), right-padded to the longest in the batch."""

    def sample() -> Batch:
        picked = torch.randint(len(examples), (batch_size,), generator=generator)
        return padded_batch([examples[i] for i in picked], pad_id)

    return sample


def target_count(batch: Batch) -> int:
    """The tokens `sft_loss` scores in ``batch``: labelled positions after the first of each row."""
    return int((batch.labels[:, 1:] != IGNORE_INDEX).sum())


def train(
    model: PreTrainedModel,
    sample_batch: Callable[[], Batch],
    steps: int,
    lr: float,
    description: str,
    progress: bool,
    warmup_steps: int = 30,
) -> list[float]:
    """Train ``model`` in place for ``steps`` AdamW steps; returns the loss of every step.

    The learning rate warms up linearly for ``warmup_steps`` and then decays on a cosine to 10% of ``lr``.
    The loss is `sft_loss`: the mean over the batch's labelled tokens.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, partial(lr_factor, warmup_steps=warmup_steps, total_steps=steps)
    )
    model.train()
    losses = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TextColumn("loss {task.fields[loss]:.3f}"), disable=not progress) as bar:
        task = bar.add_task(description, total=steps, loss=float("nan"))
        for _ in range(steps):
            batch = sample_batch()
            loss, _ = sft_loss(model(**batch.model_inputs()).logits, batch.labels, target_count(batch))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update(task, advance=1, loss=losses[-1])
    model.eval()
    return losses


@torch.no_grad()
def heldout_loss(model: PreTrainedModel, examples: Sequence[Example], pad_id: int, batch_size: int) -> float:
    """The per-token mean `sft_loss` over every reply token of ``examples`` (what `rlsys sft` reports as
    eval/loss for the same conversations)."""
    model.eval()
    summed, tokens = 0.0, 0
    for start in range(0, len(examples), batch_size):
        batch = padded_batch(examples[start : start + batch_size], pad_id)
        loss, metrics = sft_loss(model(**batch.model_inputs()).logits, batch.labels, 1)
        summed += loss.item()
        tokens += int(metrics["tokens"])
    return summed / tokens
