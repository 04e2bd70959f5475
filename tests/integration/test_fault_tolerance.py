"""Actors die mid-step; the step still completes with every sample, from engines holding current weights."""

import pytest
import torch

from actors.pools import RayRolloutPool, RayVerifierPool
from actors.weights import PackedWeights
from rlsys.config import RolloutConfig, TaskConfig, VerifierConfig
from rlsys.data import task_prompts
from rlsys.scoring import sample_and_score
from rlsys.types import Sampling

pytestmark = pytest.mark.integration


def test_step_survives_killed_rollout_and_verifier_actors(tiny_model_dir, ray_runtime):
    from transformers import AutoModelForCausalLM

    ray = ray_runtime
    rollout = RayRolloutPool(
        str(tiny_model_dir),
        RolloutConfig(replicas=2, num_cpus=0.5, kv_cache_gib=0.05, max_restarts=2),
        dtype="float32",
        seed=0,
    )
    verifier = RayVerifierPool(VerifierConfig(replicas=2, num_cpus=0.1))
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(1.01)
    rollout.sync_weights(ray.put(PackedWeights.pack(model.state_dict().items())), version=7)

    prompts = task_prompts(TaskConfig(), "rl", 8)
    sampling = Sampling(n=3, temperature=1.0, max_new_tokens=24)
    chunks = rollout.generate(prompts, sampling, list(range(8)))  # sent to both engines at once
    ray.kill(rollout.actors[0], no_restart=False)  # dies mid-generation; Ray restarts it with old weights
    ray.kill(verifier.actors[0], no_restart=True)  # gone for good: its share goes to the other verifier
    indices = sorted(index for chunk in chunks for index, _ in chunk)
    assert indices == list(range(8))  # one group per prompt
    assert rollout.retried_tasks >= 1

    scored = sample_and_score(rollout, [verifier], prompts, sampling, list(range(8)))
    groups, rewards = scored.groups, scored.rewards
    assert [len(group) for group in groups] == [3] * 8
    assert [len(group_rewards) for group_rewards in rewards] == [3] * 8
    assert [group[0].prompt_id for group in groups] == [p.id for p in prompts]
    assert verifier.retried_tasks >= 1
    # The restarted engine was brought to the current weights before it served again.
    assert {s.policy_version for group in groups for s in group} == {7}


def test_lost_learner_rank_fails_the_step_loudly(tiny_model_dir, ray_runtime):
    from ray.exceptions import RayActorError

    from actors.pools import RayLearnerPool
    from rlsys.config import AlgorithmConfig, LearnerConfig
    from rlsys.types import TrainSequence

    ray = ray_runtime
    learner = RayLearnerPool(
        str(tiny_model_dir), LearnerConfig(num_cpus=0.5), AlgorithmConfig(), dtype="float32", seed=0
    )
    sequence = TrainSequence((1, 2, 3), (4, 5), 1.0, (-1.0, -1.0))
    assert "policy_loss" in learner.train_step([sequence, sequence], kl_coef=0.0, off_policy=False)
    ray.kill(learner.actors[0])  # its optimizer state is gone: no restart, no silent re-dispatch
    with pytest.raises(RayActorError):
        learner.train_step([sequence, sequence], kl_coef=0.0, off_policy=False)
