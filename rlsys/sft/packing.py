"""Examples into forward passes: packed blocks that keep documents apart, or padded batches; and the loss.

Packing puts several conversations into one row of at most `max_tokens` tokens instead of padding each to
the longest of its batch. Documents in a row must not attend to each other: each one's position ids start
again at 0 and no attention mask is passed, which is how Hugging Face models read packed rows (transformers
turns position ids that restart into a block-diagonal causal mask, `find_packed_sequence_indices`; flash
attention reads them as variable-length sequences). `packing_is_isolated` checks a model honours it.

    documents   a a a | b b | c c c c          (B, T) input_ids of one block
    positions   0 1 2 | 0 1 | 0 1 2 3          restart per document; the tail's padding is a document too
    labels      - - a | - b | - - c c          the first token of each document is never a target

Whether packed or padded, a step's loss is the same sum over its reply tokens divided by the same count
(`sft_loss`), so packing changes the speed of a step, not its result.
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from rlsys.sft.tokens import IGNORE_INDEX, Example


@dataclass(frozen=True)
class Batch:
    """The tensors of one forward pass, (B, T) each; a packed batch has position ids and no attention mask,
    a padded one the reverse. `tokens`: the documents' tokens, padding excluded (what throughput counts)."""

    input_ids: torch.Tensor
    labels: torch.Tensor  # IGNORE_INDEX where no loss; unshifted: labels[t] is the token at t
    tokens: int
    attention_mask: torch.Tensor | None = None
    position_ids: torch.Tensor | None = None

    def model_inputs(self) -> dict:
        """Keyword arguments of a Hugging Face causal LM's forward (labels excluded: the loss is ours).

        No KV cache: transformers reads restarting position ids as packed documents only without one, and a
        model whose config enables the cache would otherwise build one even in training.
        """
        inputs = {"input_ids": self.input_ids, "attention_mask": self.attention_mask, "use_cache": False}
        if self.position_ids is not None:
            inputs["position_ids"] = self.position_ids
        return inputs


