"""Elastic pools on the tiny model: the rollout pool grown from 1 to 2 engines mid-run and shrunk back, and
the reward-model pool likewise, doing their work all the while.

The rollout pool is driven the way the loop drives it: sample, train, sync the weights as the next policy
version, and resize there, between rollouts. The backlogs handed to `autoscale` are chosen to grow or shrink
the pool (the decision rule itself is pinned down in tests/unit/test_elastic_scaling.py). A new engine must
serve only after a weight sync has given it the learner's current weights, checked by their fingerprint
(`sync/verified`), and every sample of every step, from either engine, must be of the policy version that
step expects (`rlsys.versions.staleness_of`).
"""

import time

import pytest
from fakes import answers

from actors.cluster import await_started
from actors.pools import RayLearnerPool, RayRewardPool, RayRolloutPool
from rlsys.config import AlgorithmConfig, LearnerConfig, RewardModelConfig, RolloutConfig, TaskConfig
from rlsys.data import task_prompts
from rlsys.types import Sampling, TrainSequence
from rlsys.versions import staleness_of

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1200)]

PROMPTS = task_prompts(TaskConfig(), "rl", 4)
SAMPLING = Sampling(n=4, temperature=1.0, max_new_tokens=12)
GROW = {"queued": 1e6, "budget_s": 1e-3}  # far more work than one engine clears in the budget
IDLE = {"queued": 0, "budget_s": 1.0}


def _rollout_step(rollout: RayRolloutPool, learner: RayLearnerPool, step: int, served: dict[int, set[int]]):
    """One step as the loop takes it; `served` collects, per engine, the policy versions of its samples."""
    served_before = {number: set(versions) for number, versions in served.items()}
    chunks = [
        pair for chunk in rollout.generate(PROMPTS, SAMPLING, list(range(len(PROMPTS)))) for pair in chunk
    ]
    groups = [group for _, group in sorted(chunks, key=lambda pair: pair[0])]
    assert staleness_of(groups, step, max_staleness=0) == [0] * (len(PROMPTS) * SAMPLING.n)
    # Fixed advantages: a barely trained model rarely scores; the weights must move, whatever the rewards.
    sequences = [
        TrainSequence(s.prompt_token_ids, s.token_ids, 1.0 if i % 2 else -1.0, s.logprobs)
        for group in groups
        for i, s in enumerate(group)
    ]
    learner.train_step(sequences, kl_coef=0.0)
    sync = rollout.sync_weights(learner.weights(), version=step)
    assert sync["sync/verified"] == 1.0, sync  # every engine serving now proved the new weights
    return {number: served[number] - served_before.get(number, set()) for number in served}


def test_elastic_rollout_pool_grown_mid_run_serves_the_current_policy_version_on_both_engines(
    tiny_model_dir, ray_runtime
):
    ray = ray_runtime
    model_dir = str(tiny_model_dir)
    config = RolloutConfig(replicas=1, max_replicas=2, num_cpus=0.5, kv_cache_gib=0.05, engine_threads=1)
    rollout = RayRolloutPool(model_dir, config, dtype="float32", seed=0)
    learner = RayLearnerPool(
        model_dir,
        LearnerConfig(num_cpus=0.5, torch_threads=1, lr=0.05, micro_batch_size=8),
        AlgorithmConfig(),
        dtype="float32",
        seed=0,
    )
    try:
        await_started({"rollout": rollout, "learner": learner}, {"rollout": 600, "learner": 600})
        served: dict[int, set[int]] = {}  # engine number -> policy versions of the samples it returned
        accept = rollout._accept

        def recording_accept(task, result):
            checked = accept(task, result)
            served.setdefault(task.slot.number, set()).update(s.policy_version for g in result for s in g)
            return checked

        rollout._accept = recording_accept

        assert _rollout_step(rollout, learner, 1, served) == {0: {0}}
        rollout.autoscale(**GROW)  # at the sync point, as the loop does: engine 1 starts outside the rotation
        assert rollout.size() == 1 and rollout.metrics()["pool/rollout_starting"] == 1
        step, deadline = 2, time.monotonic() + 900
        while 1 not in served:  # steps go on with one engine until the new one has started and been synced
            assert time.monotonic() < deadline, "the new engine never served"
            this_step = _rollout_step(rollout, learner, step, served)
            assert all(versions <= {step - 1} for versions in this_step.values()), this_step
            step += 1
        joined = step - 1  # the first step the new engine served: both engines, the version of its sync
        assert served[1] == {joined - 1} and joined - 1 in served[0]
        assert rollout.size() == 2 and rollout.metrics()["pool/rollout_starting"] == 0
        # Both engines hold the learner's latest weights as its latest version.
        versions = ray.get(
            [actor.__ray_call__.remote(lambda engine: engine.policy_version) for actor in rollout.actors]
        )
        assert versions == [joined] * 2
        this_step = _rollout_step(rollout, learner, step, served)
        assert this_step == {0: {step - 1}, 1: {step - 1}}  # both engines sampled, from the current version

        # Idle: after the cool-down and a streak of idle steps the pool gives the new engine back.
        sizes = []
        for _ in range(rollout.rule.cooldown + rollout.rule.shrink_after):
            rollout.autoscale(**IDLE)
            sizes.append(rollout.size())
        assert sizes == [2] * (len(sizes) - 1) + [1]
        step += 1
        assert _rollout_step(rollout, learner, step, served)[0] == {step - 1}
    finally:
        rollout.shutdown()
        learner.shutdown()


def test_elastic_reward_pool_grows_and_shrinks_scoring_all_the_while(reward_model_dir, ray_runtime):
    config = RewardModelConfig(
        path=str(reward_model_dir), replicas=1, max_replicas=2, num_cpus=0.25, threads=1
    )
    pool = RayRewardPool(config, dtype="float32")
    prompts, samples = answers(["7"] * 6, [f"Step 1: 3 + 4 = 7\n#### {i}" for i in range(6)])
    try:
        await_started({"reward": pool}, {"reward": 600})
        expected = [reward.score for reward in pool.score(prompts, samples).result()]
        pool.autoscale(**GROW)
        deadline = time.monotonic() + 600
        while pool.size() < 2:  # batches go on on one scorer until the new one has started
            assert time.monotonic() < deadline, "the new scorer never joined"
            assert [reward.score for reward in pool.score(prompts, samples).result()] == pytest.approx(
                expected
            )
            time.sleep(1)
        assert pool.metrics()["pool/reward_replicas"] == 2
        # Spread over both scorers now, the same scores.
        assert [reward.score for reward in pool.score(prompts, samples).result()] == pytest.approx(expected)
        for _ in range(pool.rule.cooldown + pool.rule.shrink_after):
            pool.autoscale(**IDLE)
        assert pool.size() == 1
        assert [reward.score for reward in pool.score(prompts, samples).result()] == pytest.approx(expected)
    finally:
        pool.shutdown()
