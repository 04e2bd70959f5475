"""The weights' fingerprint: what the learner packs beside its weights and what an engine reads back after a
load must agree exactly when the load landed, and disagree when it did not."""

import pickle

import pytest
import torch

from actors.weights import (
    FINGERPRINT_WIDTH,
    FINGERPRINT_WINDOWS,
    PackedWeights,
    WeightCheck,
    served_fingerprint,
    tensor_digest,
)


def _named(seed: int = 0) -> list[tuple[str, torch.Tensor]]:
    generator = torch.Generator().manual_seed(seed)
    return [
        ("model.embed_tokens.weight", torch.randn(50, 16, generator=generator)),
        ("model.norm.weight", torch.randn(16, generator=generator).to(torch.bfloat16)),
        ("model.layers.0.self_attn.q_proj.weight", torch.randn(16, 16, generator=generator)),
        ("scalar", torch.tensor(2.5, dtype=torch.float64)),
        ("mask", torch.tensor([True, False, True])),
        ("empty", torch.zeros(0, 4)),
    ]


def _check(learner: dict, *served: dict) -> WeightCheck:
    return WeightCheck(version=3, learner=learner, served=served, load_s=0.0, fingerprint_s=0.0)


def test_pack_fingerprints_every_tensor_and_the_fingerprint_travels_with_the_weights():
    packed = pickle.loads(pickle.dumps(PackedWeights.pack(_named())))
    assert sorted(packed.fingerprint) == sorted(name for name, _ in _named())
    assert all(len(digest) == 16 for digest in packed.fingerprint.values())


def test_an_engine_serving_the_same_tensors_matches_and_one_changed_element_does_not():
    packed = PackedWeights.pack(_named())
    served = {name: tensor.clone() for name, tensor in _named()}
    prints = served_fingerprint(served.items(), packed.slots)
    assert prints == {name: packed.fingerprint[name] for name in packed.fingerprint if name != "empty"}
    assert _check(packed.fingerprint, served_fingerprint(served.items(), packed.slots)).problem() is None

    served["model.norm.weight"][0] += 1  # the first element is in the first window
    check = _check(packed.fingerprint, served_fingerprint(served.items(), packed.slots))
    assert "model.norm.weight" in check.problem() and "1 of 5" in check.problem()


def test_stale_weights_are_told_apart_from_new_ones():
    """An engine that skipped the load serves the previous weights: every trained tensor differs."""
    old, new = PackedWeights.pack(_named(seed=0)), PackedWeights.pack(_named(seed=1))
    check = _check(new.fingerprint, served_fingerprint(_named(seed=0), old.slots))
    assert "did not land" in check.problem()


def test_the_engine_side_reads_only_tensors_it_holds_whole_under_their_own_names():
    """vLLM pads the vocabulary (extra rows), fuses q/k/v under a new name and on CPU empties linear weights
    it repacked: the padded embedding still compares on its leading rows, the rest is left out."""
    named = dict(_named())
    packed = PackedWeights.pack(named.items())
    embed = named["model.embed_tokens.weight"]
    served = {
        "model.embed_tokens.weight": torch.cat([embed, torch.zeros(14, 16)]),  # padded to 64 rows
        "model.norm.weight": named["model.norm.weight"].float(),  # kept wider than it was sent
        "model.layers.0.self_attn.qkv_proj.weight": torch.randn(48, 16),  # fused: another name
        "model.layers.0.self_attn.q_proj.weight": torch.empty(0),  # repacked away
    }
    prints = served_fingerprint(served.items(), packed.slots)
    assert sorted(prints) == ["model.embed_tokens.weight", "model.norm.weight"]
    assert all(prints[name] == packed.fingerprint[name] for name in prints)


def test_a_worker_serving_none_of_the_sent_tensors_cannot_be_verified():
    packed = PackedWeights.pack(_named())
    assert "cannot be verified" in _check(packed.fingerprint, {}).problem()
    assert "no worker" in _check(packed.fingerprint).problem()
    # Tensor-parallel workers each report; one that differs fails the check.
    good = dict(packed.fingerprint)
    bad = {**good, "scalar": "0" * 16}
    assert _check(packed.fingerprint, good, bad).problem().startswith("worker 1 ")


@pytest.mark.parametrize("numel", [1, FINGERPRINT_WINDOWS * FINGERPRINT_WIDTH, 10_000_000])
def test_the_digest_reads_a_bounded_sample_that_includes_both_ends(numel):
    flat = torch.zeros(numel)
    base = tensor_digest(flat)
    for position in (0, numel - 1):
        changed = flat.clone()
        changed[position] = 1.0
        assert tensor_digest(changed) != base
    if numel > FINGERPRINT_WINDOWS * FINGERPRINT_WIDTH:  # a sample, not the whole tensor
        changed = flat.clone()
        changed[FINGERPRINT_WIDTH + 1] = 1.0  # between the first two windows
        assert tensor_digest(changed) == base
