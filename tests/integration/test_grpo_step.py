"""One real GRPO step through Ray: vLLM samples, the verifier pool scores, DeepSpeed updates, weights sync;
then one learner step for every `algorithm.name`.

The weight-sync check: after a sync, vLLM's greedy output equals Hugging Face greedy output computed from
the learner's weights, and those weights really differ from the ones the engine started with.
"""

import math

import pytest
import torch

from actors.pools import RayLearnerPool, RayRolloutPool, RayVerifierPool
from rlsys.batch import training_batch
from rlsys.config import (
    ALGORITHM_PRESETS,
    AlgorithmConfig,
    LearnerConfig,
    RolloutConfig,
    TaskConfig,
    VerifierConfig,
)
from rlsys.data import task_prompts
from rlsys.scoring import sample_and_score
from rlsys.types import Reward, Sample, Sampling, TrainSequence

pytestmark = pytest.mark.integration


def _hf_greedy(model_dir, weights, prompt_ids: list[tuple[int, ...]], max_new_tokens: int) -> list[list[int]]:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32)
    model.load_state_dict(dict(weights))
    outputs = []
    for ids in prompt_ids:
        prompt = torch.tensor([list(ids)])
        generated = model.generate(
            prompt,
            max_new_tokens=max_new_tokens,
            do_sample=False,
            eos_token_id=model.generation_config.eos_token_id,
        )
        outputs.append(generated[0, prompt.shape[1] :].tolist())
    return outputs


def test_grpo_step_and_weight_sync(tiny_model_dir, ray_runtime):
    ray = ray_runtime
    model_dir = str(tiny_model_dir)
    rollout = RayRolloutPool(model_dir, RolloutConfig(num_cpus=1, kv_cache_gib=0.05), dtype="float32", seed=0)
    rewards = {"math": 1.0, "format": 0.5}
    verifier = RayVerifierPool(VerifierConfig(replicas=2, num_cpus=0.1, rewards=rewards))
    # A large learning rate, so one step visibly changes what greedy decoding picks.
    learner = RayLearnerPool(
        model_dir,
        LearnerConfig(num_cpus=0.5, lr=0.05, micro_batch_size=8),
        AlgorithmConfig(),
        dtype="float32",
        seed=0,
    )
    prompts = task_prompts(TaskConfig(), "rl", 4)
    sampling = Sampling(n=4, temperature=1.0, max_new_tokens=16)
    scored = sample_and_score(rollout, [verifier], prompts, sampling, seeds=[1, 2, 3, 4])
    groups, rewards = scored.groups, scored.rewards

    assert [len(g) for g in groups] == [4] * 4 and [len(r) for r in rewards] == [4] * 4
    assert all(s.policy_version == 0 and len(s.token_ids) == len(s.logprobs) > 0 for g in groups for s in g)
    assert all(set(r.components) == {"math", "format"} for group in rewards for r in group)

    initial = dict(ray.get(learner.weights()).tensors())
    # A barely trained model rarely scores, so the step uses fixed advantages: the plumbing is under test.
    sequences = [
        TrainSequence(s.prompt_token_ids, s.token_ids, 1.0 if i % 2 else -1.0, s.logprobs)
        for group in groups
        for i, s in enumerate(group)
    ]
    metrics = learner.train_step(sequences, kl_coef=0.0)
    assert {"policy_loss", "entropy", "grad_norm", "clip_fraction"} <= set(metrics)
    assert metrics["entropy"] > 0 and metrics["grad_norm"] > 0
    # On-policy: the learner's log-probs of sampled tokens match vLLM's up to numerics.
    assert metrics["logprob_mismatch"] < 0.05

    weights_ref = learner.weights()
    updated = dict(ray.get(weights_ref).tensors())
    assert max((updated[k] - initial[k]).abs().max().item() for k in initial) > 1e-3

    rollout.sync_weights(weights_ref, version=1)
    greedy = Sampling(n=1, temperature=0.0, max_new_tokens=12)
    after = [
        group
        for _, group in sorted(p for chunk in rollout.generate(prompts, greedy, [None] * 4) for p in chunk)
    ]
    assert all(group[0].policy_version == 1 for group in after)

    prompt_ids = [group[0].prompt_token_ids for group in after]
    expected = _hf_greedy(model_dir, updated, prompt_ids, 12)
    assert [list(group[0].token_ids) for group in after] == expected
    # The sync mattered: the starting weights decode differently.
    assert _hf_greedy(model_dir, initial, prompt_ids, 12) != expected


