"""Packing samples into tensors, planning micro-batches across ranks, and the deterministic prompt order."""

import pytest
import torch

from rlsys.batch import micro_batches, pack, padding_of, plan_micro_batches
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


def test_padding_rows_pack_with_no_response_mask():
    batch = pack([_seq([5, 6], [8, 9]), padding_of(_seq([5], [4, 3]))], pad_id=0)
    assert batch.response_mask.tolist() == [[0, 1, 1], [0, 0, 0]]
    assert batch.advantages.tolist() == [1.0, 0.0]


@pytest.mark.parametrize(("count", "ranks", "size"), [(10, 3, 2), (7, 2, 1), (1, 4, 8), (5, 5, 1), (3, 1, 2)])
def test_every_rank_runs_as_many_micro_batches_and_every_sequence_trains_once(count, ranks, size):
    seqs = [_seq([1] * n, [2] * (n % 4 + 1), advantage=float(n)) for n in range(1, count + 1)]
    plans = plan_micro_batches(seqs, ranks, size)
    assert len(plans) == ranks and len({len(plan) for plan in plans}) == 1
    trained = [s for plan in plans for chunk in plan for s in chunk if not s.padding]
    assert sorted(trained, key=lambda s: s.advantage) == seqs
    assert all(len(chunk) <= size for plan in plans for chunk in plan)
    padding = [chunk for plan in plans for chunk in plan if any(s.padding for s in chunk)]
    assert all(len(chunk) == 1 and chunk[0].advantage == 0 for chunk in padding)
    assert len(padding) == ranks * len(plans[0]) - len(micro_batches(seqs, size))


def test_plans_balance_padded_tokens():
    seqs = [_seq([1] * n, [2] * n) for n in range(1, 13)]
    plans = plan_micro_batches(seqs, 3, 2)
    padded = [[len(c) * max(len(s.prompt_token_ids) + len(s.token_ids) for s in c) for c in p] for p in plans]
    loads = [sum(plan) for plan in padded]
    assert max(loads) - min(loads) <= 24  # the heaviest micro-batch's padded tokens


def test_a_step_without_sequences_is_refused():
    with pytest.raises(ValueError, match="at least one sequence"):
        plan_micro_batches([], 2, 4)


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
