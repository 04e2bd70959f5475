"""The policy's weights in one contiguous byte buffer, for the trip from the learner to the engines.

A list of ~150 tensors costs a pickle per tensor on the way into Ray's object store and a copy per tensor out
of it. One numpy byte array costs one copy in, and comes out of the object store as a zero-copy view of shared
memory: every engine on a node reads the same pages, and `tensors()` hands `reload_weights` views into them.
Bytes, not a numpy dtype, because numpy has no bfloat16.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch

# Each tensor starts on a 64-byte boundary: a cache line, and a multiple of every dtype's element size.
_ALIGN = 64


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

    @classmethod
    def pack(cls, named: Iterable[tuple[str, torch.Tensor]]) -> PackedWeights:
        """Copy each tensor once, into its slot of a fresh buffer (the tensors may live on any device)."""
        named = list(named)
        slots, offset = [], 0
        for name, tensor in named:
            slots.append(TensorSlot(name, tensor.dtype, tuple(tensor.shape), offset))
            offset += -(-tensor.numel() * tensor.element_size() // _ALIGN) * _ALIGN
        buffer = torch.empty(offset, dtype=torch.uint8)
        for slot, (_, tensor) in zip(slots, named, strict=True):
            _view(buffer, slot).copy_(tensor.detach())
        return cls(tuple(slots), buffer.numpy())

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
