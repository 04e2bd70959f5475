"""Packing samples into tensors, sharding across ranks, and the deterministic prompt order."""

import torch

from rlsys.batch import micro_batches, pack, response_token_count, shard
from rlsys.config import TaskConfig
from rlsys.data import task_prompts
from rlsys.order import request_seed, step_batch
from rlsys.types import TrainSequence


def _seq(prompt, response, advantage=1.0):
    return TrainSequence(
        tuple(prompt), tuple(response), advantage, tuple(-0.1 * (i + 1) for i in range(len(response)))
    )


def test_pack_aligns_targets_and_response_mask():
    batch = pack([_seq([5, 6, 7], [8, 9]), _seq([5], [4, 3, 2])], pad_id=0)
    assert batch.input_ids.tolist() == [[5, 6, 7, 8, 9], [5, 4, 3, 2, 0]]
    assert batch.targets.tolist() == [[6, 7, 8, 9], [4, 3, 2, 0]]
    # Response targets: tokens 8, 9 (positions 2, 3) and 4, 3, 2 (positions 0..2).
    assert batch.response_mask.tolist() == [[0, 0, 1, 1], [1, 1, 1, 0]]
    assert torch.allclose(batch.sampler_logprobs[1, :3], torch.tensor([-0.1, -0.2, -0.3]))
    assert batch.attention_mask.tolist() == [[1, 1, 1, 1, 1], [1, 1, 1, 1, 0]]


def test_shard_keeps_every_sequence_and_balances_tokens():
    seqs = [_seq([1] * n, [2] * n) for n in range(1, 11)]
    shards = shard(seqs, 3)
    assert sorted(len(s.token_ids) for part in shards for s in part) == list(range(1, 11))
    loads = [response_token_count(part) for part in shards]
    assert max(loads) - min(loads) <= 10


def test_micro_batches_cover_all():
    seqs = [_seq([1], [2] * n) for n in (5, 1, 3, 2, 4)]
    chunks = micro_batches(seqs, 2)
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert sorted(len(s.token_ids) for c in chunks for s in c) == [1, 2, 3, 4, 5]


def test_micro_batches_cap_padded_tokens():
    # Total lengths (prompt 1 + response n): 2, 3, 4, 9, 10, 21.
    seqs = [_seq([1], [2] * n) for n in (20, 1, 9, 2, 3, 8)]
    chunks = micro_batches(seqs, size=10, max_tokens=20)
    lengths = [[len(s.prompt_token_ids) + len(s.token_ids) for s in chunk] for chunk in chunks]
    assert lengths == [[2, 3, 4], [9, 10], [21]]  # 3x4 and 2x10 padded tokens; 21 alone, over the cap
    assert all(len(c) * max(row) <= 20 for c, row in zip(chunks, lengths, strict=True) if len(c) > 1)
    assert micro_batches(seqs, size=10) == [sorted(seqs, key=lambda s: len(s.token_ids))]  # no cap
    assert [len(c) for c in micro_batches(seqs, size=2, max_tokens=1000)] == [2, 2, 2]


def test_step_batches_are_deterministic_and_cover_each_epoch():
    prompts = task_prompts(TaskConfig(), "rl", 40)
    first = [p.id for step in range(5) for p in step_batch(prompts, step, 8, seed=3)]
    again = [p.id for step in range(5) for p in step_batch(prompts, step, 8, seed=3)]
    assert first == again
    assert sorted(first) == sorted(p.id for p in prompts)  # one epoch: each prompt once
    other = [p.id for step in range(5) for p in step_batch(prompts, step, 8, seed=4)]
    assert other != first


def test_training_and_eval_prompts_are_disjoint():
    train = {p.messages[-1]["content"] for p in task_prompts(TaskConfig(), "rl", 2000)}
    held_out = {p.messages[-1]["content"] for p in task_prompts(TaskConfig(), "eval", 500)}
    assert len(held_out) == 500
    assert not train & held_out


def test_request_seeds_differ_by_step_and_index():
    seeds = {request_seed(0, step, i) for step in range(20) for i in range(16)}
    assert len(seeds) == 320