def _scored_groups() -> tuple[list[list[Sample]], list[list[Reward]]]:
    """4 prompts x 4 samples of 2-8 response tokens with rewards that leave every estimator something to
    train on (a solved group for rft, mixed groups for the baselines, long answers for DAPO's penalty)."""
    scores = [[1, 0, 0, 1], [1, 1, 0, 0], [0, 0, 0, 1], [1, 1, 1, 1]]
    lengths = [[2, 8, 3, 7], [4, 5, 8, 2], [6, 3, 5, 8], [3, 4, 5, 6]]
    groups = [
        [
            Sample(f"p{p}", (5, 6, 7 + p), tuple(range(20 + g, 20 + g + n)), "", (-2.0,) * n, "stop", 0)
            for g, n in enumerate(row)
        ]
        for p, row in enumerate(lengths)
    ]
    return groups, [[Reward(float(score)) for score in row] for row in scores]


def _learner(model_dir: str, algorithm: AlgorithmConfig, replicas: int = 1) -> RayLearnerPool:
    # Ten ranks start together on 2 CPUs: a fifth of a CPU and one torch thread each.
    config = LearnerConfig(replicas=replicas, num_cpus=0.2, torch_threads=1, lr=0.01, micro_batch_size=4)
    return RayLearnerPool(model_dir, config, algorithm, dtype="float32", seed=0)


def test_every_algorithm_trains_through_the_learner_pool(tiny_model_dir, ray_runtime):
    """Each `algorithm.name` from scored groups to a DeepSpeed step: its estimator, loss and aggregation run
    in the real learner, the weights move and the metrics are finite. A 2-rank learner takes the same step
    as the 1-rank one on a loss whose denominator is the batch's sequence count (Dr. GRPO's)."""
    ray = ray_runtime
    model_dir = str(tiny_model_dir)
    # The KL paths run where the presets put them: a k3 loss term (grpo), a k1 reward (reinforce_pp).
    with_kl = {"grpo", "reinforce_pp"}
    # ppo's learner step takes the per-token advantages of its critic: tests/integration/test_ppo_step.py.
    algorithms = {
        name: AlgorithmConfig(name=name, max_response_tokens=8, kl_coef=0.05 if name in with_kl else 0.0)
        for name in ALGORITHM_PRESETS
        if name != "ppo"
    }
    pools = {name: _learner(model_dir, algorithm) for name, algorithm in algorithms.items()}
    two_ranks = _learner(model_dir, algorithms["dr_grpo"], replicas=2)
    try:
        ray.get([ref for pool in [*pools.values(), two_ranks] for ref in pool.ready_refs()])
        initial = dict(ray.get(pools["grpo"].weights()).tensors())
        groups, rewards = _scored_groups()
        batches = {
            name: training_batch(groups, rewards, algorithm)[0] for name, algorithm in algorithms.items()
        }
        for name, pool in pools.items():
            metrics = pool.train_step(batches[name], kl_coef=algorithms[name].kl_coef)
            expected = {
                "policy_loss",
                "entropy",
                "grad_norm",
                "ratio",
                "clip_fraction_low",
                "clip_fraction_high",
            }
            assert expected | ({"kl"} if name in with_kl else set()) <= set(metrics), name
            assert all(math.isfinite(value) for value in metrics.values()), (name, metrics)
            assert metrics["grad_norm"] > 0 and metrics["ratio"] == pytest.approx(1.0, abs=1e-5), name
            updated = dict(ray.get(pool.weights()).tensors())
            assert max((updated[k] - initial[k]).abs().max().item() for k in initial) > 1e-4, name
            if name == "dr_grpo":
                sharded = two_ranks.train_step(batches[name], kl_coef=0.0)
                for key in ("policy_loss", "grad_norm", "entropy"):
                    assert sharded[key] == pytest.approx(metrics[key], rel=1e-4), key
    finally:
        for pool in [*pools.values(), two_ranks]:
            for actor in pool.actors:
                ray.kill(actor)
