"""Actors die, hang or restart unseen; a step still completes with every sample from the current weights, or
fails loudly naming the pool.

The rollout tests share one pool of two engines (starting vLLM costs tens of seconds here); each test leaves
it serving the weights it last synced. Hangs are made with SIGSTOP on the actor's process, and the deadlines
are short so that a test takes a minute or two.
"""

import os
import shutil
import signal
import time
from contextlib import contextmanager
from glob import glob

import pytest
import torch
from fakes import answers

from actors.cluster import await_started
from actors.pools import RayRewardPool, RayRolloutPool, RayVerifierPool
from actors.weights import PackedWeights
from rlsys.config import RewardModelConfig, RolloutConfig, TaskConfig, VerifierConfig
from rlsys.data import task_prompts
from rlsys.errors import PoolError
from rlsys.scoring import sample_and_score
from rlsys.types import Sampling

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

CALL_TIMEOUT_S = 30.0  # far above a healthy call of these tests, even on a loaded 2-core machine
PROMPTS = task_prompts(TaskConfig(), "rl", 8)
SAMPLING = Sampling(n=3, temperature=1.0, max_new_tokens=24)


def _pid(ray, actor, other_than: int | None = None) -> int:
    """The actor's process id, once it answers (Ray answers for an actor it is restarting that it is
    unavailable) from a process other than `other_than`."""
    from ray.exceptions import ActorUnavailableError

    deadline = time.monotonic() + 300
    while True:
        try:
            pid = ray.get(actor.__ray_call__.remote(lambda _: os.getpid()), timeout=300)
            if pid != other_than:
                return pid
        except ActorUnavailableError:
            pass
        assert time.monotonic() < deadline, "the actor did not come back"
        time.sleep(1)


@contextmanager
def _frozen(pid: int):
    """The process stopped (it holds its work and answers nothing) until the block ends or it is killed."""
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        try:
            os.kill(pid, signal.SIGCONT)
        except ProcessLookupError:
            pass  # killed meanwhile, as the pool should


def _weights(ray, model_dir, scale: float):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        for param in model.parameters():
            param.mul_(scale)
    return ray.put(PackedWeights.pack(model.state_dict().items()))


def _all_serving(ray, pool: RayRolloutPool) -> None:
    """Every engine up (restarts over) and proven to serve the pool's current weights."""
    for actor in pool.actors:
        _pid(ray, actor)
    assert pool.sync_weights(pool.weights, pool.policy_version)["sync/verified"] == 1.0
    assert not any(slot.recovering() for slot in pool.slots)


def _versions(groups) -> set[int]:
    return {sample.policy_version for group in groups for sample in group}


@pytest.fixture(scope="module")
def rollout(tiny_model_dir, ray_runtime):
    config = RolloutConfig(replicas=2, num_cpus=0.5, kv_cache_gib=0.05, call_timeout_s=CALL_TIMEOUT_S)
    pool = RayRolloutPool(str(tiny_model_dir), config, dtype="float32", seed=0)
    await_started({"rollout": pool}, {"rollout": 600})
    yield pool
    pool.shutdown()


def test_step_survives_killed_rollout_and_verifier_actors(tiny_model_dir, ray_runtime, rollout):
    ray = ray_runtime
    verifier = RayVerifierPool(VerifierConfig(replicas=2, num_cpus=0.1, max_restarts=1))
    assert rollout.sync_weights(_weights(ray, tiny_model_dir, 1.01), version=7)["sync/verified"] == 1.0

    chunks = rollout.generate(PROMPTS, SAMPLING, list(range(8)))  # sent to both engines at once
    ray.kill(rollout.actors[0], no_restart=False)  # dies mid-generation; Ray restarts it with old weights
    ray.kill(verifier.actors[0], no_restart=True)  # gone for good: replaced by a fresh verifier
    groups = dict(index_group for chunk in chunks for index_group in chunk)
    assert sorted(groups) == list(range(8))  # one group per prompt
    assert rollout.retried_tasks >= 1
    assert _versions(groups.values()) == {7}

    scored = sample_and_score(rollout, [verifier], PROMPTS, SAMPLING, list(range(8)))
    assert [len(group) for group in scored.groups] == [3] * 8
    assert [len(rewards) for rewards in scored.rewards] == [3] * 8
    assert [group[0].prompt_id for group in scored.groups] == [p.id for p in PROMPTS]
    # The dead verifier was seen before work reached it, and replaced.
    assert verifier.replaced_actors == 1 and verifier.size() == 2
    # The restarted engine was kept from work until re-synced: every sample is from the current weights.
    assert _versions(scored.groups) == {7}
    verifier.shutdown()


