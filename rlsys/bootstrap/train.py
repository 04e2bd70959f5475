"""Plain torch training loops for the embedded model: causal-LM pretraining and chat SFT.

This is a one-off build step on a CPU, not the RL learner: one process, AdamW, linear warm-up then
cosine decay, gradient clipping. Batches are drawn with a seeded ``torch.Generator`` so a build is
reproducible for a seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from transformers import PreTrainedModel, PreTrainedTokenizerFast

IGNORE_INDEX = -100  # label value the loss skips (prompt and padding positions)

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]  # input ids, attention mask, labels; each (B, T)


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


def encode_conversation(
    tokenizer: PreTrainedTokenizerFast, conversation: list[dict[str, str]]
) -> tuple[list[int], list[int]]:
    """Token ids and labels of a conversation whose last turn is the assistant's answer.

    The ids are the rendered prompt (with the generation prompt) followed by the answer and ``<|im_end|>``,
    exactly the sequence a rollout engine sees and produces; labels mask the prompt so the loss covers
    only the answer and its end token.
    """
    prompt = tokenizer.apply_chat_template(conversation[:-1], add_generation_prompt=True, tokenize=True)
    prompt_ids = list(prompt["input_ids"])
    answer_ids = tokenizer(conversation[-1]["content"], add_special_tokens=False)["input_ids"]
    answer_ids = [*answer_ids, tokenizer.eos_token_id]
    return prompt_ids + answer_ids, [IGNORE_INDEX] * len(prompt_ids) + answer_ids


def block_batches(blocks: torch.Tensor, batch_size: int, generator: torch.Generator) -> Callable[[], Batch]:
    """A sampler of random pretraining batches (full attention, loss on every token) from packed blocks."""

    def sample() -> Batch:
        rows = blocks[torch.randint(len(blocks), (batch_size,), generator=generator)]  # (B, T)
        return rows, torch.ones_like(rows), rows

    return sample


def sft_batches(
    examples: list[tuple[list[int], list[int]]], pad_id: int, batch_size: int, generator: torch.Generator
) -> Callable[[], Batch]:
    """A sampler of random SFT batches, right-padded to the longest example in the batch."""

    def sample() -> Batch:
        picked = [examples[i] for i in torch.randint(len(examples), (batch_size,), generator=generator)]
        width = max(len(ids) for ids, _ in picked)
        ids = torch.full((batch_size, width), pad_id)
        mask = torch.zeros((batch_size, width), dtype=torch.long)
        labels = torch.full((batch_size, width), IGNORE_INDEX)
        for row, (example_ids, example_labels) in enumerate(picked):
            ids[row, : len(example_ids)] = torch.tensor(example_ids)
            mask[row, : len(example_ids)] = 1
            labels[row, : len(example_labels)] = torch.tensor(example_labels)
        return ids, mask, labels

    return sample


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
    The loss is the mean over labelled tokens of the batch (Hugging Face's causal-LM loss).
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, betas=(0.9, 0.95), weight_decay=0.01)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: _lr_factor(step, steps, warmup_steps)
    )
    model.train()
    losses = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, TextColumn("loss {task.fields[loss]:.3f}"), disable=not progress) as bar:
        task = bar.add_task(description, total=steps, loss=float("nan"))
        for _ in range(steps):
            input_ids, attention_mask, labels = sample_batch()
            loss = model(input_ids=input_ids, attention_mask=attention_mask, labels=labels).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            optimizer.zero_grad(set_to_none=True)
            losses.append(loss.item())
            bar.update(task, advance=1, loss=losses[-1])
    model.eval()
    return losses


def _lr_factor(step: int, steps: int, warmup_steps: int) -> float:
    """Multiplier of the peak learning rate: linear warm-up, then cosine decay to 0.1."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(1, steps - warmup_steps)
    return 0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))
