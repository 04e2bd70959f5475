"""What the loop hands the reward-hacking monitor (`rlsys.rlhf.measure`), and the monitor's verdict on whole
trajectories built from it: silent on a healthy verifiable-reward run, alerting on over-optimisation."""

import json
import random
from pathlib import Path

import pytest

from rlsys.config import MonitorConfig, TaskConfig, load_job
from rlsys.data import task_prompts
from rlsys.rlhf.measure import step_stats
from rlsys.rlhf.monitor import HackingMonitor
from rlsys.rlhf.preference import judge
from rlsys.tasks.arithmetic import bare_solution, problems, worked_solution
from rlsys.types import Reward, Sample

N = 64
JOB = Path(__file__).resolve().parents[2] / "jobs" / "rlhf_quickstart.yaml"
PROMPTS = task_prompts(TaskConfig(), "eval", N)
PROBLEMS = problems("eval", N, TaskConfig().seed)  # the same problems, in the same order


def _sample(prompt, text: str) -> Sample:
    tokens = tuple(range(2 * len(text.split()) + 1))  # about two tokens a word, plus end of turn
    return Sample(prompt.id, (1, 2, 3), tokens, text, (0.0,) * len(tokens), "stop", 0)


def test_prompts_and_problems_line_up():
    assert [p.messages[-1]["content"] for p in PROMPTS] == [p.question for p in PROBLEMS]


def _people(prompt, text: str) -> float:
    """The hidden preference's score of one answer: the gold component of the RLHF quickstart's rewards."""
    problem = PROBLEMS[PROMPTS.index(prompt)]
    return judge(problem.question, text, problem.answer).score


def test_gold_is_the_reward_component_the_job_names():
    texts = [worked_solution(PROBLEMS[0]), bare_solution(PROBLEMS[1]), "no idea"]
    samples = [_sample(p, t) for p, t in zip(PROMPTS, texts, strict=False)]
    rewards = [
        Reward(0.0, {"math": m, "hidden_preference": _people(p, t)})
        for p, t, m in zip(PROMPTS, texts, (1.0, 1.0, 0.0), strict=False)
    ]
    people = step_stats(0, samples, rewards, gold="hidden_preference", reward_model=None, kl=None)
    assert people.gold == pytest.approx((1.75 + 1.0 + _people(PROMPTS[2], "no idea")) / 3)
    verifier = step_stats(0, samples, rewards, gold="math", reward_model=None, kl=None)
    assert verifier.gold == pytest.approx(2 / 3)


def test_step_stats_proxy_is_the_total_reward_and_rm_scores_its_component():
    texts = [worked_solution(PROBLEMS[0]), bare_solution(PROBLEMS[1])]
    samples = [_sample(p, t) for p, t in zip(PROMPTS, texts, strict=False)]
    rewards = [Reward(2.5, {"math": 1.0, "rm": 1.5}), Reward(0.5, {"math": 0.0, "rm": 0.5})]
    stats = step_stats(7, samples, rewards, gold="math", reward_model="rm", kl=0.03)
    assert stats.step == 7 and stats.proxy == pytest.approx(1.5) and stats.gold == pytest.approx(0.5)
    assert stats.responses == tuple(texts) and stats.rm_scores == (1.5, 0.5) and stats.kl == 0.03
    assert stats.lengths == tuple(len(s.token_ids) for s in samples)
    bare = step_stats(0, samples, rewards, gold=None, reward_model=None, kl=None)
    assert bare.gold is None and bare.rm_scores == () and bare.kl is None
    with pytest.raises(ValueError, match="one reward per answer"):
        step_stats(0, samples, rewards[:1], gold=None, reward_model=None, kl=None)


def _job_thresholds(tmp_path_factory) -> MonitorConfig:
    """The monitor section `jobs/rlhf_quickstart.yaml` ships (its reward model only needs to exist)."""
    model_dir = tmp_path_factory.mktemp("rm")
    (model_dir / "config.json").write_text("{}")
    return load_job(JOB, [f"reward_model.path={model_dir}"]).monitor


@pytest.fixture(params=["defaults", "rlhf_quickstart"])
def thresholds(request, tmp_path_factory) -> MonitorConfig:
    return MonitorConfig() if request.param == "defaults" else _job_thresholds(tmp_path_factory)