def test_a_frozen_engine_is_killed_at_its_deadline_and_its_work_done_elsewhere(ray_runtime, rollout):
    ray = ray_runtime
    _all_serving(ray, rollout)
    pid = _pid(ray, rollout.actors[0])
    kills, retried = rollout.deadline_kills, rollout.retried_tasks
    chunks = rollout.generate(PROMPTS, SAMPLING, list(range(8)))
    with _frozen(pid):  # mid-generation: its chunk is sent and it stops answering
        groups = dict(index_group for chunk in chunks for index_group in chunk)
    assert sorted(groups) == list(range(8))
    assert rollout.deadline_kills == kills + 1 and rollout.retried_tasks > retried
    assert _versions(groups.values()) == {rollout.policy_version}
    # Ray restarted it; it is re-synced (and checked) before its next work, which then carries the version.
    scored = sample_and_score(rollout, [], PROMPTS, SAMPLING, list(range(8)))
    assert _versions(scored.groups) == {rollout.policy_version}
    _pid(ray, rollout.actors[0], other_than=pid)


def test_a_frozen_verifier_is_killed_at_its_deadline_and_its_work_done_elsewhere(ray_runtime, rollout):
    ray = ray_runtime
    verifier = RayVerifierPool(VerifierConfig(replicas=2, num_cpus=0.1, call_timeout_s=15.0))
    await_started({"verifier": verifier}, {"verifier": 300})
    groups = [group for chunk in rollout.generate(PROMPTS, SAMPLING, list(range(8))) for _, group in chunk]
    samples = [sample for group in groups for sample in group]
    prompts = [next(p for p in PROMPTS if p.id == sample.prompt_id) for sample in samples]
    with _frozen(_pid(ray, verifier.actors[0])):
        rewards = verifier.score(prompts, samples).result()
    assert len(rewards) == len(samples) and verifier.deadline_kills == 1 and verifier.retried_tasks >= 1
    verifier.shutdown()


def test_reward_scorers_killed_and_frozen_mid_call_have_their_work_done_elsewhere(
    reward_model_dir, ray_runtime, capfd
):
    ray = ray_runtime
    config = RewardModelConfig(
        path=str(reward_model_dir), replicas=2, num_cpus=0.1, threads=1, call_timeout_s=20.0, max_restarts=1
    )
    pool = RayRewardPool(config, dtype="float32")
    prompts, samples = answers(["7"] * 8, [f"Step 1: 3 + 4 = 7\n#### {i}" for i in range(8)])
    try:
        await_started({"reward": pool}, {"reward": 600})
        expected = [reward.score for reward in pool.score(prompts, samples).result()]
        ray.kill(pool.actors[0], no_restart=True)  # gone for good: a fresh scorer takes its place
        with _frozen(_pid(ray, pool.actors[1])):  # stops answering: killed at its deadline, restarted
            scores = [reward.score for reward in pool.score(prompts, samples).result()]
        assert scores == pytest.approx(expected)  # every sample scored, each by the same model
        assert pool.replaced_actors == 1 and pool.deadline_kills == 1 and pool.size() == 2
        out, err = capfd.readouterr()
        assert "within reward_model.call_timeout_s (20s)" in out + err  # the key a user sets, by its name
    finally:
        pool.shutdown()


def test_an_engine_restarted_while_idle_is_resynced_before_it_serves(tiny_model_dir, ray_runtime, rollout):
    ray = ray_runtime
    _all_serving(ray, rollout)
    assert rollout.sync_weights(_weights(ray, tiny_model_dir, 1.02), version=8)["sync/verified"] == 1.0
    engine = rollout.actors[0]
    pid = _pid(ray, engine)
    ray.kill(engine, no_restart=False)  # between steps: nothing of the pool's is on it, nobody notices
    _pid(ray, engine, other_than=pid)  # back, with its initial weights (version 0)

    retried = rollout.retried_tasks
    groups = [group for chunk in rollout.generate(PROMPTS, SAMPLING, list(range(8))) for _, group in chunk]
    assert len(groups) == 8 and _versions(groups) == {8}
    assert rollout.retried_tasks > retried  # it refused the work, was re-synced, and the work went elsewhere
    scored = sample_and_score(rollout, [], PROMPTS, SAMPLING, list(range(8)))
    assert _versions(scored.groups) == {8}
    assert ray.get(engine.__ray_call__.remote(lambda e: e.policy_version), timeout=120) == 8


