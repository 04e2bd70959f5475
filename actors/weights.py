"""The policy's weights in one contiguous byte buffer, for the trip from the learner to the engines.

A list of ~150 tensors costs a pickle per tensor on the way into Ray's object store and a copy per tensor out
of it. One numpy byte array costs one copy in, and comes out of the object store as a zero-copy view of shared
memory: every engine on a node reads the same pages, and `tensors()` hands `reload_weights` views into them.
Bytes, not a numpy dtype, because numpy has no bfloat16.

The buffer carries a fingerprint of itself, taken where it is packed (the learner): a digest per tensor of a
few sampled slices. After loading, an engine takes the same digests of the tensors it now serves
(`served_fingerprint`), and the rollout pool compares the two (`WeightCheck`): a sync that did not arrive, or
did not land, fails loudly instead of the next step sampling from stale weights.
"""

from __future__ import annotations

import hashlib
import math
import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

# Each tensor starts on a 64-byte boundary: a cache line, and a multiple of every dtype's element size.
_ALIGN = 64
# A tensor's fingerprint reads this many windows of this many elements, spread evenly over it: a few hundred
# bytes per tensor whatever the model's size, and every row band of a matrix is likely to be touched.
FINGERPRINT_WINDOWS = 8
FINGERPRINT_WIDTH = 32


@dataclass(frozen=True)
class TensorSlot:
    name: str
    dtype: torch.dtype
    shape: tuple[int, ...]
    offset: int  # in bytes, into the buffer


@dataclass(frozen=True)
class PackedWeights:
    """Named tensors laid end to end in one byte buffer."""

    slots: tuple[TensorSlot, ...]
    buffer: np.ndarray  # uint8
    # Tensor name -> digest of its sampled slices, taken when packed (`fingerprint`).
    fingerprint: dict[str, str] = field(default_factory=dict)

    @classmethod
    def pack(cls, named: Iterable[tuple[str, torch.Tensor]]) -> PackedWeights:
        """Copy each tensor once, into its slot of a fresh buffer (the tensors may live on any device), and
        fingerprint the copy."""
        named = list(named)
        slots, offset = [], 0
        for name, tensor in named:
            slots.append(TensorSlot(name, tensor.dtype, tuple(tensor.shape), offset))
            offset += -(-tensor.numel() * tensor.element_size() // _ALIGN) * _ALIGN
        buffer = torch.empty(offset, dtype=torch.uint8)
        for slot, (_, tensor) in zip(slots, named, strict=True):
            _view(buffer, slot).copy_(tensor.detach())
        prints = {slot.name: tensor_digest(_view(buffer, slot).reshape(-1)) for slot in slots}
        return cls(tuple(slots), buffer.numpy(), prints)

    def tensors(self) -> list[tuple[str, torch.Tensor]]:
        """(name, tensor) views into the buffer: no copy. Read them, do not write them."""
        with warnings.catch_warnings():
            # A buffer from the object store is read-only shared memory; torch warns that its tensor is not.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            buffer = torch.from_numpy(self.buffer)
        return [(slot.name, _view(buffer, slot)) for slot in self.slots]


def _view(buffer: torch.Tensor, slot: TensorSlot) -> torch.Tensor:
    size = math.prod(slot.shape) * slot.dtype.itemsize
    return buffer[slot.offset : slot.offset + size].view(slot.dtype).view(slot.shape)


def _windows(numel: int) -> list[tuple[int, int]]:
    """[start, end) of the sampled windows of a tensor of `numel` elements: evenly spread, first and last
    elements included; the whole tensor when it is small."""
    if numel <= FINGERPRINT_WINDOWS * FINGERPRINT_WIDTH:
        return [(0, numel)]
    last = numel - FINGERPRINT_WIDTH
    starts = sorted({round(i * last / (FINGERPRINT_WINDOWS - 1)) for i in range(FINGERPRINT_WINDOWS)})
    return [(start, start + FINGERPRINT_WIDTH) for start in starts]


def tensor_digest(flat: torch.Tensor, numel: int | None = None, dtype: torch.dtype | None = None) -> str:
    """A 16-hex-digit digest of the sampled windows of the first `numel` elements of the 1-D tensor `flat`.

    The windows depend only on `numel`, so an engine's copy of a tensor (possibly longer: vLLM pads a
    vocabulary) digests the same elements as the learner's. `dtype`: read the elements as this dtype first
    (the learner's), so an engine that stores a tensor wider than it was sent still matches. Exact: one
    differing bit in a window changes the digest; an element outside every window goes unseen.
    """
    numel = flat.numel() if numel is None else numel
    parts = [flat[start:end] for start, end in _windows(numel)]
    sample = torch.cat(parts) if len(parts) > 1 else parts[0]
    sample = sample.detach().to(device="cpu", dtype=dtype or sample.dtype).contiguous()
    return hashlib.blake2b(sample.view(torch.uint8).numpy().tobytes(), digest_size=8).hexdigest()


def served_fingerprint(
    params: Iterable[tuple[str, torch.Tensor]], slots: Sequence[TensorSlot]
) -> dict[str, str]:
    """Digests of the tensors an engine serves that hold a packed tensor whole, under the same name.

    An engine does not keep every tensor as sent: vLLM fuses q/k/v and gate/up under new names, its CPU build
    repacks linear weights into kernel formats (leaving an empty `weight`), and tensor parallelism shards
    them. What stays comparable is a tensor under its own name whose leading rows hold the sent tensor (the
    embedding, padded to a multiple of 64 rows; the norms); the rest is left out.
    """
    by_name = {slot.name: slot for slot in slots}
    prints = {}
    for name, param in params:
        slot = by_name.get(name)
        if slot is None or not _holds(param, slot):
            continue
        prints[name] = tensor_digest(param.detach().reshape(-1), math.prod(slot.shape), slot.dtype)
    return prints


def _holds(param: torch.Tensor, slot: TensorSlot) -> bool:
    """Whether `param`'s leading elements are the slot's tensor: same trailing dims, at least as many rows."""
    shape = tuple(param.shape)
    if len(shape) != len(slot.shape) or not param.is_contiguous():
        return False
    if not shape:
        return True
    return shape[1:] == slot.shape[1:] and shape[0] >= slot.shape[0] and math.prod(slot.shape) > 0


@dataclass(frozen=True)
class WeightCheck:
    """What an engine reports after loading new weights: the learner's fingerprint it was sent (taken where
    the weights were packed) and its own, one per vLLM worker (tensor-parallel shards), of what it serves."""

    version: int
    learner: dict[str, str]
    served: tuple[dict[str, str], ...]
    load_s: float  # the load itself
    fingerprint_s: float  # reading back the served weights' fingerprint

    def problem(self) -> str | None:
        """Why the served weights are not proven to be the learner's (None: they are)."""
        if not self.served:
            return "no worker reported the weights it serves"
        for worker, served in enumerate(self.served):
            compared = sorted(self.learner.keys() & served.keys())
            if not compared:
                return (
                    f"worker {worker} serves none of the {len(self.learner)} sent tensors under their own "
                    "names, so the load cannot be verified"
                )
            differ = [name for name in compared if served[name] != self.learner[name]]
            if differ:
                shown = ", ".join(differ[:3]) + (f" and {len(differ) - 3} more" if len(differ) > 3 else "")
                return (
                    f"worker {worker} serves weights that differ from the learner's in {len(differ)} of "
                    f"{len(compared)} checked tensors ({shown}): the new weights did not land"
                )
        return None