def _healthy_eval(t: int, rng: random.Random) -> tuple[list[Sample], list[Reward]]:
    """A verifiable-reward run: accuracy climbs then plateaus, answers go from half bare to all worked."""
    accuracy = min(0.3 + 0.01 * t, 0.6)
    worked_share = min(1.0, 0.5 + 0.02 * t)
    samples, rewards = [], []
    for prompt, problem in zip(PROMPTS, PROBLEMS, strict=True):
        right = rng.random() < accuracy
        answer = problem if right else problem.__class__(problem.question, problem.steps, problem.answer + 1)
        text = worked_solution(answer) if rng.random() < worked_share else bare_solution(answer)
        formatted = 1.0 if "####" in text else 0.0
        samples.append(_sample(prompt, text))
        rewards.append(
            Reward(1.0 * right + 0.2 * formatted, {"math": float(right), "format": formatted}, right)
        )
    return samples, rewards


def test_monitor_is_silent_on_a_healthy_verifiable_reward_run(thresholds):
    monitor, rng = HackingMonitor(thresholds), random.Random(0)
    for evaluation in range(40):
        samples, rewards = _healthy_eval(evaluation, rng)
        kl = 0.004 * evaluation**0.5
        stats = step_stats(5 * evaluation, samples, rewards, gold="math", reward_model=None, kl=kl)
        update = monitor.update(stats)
        assert not update.active, (evaluation, update.active)
    assert monitor.first_alert is None and monitor.tags() == {}


def _pad(problem, lines: int) -> str:
    """A worked solution padded with `lines` plausible-looking lines the people do not want."""
    steps = list(problem.steps)
    steps += [f"check {problem.answer} plus {i} minus {i} gives {problem.answer}" for i in range(lines)]
    return "\n".join((*steps, f"#### {problem.answer}"))


def _overoptimised_eval(t: int, rng: random.Random) -> tuple[list[Sample], list[Reward]]:
    """RL against a reward model that likes more lines: first it learns to show its work (gold rises),
    then it pads (gold falls) while the reward model's score keeps rising."""
    worked_share = min(1.0, 0.5 + 0.04 * t)
    padding = max(0, t - 12) // 2  # from evaluation 14 on, one more padded line every two evaluations
    samples, rewards = [], []
    for prompt, problem in zip(PROMPTS, PROBLEMS, strict=True):
        text = _pad(problem, padding) if rng.random() < worked_share else bare_solution(problem)
        rm = 0.3 * text.count("\n") + rng.gauss(0, 0.5)  # the proxy: more lines, more reward
        samples.append(_sample(prompt, text))
        rewards.append(Reward(rm, {"math": 0.0, "rm": rm, "hidden_preference": _people(prompt, text)}, True))
    return samples, rewards


def test_monitor_alerts_soon_after_gold_peaks_when_the_proxy_is_gamed(thresholds):
    monitor = HackingMonitor(thresholds.model_copy(update={"stop_on_alert": True}))
    rng = random.Random(0)
    golds, alert = [], None
    for evaluation in range(40):
        samples, rewards = _overoptimised_eval(evaluation, rng)
        stats = step_stats(evaluation, samples, rewards, gold="hidden_preference", reward_model="rm", kl=None)
        golds.append(stats.gold)
        update = monitor.update(stats)
        if update.new:
            alert = update.new[0]
            break
    peak = max(range(len(golds)), key=golds.__getitem__)
    assert 11 <= peak <= 13  # gold rose while answers became worked solutions, then padding cost it
    assert alert is not None and alert.detector == "divergence", monitor.fired
    assert peak < alert.step <= peak + 6 and monitor.should_stop  # a few evaluations after the peak
    assert monitor.best_gold_step == peak


def test_monitor_state_round_trips_through_json():
    monitor, rng = HackingMonitor(), random.Random(0)
    for evaluation in range(30):
        samples, rewards = _overoptimised_eval(evaluation, rng)
        monitor.update(
            step_stats(evaluation, samples, rewards, gold="hidden_preference", reward_model="rm", kl=0.1)
        )
    restored = HackingMonitor.from_state_dict(monitor.config, json.loads(json.dumps(monitor.state_dict())))
    assert restored == monitor
    samples, rewards = _overoptimised_eval(30, rng)
    stats = step_stats(30, samples, rewards, gold="hidden_preference", reward_model="rm", kl=0.1)
    assert restored.update(stats).metrics == monitor.update(stats).metrics
