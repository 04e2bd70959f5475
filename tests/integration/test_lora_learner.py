"""LoRA through the real learner and engine: only the adapters train, the optimizer state and checkpoints
shrink with them, the engines receive the merged weights (and decode exactly as the learner's policy
would), the KL reference is the frozen base, and a checkpoint restores the adapters."""

import pytest
import torch
from test_grpo_step import _hf_greedy

from actors.pools import RayLearnerPool, RayRolloutPool
from rlsys.config import AlgorithmConfig, LearnerConfig, RolloutConfig, TaskConfig
from rlsys.data import task_prompts
from rlsys.types import Sampling, TrainSequence

pytestmark = pytest.mark.integration

BATCH = [
    TrainSequence((5, 6, 7), tuple(range(30, 30 + n)), advantage, (-2.5,) * n)
    for n, advantage in ((4, 1.0), (6, -1.0), (3, 0.5), (5, -0.5))
]


def _learner(model_dir: str, lora: dict | None, kl_coef: float = 0.0) -> RayLearnerPool:
    config = LearnerConfig(num_cpus=0.25, torch_threads=1, lr=0.05, micro_batch_size=4, lora=lora)
    return RayLearnerPool(model_dir, config, AlgorithmConfig(kl_coef=kl_coef), dtype="float32", seed=0)


def _size(directory) -> int:
    return sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())


def test_lora_trains_adapters_the_engines_receive_merged(tiny_model_dir, ray_runtime, tmp_path):
    ray = ray_runtime
    model_dir = str(tiny_model_dir)
    full = _learner(model_dir, None)
    lora = _learner(model_dir, {"rank": 4, "alpha": 8}, kl_coef=0.1)
    restored = _learner(model_dir, {"rank": 4, "alpha": 8}, kl_coef=0.1)
    rollout = RayRolloutPool(
        model_dir, RolloutConfig(num_cpus=0.5, kv_cache_gib=0.05), dtype="float32", seed=0
    )
    try:
        ray.get([*full.ready_refs(), *lora.ready_refs(), *restored.ready_refs(), *rollout.ready_refs()])
        initial = dict(ray.get(lora.weights()).tensors())
        full_step = full.train_step(BATCH, kl_coef=0.0)
        first = lora.train_step(BATCH, kl_coef=0.1)
        # The adapters start as zero updates: the policy is its base, and the KL to it is exactly 0.
        assert first["kl"] == pytest.approx(0.0, abs=1e-7)
        second = lora.train_step(BATCH, kl_coef=0.1)
        assert second["kl"] > 0
        full_mb, lora_mb = full_step["optimizer_state_mb"], second["optimizer_state_mb"]
        print(f"optimizer state: full {full_mb:.3f} MB, lora {lora_mb:.3f} MB")
        assert full_mb >= 10 * lora_mb

        weights_ref = lora.weights()
        merged = dict(ray.get(weights_ref).tensors())
        assert set(merged) == set(initial)  # the base model's names: what the engines load
        assert max((merged[k] - initial[k]).abs().max().item() for k in initial) > 1e-4
        sync = rollout.sync_weights(weights_ref, version=1)
        assert sync["sync/verified"] == 1.0
        greedy = Sampling(n=1, temperature=0.0, max_new_tokens=10)
        prompts = task_prompts(TaskConfig(), "rl", 3)
        answers = [
            group
            for _, group in sorted(
                p for chunk in rollout.generate(prompts, greedy, [None] * 3) for p in chunk
            )
        ]
        prompt_ids = [group[0].prompt_token_ids for group in answers]
        assert all(group[0].policy_version == 1 for group in answers)
        assert [list(group[0].token_ids) for group in answers] == _hf_greedy(
            model_dir, merged, prompt_ids, 10
        )

        lora.save_checkpoint(str(tmp_path / "lora"), "step-2", {"step": 2})
        full.save_checkpoint(str(tmp_path / "full"), "step-1", {"step": 1})
        assert _size(tmp_path / "lora") * 5 < _size(tmp_path / "full")  # no frozen base, small optimizer
        assert restored.load_checkpoint(str(tmp_path / "lora"), "step-2")["step"] == 2
        again = dict(ray.get(restored.weights()).tensors())
        assert all(torch.equal(again[k], merged[k]) for k in merged)

        lora.save_pretrained(str(tmp_path / "policy"))
        from transformers import AutoModelForCausalLM

        saved = AutoModelForCausalLM.from_pretrained(tmp_path / "policy", dtype=torch.float32).state_dict()
        assert all(torch.equal(saved[k], merged[k]) for k in saved)
    finally:
        for pool in (full, lora, restored, rollout):
            pool.shutdown()