def pack_bins(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Indices of `lengths` grouped into bins of at most `max_tokens` tokens, first-fit decreasing.

    The longest documents are placed first, each into the first bin with room, so bins come out nearly full
    (first-fit decreasing uses at most 11/9 of the optimal number of bins, plus one). Deterministic. A
    document longer than `max_tokens` raises ValueError (the data check refuses such rows first).
    """
    bins: list[list[int]] = []
    room: list[int] = []
    for index in sorted(range(len(lengths)), key=lambda i: (-lengths[i], i)):
        length = lengths[index]
        if length > max_tokens:
            raise ValueError(f"a document of {length} tokens does not fit in a block of {max_tokens}")
        place = next((b for b, free in enumerate(room) if free >= length), None)
        if place is None:
            bins.append([])
            room.append(max_tokens)
            place = len(bins) - 1
        bins[place].append(index)
        room[place] -= length
    return bins


def packed_batch(blocks: Sequence[Sequence[Example]], pad_id: int) -> Batch:
    """Blocks of examples as rows: documents back to back, positions restarting at each, the rows padded to
    the longest block (the padding is a document of its own, with no targets)."""
    width = max(sum(len(e) for e in block) for block in blocks)
    input_ids = torch.full((len(blocks), width), pad_id, dtype=torch.long)
    labels = torch.full((len(blocks), width), IGNORE_INDEX, dtype=torch.long)
    positions = torch.zeros((len(blocks), width), dtype=torch.long)
    for row, block in enumerate(blocks):
        start = 0
        for example in block:
            end = start + len(example)
            input_ids[row, start:end] = torch.tensor(example.input_ids)
            labels[row, start:end] = torch.tensor(example.labels)
            labels[row, start] = IGNORE_INDEX  # predicted from the document before: never a target
            positions[row, start:end] = torch.arange(len(example))
            start = end
        positions[row, start:] = torch.arange(width - start)
    tokens = sum(len(e) for block in blocks for e in block)
    return Batch(input_ids, labels, tokens, position_ids=positions)


def padded_batch(examples: Sequence[Example], pad_id: int) -> Batch:
    """One example per row, right-padded to the longest, with an attention mask (the unpacked layout)."""
    width = max(len(e) for e in examples)
    input_ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE_INDEX, dtype=torch.long)
    for row, example in enumerate(examples):
        input_ids[row, : len(example)] = torch.tensor(example.input_ids)
        mask[row, : len(example)] = 1
        labels[row, : len(example)] = torch.tensor(example.labels)
    return Batch(input_ids, labels, sum(len(e) for e in examples), attention_mask=mask)


def plan_micro_batches(
    lengths: Sequence[int],
    *,
    packing: bool,
    max_tokens: int,
    max_rows: int,
    max_batch_tokens: int | None = None,
) -> list[list[list[int]]]:
    """How a rank's share of a step goes through forward passes: passes, each a list of rows, each row the
    indices of its examples (`lengths[i]` tokens each).

    Packed: the examples go into blocks of at most `max_tokens` (`pack_bins`), consecutive blocks into one
    pass. Padded: one example per row, in the order given. Either way a pass holds at most `max_rows` rows
    and, with `max_batch_tokens`, at most that many tokens (rows x longest row; a row longer than that goes
    alone). A plan costs no tensors, so the pool can count every rank's passes before sending the work.
    """
    rows = pack_bins(lengths, max_tokens) if packing else [[i] for i in range(len(lengths))]
    widths = [sum(lengths[i] for i in row) for row in rows]
    passes: list[list[list[int]]] = []
    longest = 0
    for row, width in zip(rows, widths, strict=True):
        current = passes[-1] if passes else None
        longest = max(longest, width) if current else width
        if (
            current is None
            or len(current) >= max_rows
            or (max_batch_tokens is not None and (len(current) + 1) * longest > max_batch_tokens)
        ):
            passes.append([row])
            longest = width
        else:
            current.append(row)
    return passes


def micro_batches(
    examples: Sequence[Example],
    pad_id: int,
    *,
    packing: bool,
    max_tokens: int,
    max_rows: int,
    max_batch_tokens: int | None = None,
) -> list[Batch]:
    """The forward passes of `plan_micro_batches`, as tensors."""
    plan = plan_micro_batches(
        [len(e) for e in examples],
        packing=packing,
        max_tokens=max_tokens,
        max_rows=max_rows,
        max_batch_tokens=max_batch_tokens,
    )
    if packing:
        return [packed_batch([[examples[i] for i in row] for row in rows], pad_id) for rows in plan]
    return [padded_batch([examples[row[0]] for row in rows], pad_id) for rows in plan]


def sft_loss(
    logits: torch.Tensor, labels: torch.Tensor, num_tokens: int
) -> tuple[torch.Tensor, dict[str, float]]:
    """Next-token cross-entropy over the labelled (reply) tokens, summed and divided by `num_tokens`:

        L = (1 / N) * sum_{b, t: labels[b, t+1] != -100} -log p(labels[b, t+1] | tokens[b, <=t])

    logits (B, T, V) and labels (B, T), unshifted. N is the count of reply tokens in the whole step (every
    micro-batch of every rank), so the losses of a step's parts add up to the step's per-token mean, and
    packing, micro-batching or sharding across ranks leave the gradient unchanged. Metrics: this part's
    share of the mean loss, and its reply tokens.
    """
    targets = labels[:, 1:].to(logits.device)
    summed = F.cross_entropy(
        logits[:, :-1].float().reshape(-1, logits.shape[-1]),
        targets.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )
    loss = summed / num_tokens
    return loss, {"loss": loss.item(), "tokens": float((targets != IGNORE_INDEX).sum())}


@torch.no_grad()
def packing_is_isolated(model, vocab_size: int) -> bool:
    """Whether `model` keeps packed documents apart: a document's logits after another in the same row equal
    its logits alone (up to float noise). A model whose attention ignores restarting position ids fails."""
    first = Example(tuple(range(1, 7)), (IGNORE_INDEX,) * 6)
    second = Example(tuple(range(vocab_size - 5, vocab_size)), (IGNORE_INDEX,) * 5)
    device = next(model.parameters()).device
    packed = packed_batch([[first, second]], pad_id=0)
    together = model(
        input_ids=packed.input_ids.to(device), position_ids=packed.position_ids.to(device), use_cache=False
    ).logits[0, 6:]
    alone = model(input_ids=torch.tensor([second.input_ids], device=device), use_cache=False).logits[0]
    return torch.allclose(together.float(), alone.float(), rtol=1e-3, atol=1e-4)
