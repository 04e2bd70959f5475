"""The learner loop on in-memory pools (`tests/fakes.py`): its schedule, bookkeeping and resume, in seconds.

The real pools are checked by the integration tests; here every behaviour of the loop itself is pinned down:
which prompts each step trains on, what the learner is sent, when evaluations, checkpoints and the monitor
run, and what a resumed run continues with.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from fakes import FakeLearnerPool, FakeRolloutPool, InMemoryTracker, ThreadedScorePool, fake_pools

from rlsys.batch import training_batch
from rlsys.checkpoint import CheckpointStore
from rlsys.config import load_job
from rlsys.data import task_prompts
from rlsys.loop import RLLoop, is_due
from rlsys.order import step_batch
from rlsys.protocols import Pools
from rlsys.scoring import sample_and_score
from rlsys.types import Reward, Sample, Sampling

ROOT = Path(__file__).resolve().parents[2]
SMALL = [
    "task.eval_size=12",
    "task.train_size=60",
    "train.prompts_per_step=6",
    "rollout.samples_per_prompt=4",
    "train.eval_samples=2",
    "train.log_samples=2",
    "tracking.registered_model=null",
]


def _job(tmp_path: Path, *overrides: str):
    return load_job(
        ROOT / "jobs" / "quickstart.yaml", [*SMALL, f"train.output_dir={tmp_path / 'runs'}", *overrides]
    )


def _loop(config, pools: Pools | None = None, tracker: InMemoryTracker | None = None):
    pools = pools or fake_pools()
    tracker = tracker or InMemoryTracker()
    return RLLoop(config, pools, tracker, CheckpointStore(config.train.output_dir, config.name)), tracker


def _recorded_prompts(config, run_id: str) -> list[dict]:
    path = CheckpointStore(config.train.output_dir, config.name).run_dir(run_id) / "prompts.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_step_trains_on_its_own_prompts_and_syncs_its_version(tmp_path):
    config = _job(tmp_path, "train.steps=5", "train.eval_every=0")
    loop, tracker = _loop(config)
    summary = loop.run()
    train = task_prompts(config.task, "rl", config.task.train_size)
    expected = [[p.id for p in step_batch(train, s - 1, 6, config.seed)] for s in range(1, 6)]
    assert [row["prompt_ids"] for row in _recorded_prompts(config, tracker.run_id)] == expected
    assert [row["step"] for row in _recorded_prompts(config, tracker.run_id)] == [1, 2, 3, 4, 5]
    assert loop.pools.rollout.synced == [1, 2, 3, 4, 5]
    # Sequences carry the sampled token ids and log-probs unchanged, prompt by prompt.
    first = loop.pools.learner.calls[0].sequences[0]
    assert len(first.token_ids) == len(first.sampler_logprobs) and set(first.sampler_logprobs) == {-0.5}
    assert summary.steps_done == 5 and set(tracker.at("train/reward_mean")) == {1, 2, 3, 4, 5}


def test_every_step_records_how_many_samples_were_scored_and_trained(tmp_path):
    """What an audit of lost samples reads: every sample drawn is scored, and the step says how many of them
    reached the learner (0 when no group carried signal, so a step that did not train is visible)."""
    config = _job(tmp_path, "train.steps=3", "train.eval_every=0")
    loop, tracker = _loop(config)
    loop.run()
    assert tracker.at("rollout/prompts") == {1: 6, 2: 6, 3: 6}
    assert tracker.at("rollout/samples") == {1: 24, 2: 24, 3: 24}
    trained = tracker.at("train/trained_samples")
    assert set(trained) == {1, 2, 3}
    assert sorted(n for n in trained.values() if n) == sorted(
        len(c.sequences) for c in loop.pools.learner.calls
    )


def test_training_raises_the_reward_of_the_fake_policy(tmp_path):
    config = _job(tmp_path, "train.steps=12", "train.eval_every=0")
    loop, tracker = _loop(config)
    summary = loop.run()
    rewards = [value for _, value in tracker.history("train/reward_mean")]
    assert sum(rewards[-4:]) / 4 > sum(rewards[:4]) / 4 + 0.2
    assert summary.accuracy_after > summary.accuracy_before


@pytest.mark.parametrize("max_staleness", [1, 3])
def test_samples_run_ahead_at_most_max_staleness_updates_and_carry_it_to_the_learner(tmp_path, max_staleness):
    config = _job(tmp_path, "train.steps=7", "train.eval_every=2", f"train.max_staleness={max_staleness}")
    loop, tracker = _loop(config)
    loop.run()
    staleness = tracker.at("train/staleness_max")
    # How far ahead the instant fake engines get is up to the threads (tests/unit/test_pipeline.py pins it).
    assert set(staleness) == set(range(1, 8)) and max(staleness.values()) <= max_staleness
    assert all(value <= step - 1 for step, value in staleness.items())  # nothing to be ahead of at first
    informative = [step for step in sorted(staleness) if tracker.at("train/informative_groups")[step] > 0]
    for step, call in zip(informative, loop.pools.learner.calls, strict=True):
        assert {s.staleness for s in call.sequences} == {int(staleness[step])}
        assert tracker.at("train/staleness")[step] == staleness[step]
    assert loop.pools.rollout.synced == list(range(1, 8))
    # Each step's prompts were drawn and recorded once, in order, exactly as when sampling on-policy.
    train = task_prompts(config.task, "rl", config.task.train_size)
    assert [row["prompt_ids"] for row in _recorded_prompts(config, tracker.run_id)] == [
        [p.id for p in step_batch(train, s - 1, 6, config.seed)] for s in range(1, 8)
    ]


def test_a_growing_logprob_mismatch_raises_an_alert(tmp_path):
    config = _job(tmp_path, "train.steps=2", "train.eval_every=0", "train.max_logprob_mismatch=0.3")
    pools = Pools(
        FakeRolloutPool(), ThreadedScorePool(), FakeLearnerPool(logprob_mismatch=0.4), reward_model=None
    )
    loop, tracker = _loop(config, pools)
    loop.run()
    assert tracker.tags["rlsys.alert.logprob_mismatch"].startswith("step 1: 0.4")
    quiet = _job(tmp_path / "quiet", "train.steps=2", "train.eval_every=0")
    loop, tracker = _loop(quiet)
    loop.run()
    assert "rlsys.alert.logprob_mismatch" not in tracker.tags


def test_groups_without_signal_never_reach_the_learner(tmp_path):
    config = _job(tmp_path, "train.steps=3", "train.eval_every=0")
    train = task_prompts(config.task, "rl", config.task.train_size)
    solved = frozenset(p.id for p in train[::2])  # half the prompts: every sample right, no signal
    pools = Pools(
        FakeRolloutPool(always_right=solved), ThreadedScorePool(), FakeLearnerPool(), reward_model=None
    )
    loop, tracker = _loop(config, pools)
    loop.run()
    for step, call in enumerate(pools.learner.calls, start=1):
        prompts = step_batch(train, step - 1, 6, config.seed)
        assert len(call.sequences) % 4 == 0 and call.sequences
        assert all(s.advantage != 0 for s in call.sequences)
        trained = len(call.sequences) // 4
        assert trained <= sum(p.id not in solved for p in prompts)
        assert tracker.at("train/informative_groups")[step] == pytest.approx(trained / 6)


def test_evaluations_and_checkpoints_follow_their_schedules(tmp_path):
    config = _job(tmp_path, "train.steps=5", "train.eval_every=2", "train.checkpoint_every=2")
    loop, tracker = _loop(config)
    summary = loop.run()
    assert set(tracker.at("eval/accuracy")) == {0, 2, 4, 5}
    assert set(tracker.at("eval/accuracy_sampled")) == {0, 2, 4, 5}
    store = CheckpointStore(config.train.output_dir, config.name)
    latest = store.latest()
    assert latest.step == 4 and latest.run_id == tracker.run_id
    assert sorted(p.name for p in Path(latest.directory).iterdir()) == ["step-2", "step-4"]
    assert summary.model_dir == str(store.run_dir(tracker.run_id) / "policy")
    assert loop.pools.learner.saved == [(summary.model_dir, loop.pools.learner.steps)]


def test_the_summary_reports_the_first_and_last_evaluation(tmp_path):
    config = _job(
        tmp_path,
        "train.steps=3",
        "train.eval_every=0",
        "train.checkpoint_every=2",
        "tracking.registered_model=fake-model",
    )
    loop, tracker = _loop(config)
    loop.base_model = "/models/base"
    summary = loop.run()
    ((_, name, made_by),) = tracker.registered  # the policy's lineage travels with its version
    assert (
        name == "fake-model"
        and made_by["rlsys.run_id"] == "fake-run"
        and made_by["rlsys.job"] == "quickstart"
    )
    assert made_by["rlsys.config"].startswith("runs:/fake-run/config/job.json sha256:")
    assert made_by["rlsys.base_model"] == "/models/base"
    assert made_by["rlsys.data.train"] == "arithmetic seed=0 size=60"
    assert made_by["rlsys.checkpoint"].startswith("step 2 at ") and "sha256:" in made_by["rlsys.checkpoint"]
    assert float(made_by["rlsys.eval.accuracy"]) == pytest.approx(tracker.at("eval/accuracy")[3], abs=1e-4)
    accuracy, sampled = tracker.at("eval/accuracy"), tracker.at("eval/accuracy_sampled")
    assert (summary.accuracy_before, summary.accuracy_after) == (accuracy[0], accuracy[3])
    assert (summary.sampled_before, summary.sampled_after) == (sampled[0], sampled[3])
    assert (
        summary.model_uri == "models:/fake-model/1" and tracker.tags["rlsys.model_uri"] == summary.model_uri
    )
    assert tracker.params["train.steps"] == 3 and "config/job.json" in tracker.dicts
    assert tracker.figures == ["plots/accuracy.png"] and summary.monitor is None
    rows = tracker.tables["samples.json"]
    assert [row["step"] for row in rows] == [1, 1, 2, 2, 3, 3]  # train.log_samples=2 per step
    assert all(row["verdict"].split(":")[0] in {"correct", "incorrect"} for row in rows)


def test_rewards_land_on_their_own_samples_when_engines_and_scorers_finish_out_of_order():
    prompts = task_prompts(load_job(None).task, "eval", 10)
    rollout, verifier = (
        FakeRolloutPool(engines=3),
        ThreadedScorePool(workers=3, first_delay_s=0.1, hold_first_until=3),
    )
    scored = sample_and_score(rollout, [verifier], prompts, Sampling(n=3, temperature=1.0), list(range(10)))
    assert verifier.calls == 3  # one call per engine chunk; the first chunk's call finished last
    assert [group[0].prompt_id for group in scored.groups] == [p.id for p in prompts]
    for prompt, group, rewards in zip(prompts, scored.groups, scored.rewards, strict=True):
        for sample, reward in zip(group, rewards, strict=True):
            assert reward.correct == (sample.text == f"#### {prompt.gold}")
    assert {r.correct for rewards in scored.rewards for r in rewards} == {True, False}
    # The backlogs the elastic pools resize on: the prompts the engines were sent, and the samples still
    # unscored when generation ended (the first chunk's at least, prompts 8 and 9: its call was held back).
    assert scored.prompts_sampled == 10
    assert 2 * 3 <= scored.score_queued[0] <= 10 * 3


@pytest.mark.parametrize("max_staleness", [0, 2])
def test_elastic_pools_resize_once_a_step_between_rollouts_on_its_backlog(tmp_path, max_staleness):
    config = _job(tmp_path, "train.steps=5", "train.eval_every=2", f"train.max_staleness={max_staleness}")
    loop, tracker = _loop(config)
    loop.run()
    rollout, verifier = loop.pools.rollout, loop.pools.verifier
    # Once a step, at the weight sync, with no rollout under way (not even one sampled ahead): the engines on
    # the step's prompts against the learner's own time, the verifiers on what trailed generation.
    assert [queued for queued, _, _ in rollout.autoscaled] == [6] * 5
    assert all(budget_s > 0 and not generating for _, budget_s, generating in rollout.autoscaled)
    assert len(verifier.autoscaled) == 5
    assert all(0 <= queued <= 6 * 4 and budget_s >= 0 for queued, budget_s in verifier.autoscaled)


def test_the_monitor_stops_the_run_and_keeps_the_best_gold_policy(tmp_path):
    config = _job(
        tmp_path,
        "train.steps=6",
        "train.eval_every=0",
        "algorithm.kl_coef=0.1",
        "monitor.every=2",
        "monitor.gold=math",
        "monitor.max_kl=0.015",  # the fake learner's KL passes it at its second step
        "monitor.stop_on_alert=true",
    )
    loop, tracker = _loop(config)
    summary = loop.run()
    assert summary.steps_done == 2 and summary.monitor.alert_step == 2
    assert set(tracker.at("monitor/proxy")) == {0, 2} and set(tracker.at("eval/accuracy")) == {0, 2}
    assert tracker.tags["monitor.hacking_alert"] == "true" and "kl" in tracker.tags["monitor.alert_detectors"]
    best = Path(summary.monitor.best_gold_dir)
    gold = tracker.at("monitor/gold")
    best_step = max(gold, key=lambda step: (gold[step], -step))
    assert summary.monitor.best_gold_step == best_step
    assert json.loads((best / "best_gold.json").read_text())["step"] == best_step
    assert sorted(tracker.figures) == ["plots/accuracy.png", "plots/proxy_vs_gold.png"]
    assert "monitor_samples.json" in tracker.tables


def test_a_resumed_run_continues_where_the_checkpoint_left_off(tmp_path):
    """Kill the learner at step 4 of 6 (checkpoint every 2), resume: the same prompts, rewards, KL weights and
    final weights as an uninterrupted run, with only the step after the checkpoint done twice."""
    overrides = [
        "train.steps=6",
        "train.eval_every=0",
        "train.checkpoint_every=2",
        "algorithm.kl_coef=0.1",
        "algorithm.kl_target=0.005",  # the adaptive beta is loop state a checkpoint must carry
        "monitor.every=1",
        "monitor.gold=math",
    ]
    whole, whole_tracker = _loop(_job(tmp_path / "whole", *overrides))
    whole.run()

    config = _job(tmp_path / "cut", *overrides)
    pools = fake_pools()
    pools.learner.fail_at_call = 4
    tracker = InMemoryTracker()
    cut, _ = _loop(config, pools, tracker)
    with pytest.raises(RuntimeError, match="learner crashed"):
        cut.run()
    checkpoint = CheckpointStore(config.train.output_dir, config.name).latest()
    assert checkpoint.step == 2

    resumed, _ = _loop(config, fake_pools(), tracker)  # fresh pools, the same run
    resumed.run(checkpoint)
    for key in ("train/reward_mean", "train/kl_coef", "monitor/gold", "monitor/proxy"):
        assert tracker.at(key) == whole_tracker.at(key), key
    assert resumed.pools.learner.steps == whole.pools.learner.steps
    assert resumed.pools.rollout.synced == [2, 3, 4, 5, 6]  # the checkpoint's weights first
    # The samples table was written step by step: the steps before the crash are in it, once each.
    assert tracker.tables["samples.json"] == whole_tracker.tables["samples.json"]
    assert sorted({row["step"] for row in tracker.tables["samples.json"]}) == [1, 2, 3, 4, 5, 6]
    recorded = [row["step"] for row in _recorded_prompts(config, tracker.run_id)]
    assert recorded == [1, 2, 3, 4, 3, 4, 5, 6]  # step 4 failed after drawing its prompts; 3 and 4 redone
    whole_prompts = {row["step"]: row["prompt_ids"] for row in _recorded_prompts(whole.config, "fake-run")}
    assert {
        row["step"]: row["prompt_ids"] for row in _recorded_prompts(config, tracker.run_id)
    } == whole_prompts


def test_tool_samples_train_on_their_own_tokens_and_log_tool_use(tmp_path):
    """Responses that called a tool reach the learner with their loss masks; each step logs tool use, each
    evaluation how greedy answers use it and whether it pays; the samples table shows the calls."""
    config = _job(tmp_path, "train.steps=4", "train.eval_every=2", "rollout.max_tool_calls=2")
    loop, tracker = _loop(config)
    loop.run()
    sequences = [s for call in loop.pools.learner.calls for s in call.sequences]
    with_tools = [s for s in sequences if s.loss_mask]
    assert with_tools and len(with_tools) < len(sequences)
    for s in with_tools:
        assert len(s.loss_mask) == len(s.token_ids) == len(s.sampler_logprobs) and 0 < sum(s.loss_mask)
        assert all(lp == 0.0 for lp, m in zip(s.sampler_logprobs, s.loss_mask, strict=True) if not m)
    steps = {1, 2, 3, 4}
    for key in ("tool/calls_per_sample", "tool/error_rate", "tool/used_share", "time/tool_s"):
        assert set(tracker.at(key)) == steps, key
    assert 0 < tracker.at("tool/used_share")[1] < 1 and tracker.at("tool/error_rate")[1] == 0
    for key in ("eval/tool/used_share", "eval/tool/accuracy_with_tool", "eval/tool/used_share_sampled"):
        assert set(tracker.at(key)) == {0, 2, 4}, key
    assert tracker.at("eval/tool/accuracy_with_tool")[0] == 1.0  # the fake's tool users are right
    assert tracker.at("eval/tool/accuracy_without_tool")[0] == 0.0
    rows = tracker.tables["samples.json"]
    assert any(row.get("tool_calls") for row in rows)


def test_a_job_without_tools_logs_no_tool_metrics(tmp_path):
    loop, tracker = _loop(_job(tmp_path, "train.steps=1"))
    loop.run()
    assert not [key for key in tracker.metrics if "tool" in key]


@pytest.mark.parametrize(
    "step, every, due", [(0, 5, False), (5, 5, True), (7, 5, False), (5, 0, False), (10, 5, True)]
)
def test_is_due(step, every, due):
    assert is_due(step, every) is due


def _groups(scores: list[list[float]]) -> tuple[list[list[Sample]], list[list[Reward]]]:
    groups = [
        [Sample(f"p{p}", (1, 2), (3, 4, 5), f"answer {g}", (-0.1,) * 3, "stop", 0) for g in range(len(row))]
        for p, row in enumerate(scores)
    ]
    return groups, [[Reward(score, {"math": score}) for score in row] for row in scores]


def test_training_batch_advantages_by_hand():
    groups, rewards = _groups([[1, 0, 0, 1], [1, 1, 1, 1], [0, 0, 0, 1]])
    config = load_job(None)
    sequences, kept = training_batch(groups, rewards, config.algorithm)
    # Group 1: mean 0.5, std 0.5 -> +-1. Group 2: all equal, dropped. Group 3: mean 0.25, std sqrt(3)/4.
    third = 0.25 / (3**0.5 / 4)
    expected = [1, -1, -1, 1, -third, -third, -third, 3 * third]
    assert [s.advantage for s in sequences] == pytest.approx(expected, abs=1e-5)
    assert kept == pytest.approx(2 / 3)
    assert sequences[0].token_ids == (3, 4, 5) and sequences[0].sampler_logprobs == (-0.1,) * 3

    unscaled, _ = training_batch(groups, rewards, config.algorithm.model_copy(update={"scale_by_std": False}))
    assert [s.advantage for s in unscaled] == pytest.approx([0.5, -0.5, -0.5, 0.5, -0.25, -0.25, -0.25, 0.75])
    keep_all = config.algorithm.model_copy(update={"drop_uninformative_groups": False})
    kept_sequences, kept = training_batch(groups, rewards, keep_all)
    assert len(kept_sequences) == 12 and kept == 1.0
    assert [s.advantage for s in kept_sequences[4:8]] == [0.0] * 4


def test_the_loop_runs_without_ray_vllm_or_deepspeed(tmp_path):
    """The loop, its protocols and the fakes import none of the heavy runtimes."""
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / "tests")!r})
from fakes import InMemoryTracker, fake_pools
from rlsys.checkpoint import CheckpointStore
from rlsys.config import load_job
from rlsys.loop import RLLoop
config = load_job({str(ROOT / "jobs" / "quickstart.yaml")!r}, {[*SMALL, "train.steps=2"]!r}
                  + ["train.output_dir={tmp_path}"])
RLLoop(config, fake_pools(), InMemoryTracker(), CheckpointStore("{tmp_path}", "job")).run()
heavy = sorted(m for m in ("ray", "vllm", "deepspeed", "mlflow") if m in sys.modules)
print("heavy:", heavy)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "heavy: []" in result.stdout


def test_dynamic_sampling_tops_a_step_up_to_a_full_batch_of_groups_with_signal(tmp_path):
    overrides = ("train.steps=3", "train.eval_every=0", "algorithm.dynamic_sampling_rounds=4")
    config = _job(tmp_path / "first", *overrides)
    train = task_prompts(config.task, "rl", config.task.train_size)
    solved = frozenset(p.id for p in train[: 2 * len(train) // 3])  # two thirds of the prompts: no signal

    def run(job):
        pools = Pools(FakeRolloutPool(always_right=solved), ThreadedScorePool(), FakeLearnerPool())
        loop, tracker = _loop(job, pools)
        loop.run()
        return (
            pools.learner.calls,
            tracker,
            [row["prompt_ids"] for row in _recorded_prompts(job, tracker.run_id)],
        )

    calls, tracker, recorded = run(config)
    rounds = tracker.at("train/sampling_rounds")
    assert any(rounds.values()) and all(r <= 4 for r in rounds.values())
    for step, call in enumerate(calls, start=1):
        if rounds[step] < 4:  # topped up in time: exactly a batch of groups with signal
            assert len(call.sequences) == 6 * 4
    # The extra prompts come from a stream of their own: the same in another run, and each step's first
    # batch is still the plain order's.
    assert run(_job(tmp_path / "second", *overrides))[2] == recorded
    assert recorded[0] == [p.id for p in step_batch(train, 0, 6, config.seed)]


def test_ppo_trains_the_critic_and_sends_the_learner_per_token_advantages(tmp_path):
    config = _job(tmp_path, "algorithm.name=ppo", "algorithm.gae_lambda=0.9", "train.steps=3")
    loop, tracker = _loop(config, fake_pools(critic=True))
    loop.run()
    critic, learner = loop.pools.critic, loop.pools.learner
    assert critic.steps == 3 and len(learner.calls) == 3
    for sent_to_critic, call in zip(critic.calls, learner.calls, strict=True):
        assert len(call.sequences) == 6 * 4  # every group trains: the critic is the baseline
        assert sent_to_critic == call.sequences
    # Step 1: the critic values every token at 0, so GAE (gamma 1) discounts the reward on the last token by
    # lambda per token before it: A_t = 0.9^(L-1-t) * r, and the returns equal the advantages.
    for seq in learner.calls[0].sequences:
        length, reward = len(seq.token_ids), seq.advantage
        expected = [reward * 0.9 ** (length - 1 - t) for t in range(length)]
        assert seq.token_advantages == pytest.approx(expected)
        assert seq.returns == pytest.approx(expected) and seq.values == (0.0,) * length
    # Step 2 is valued by the critic as step 1 left it: halfway to step 1's mean return.
    first_returns = [r for seq in critic.calls[0] for r in seq.returns]
    learned = sum(first_returns) / len(first_returns) / 2
    assert all(v == pytest.approx(learned) for v in learner.calls[1].sequences[0].values)
    assert set(tracker.at("critic/value_loss")) == {1, 2, 3}
    assert set(tracker.at("critic/explained_variance")) == {1, 2, 3}  # every step's returns varied
    assert tracker.at("time/critic_s")[1] >= 0


def test_a_resumed_ppo_run_restores_the_critic(tmp_path):
    overrides = ["algorithm.name=ppo", "train.steps=4", "train.eval_every=0", "train.checkpoint_every=2"]
    whole, whole_tracker = _loop(_job(tmp_path / "whole", *overrides), fake_pools(critic=True))
    whole.run()

    config = _job(tmp_path / "cut", *overrides)
    pools = fake_pools(critic=True)
    pools.learner.fail_at_call = 3
    tracker = InMemoryTracker()
    cut, _ = _loop(config, pools, tracker)
    with pytest.raises(RuntimeError, match="learner crashed"):
        cut.run()
    checkpoint = CheckpointStore(config.train.output_dir, config.name).latest()
    assert (checkpoint.path / "critic" / "critic.json").is_file()  # inside the checkpoint, in its manifest

    resumed, _ = _loop(config, fake_pools(critic=True), tracker)  # a fresh critic, at value 0
    resumed.run(checkpoint)
    assert resumed.pools.critic.value == whole.pools.critic.value
    assert tracker.at("critic/value_loss") == whole_tracker.at("critic/value_loss")


def test_a_critic_pool_comes_with_ppo_only(tmp_path):
    with pytest.raises(ValueError, match="critic pool"):
        _loop(_job(tmp_path, "algorithm.name=ppo"))
    with pytest.raises(ValueError, match="critic pool"):
        _loop(_job(tmp_path), fake_pools(critic=True))
