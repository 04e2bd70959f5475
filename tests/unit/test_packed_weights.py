import pickle

import pytest
import torch

from actors.weights import PackedWeights


def _named() -> list[tuple[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(0)
    return [
        ("embed.weight", torch.randn(7, 5, generator=generator)),
        ("norm.weight", torch.randn(3, generator=generator).to(torch.bfloat16)),  # numpy has no bfloat16
        ("scalar", torch.tensor(2.5, dtype=torch.float64)),
        ("mask", torch.tensor([True, False, True])),
        ("empty", torch.zeros(0, 4)),
        ("strided", torch.randn(4, 6, generator=generator).t()),  # not contiguous
    ]


def test_pack_round_trips_names_dtypes_shapes_and_values():
    named = _named()
    packed = PackedWeights.pack(named)
    unpacked = packed.tensors()
    assert [name for name, _ in unpacked] == [name for name, _ in named]
    for (_, original), (_, restored) in zip(named, unpacked, strict=True):
        assert restored.dtype == original.dtype and restored.shape == original.shape
        assert torch.equal(restored, original)


def test_slots_are_aligned_and_views_share_the_buffer():
    packed = PackedWeights.pack(_named())
    assert all(slot.offset % 64 == 0 for slot in packed.slots)
    nbytes = packed.buffer.nbytes
    assert nbytes % 64 == 0 and nbytes >= 7 * 5 * 4 + 3 * 2 + 8 + 3 + 24 * 4
    buffer_start = packed.buffer.ctypes.data
    for slot, (_, tensor) in zip(packed.slots, packed.tensors(), strict=True):
        if tensor.numel():
            assert tensor.data_ptr() == buffer_start + slot.offset  # a view, not a copy


def test_the_packed_copy_does_not_follow_later_training():
    weight = torch.ones(4)
    packed = PackedWeights.pack([("w", weight)])
    weight.add_(1.0)  # the learner's next optimizer step
    assert torch.equal(packed.tensors()[0][1], torch.ones(4))


def test_pickled_weights_survive_the_trip_and_read_only_buffers_unpack(recwarn):
    packed = pickle.loads(pickle.dumps(PackedWeights.pack(_named())))
    packed.buffer.setflags(write=False)  # as Ray's object store hands it out
    restored = dict(packed.tensors())
    assert torch.equal(restored["norm.weight"], _named()[1][1])
    assert not [w for w in recwarn if "not writable" in str(w.message)]


def test_through_the_object_store_without_copying(ray_runtime):
    packed = PackedWeights.pack(_named())
    fetched = ray_runtime.get(ray_runtime.put(packed))
    assert not fetched.buffer.flags.writeable  # a view of shared memory, not a private copy
    for (_, original), (_, restored) in zip(_named(), fetched.tensors(), strict=True):
        assert torch.equal(restored, original)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16, torch.int64])
def test_each_dtype_packs(dtype):
    tensor = (torch.arange(12) - 5).to(dtype).reshape(3, 4)
    assert torch.equal(PackedWeights.pack([("t", tensor)]).tensors()[0][1], tensor)