def test_a_sync_that_did_not_land_fails_loudly(tiny_model_dir, ray_runtime, rollout):
    ray = ray_runtime
    _all_serving(ray, rollout)
    engine = rollout.actors[1]
    # This engine's next loads are skipped: it goes on serving the weights it has.
    ray.get(
        engine.__ray_call__.remote(lambda e: setattr(e, "load_weights", lambda weights: None)), timeout=120
    )
    try:
        with pytest.raises(PoolError, match="did not land") as raised:
            rollout.sync_weights(_weights(ray, tiny_model_dir, 1.03), version=9)
        assert str(raised.value).startswith(
            "rollout pool: engine 1, after the weight sync to policy version 9"
        )
    finally:
        ray.get(engine.__ray_call__.remote(lambda e: delattr(e, "load_weights")), timeout=120)
    assert rollout.sync_weights(_weights(ray, tiny_model_dir, 1.03), version=9)["sync/verified"] == 1.0


def test_with_every_engine_down_at_once_the_work_waits_for_one_to_come_back(ray_runtime, rollout):
    """One engine crashed and restarting, the other frozen mid-generation (found by bench/faults.py): the
    frozen one is killed at its deadline, and its work waits for an engine to be back instead of spending
    its attempts on engines Ray is restarting (which answer at once that they are unavailable). Last of the
    tests on the shared pool: it spends a restart of each engine."""
    ray = ray_runtime
    _all_serving(ray, rollout)
    frozen = _pid(ray, rollout.actors[1])
    chunks = rollout.generate(PROMPTS, SAMPLING, list(range(8)))
    ray.kill(rollout.actors[0], no_restart=False)  # restarts: a vLLM engine takes a while
    with _frozen(frozen):
        groups = dict(index_group for chunk in chunks for index_group in chunk)
    assert sorted(groups) == list(range(8))
    assert _versions(groups.values()) == {rollout.policy_version}


def test_an_engine_that_cannot_start_fails_in_one_line(tiny_model_dir, tmp_path, ray_runtime):
    broken = tmp_path / "broken-model"
    shutil.copytree(tiny_model_dir, broken)
    (broken / "model.safetensors").unlink()  # a download that never finished
    pool = RayRolloutPool(
        str(broken), RolloutConfig(num_cpus=0.5, kv_cache_gib=0.05, max_restarts=0), dtype="float32", seed=0
    )
    with pytest.raises(PoolError) as raised:
        await_started({"rollout": pool}, {"rollout": 600})
    message = str(raised.value)
    print(message)
    assert "\n" not in message, message
    assert message.startswith("rollout pool: engine 0 failed to start: "), message
    reason = message.split(": ", 2)[2]
    assert "Error" in reason.split(" (full log: ")[0], message  # the library's own exception line
    log = message.rsplit("(full log: ", 1)[1].split(" on ")[0]
    assert glob(log), message  # the actor's log file is where the message says
    pool.shutdown()


def test_a_frozen_or_lost_learner_rank_fails_the_step_naming_it(tiny_model_dir, ray_runtime):
    from actors.pools import RayLearnerPool
    from rlsys.config import AlgorithmConfig, LearnerConfig
    from rlsys.types import TrainSequence

    ray = ray_runtime
    config = LearnerConfig(num_cpus=0.5, call_timeout_s=CALL_TIMEOUT_S)
    learner = RayLearnerPool(str(tiny_model_dir), config, AlgorithmConfig(), dtype="float32", seed=0)
    await_started({"learner": learner}, {"learner": 600})
    sequence = TrainSequence((1, 2, 3), (4, 5), 1.0, (-1.0, -1.0))
    assert "policy_loss" in learner.train_step([sequence, sequence], kl_coef=0.0)

    with _frozen(_pid(ray, learner.actors[0])):
        with pytest.raises(PoolError) as raised:
            learner.train_step([sequence, sequence], kl_coef=0.0)
    assert str(raised.value).startswith(
        f"learner pool: rank 0 did not finish a training step within learner.call_timeout_s "
        f"({CALL_TIMEOUT_S:g}s) and was stopped"
    )
    # Stopped, and never restarted: its optimizer state is gone, so the next step fails at once, naming it.
    with pytest.raises(PoolError, match="^learner pool: rank 0 failed a training step: .*resume the job"):
        learner.train_step([sequence, sequence], kl_coef=0.0)
