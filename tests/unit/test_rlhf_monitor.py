"""The reward-hacking monitor's detectors on crafted sequences: degeneration, drift, and proxy-vs-gold."""

import json
import math
import random

import pytest
from pydantic import ValidationError

from rlsys.config import MonitorConfig
from rlsys.rlhf.monitor import (
    DriftReference,
    HackingMonitor,
    Spread,
    StepStats,
    distinct_n,
    divergence,
    noise_scale,
    outlier_share,
    repetition_rate,
    robust_z,
    trailing_mean,
)

WORKED = ["7 + 3 = 10\n10 * 2 = 20\n#### 20", "5 - 2 = 3\n3 * 4 = 12\n12 + 1 = 13\n#### 13", "#### 8"]


def test_repetition_rate():
    assert repetition_rate("the the the the") == pytest.approx(0.5)  # 2 trigrams, 1 distinct
    assert repetition_rate(" ".join(["the"] * 50)) == pytest.approx(1 - 1 / 48)
    assert all(repetition_rate(text) == 0.0 for text in WORKED)
    assert repetition_rate("too short") == 0.0


def test_distinct_n():
    assert distinct_n(["a b c", "a b d"], 2) == pytest.approx(3 / 4)  # (a b) twice, (b c), (b d)
    assert distinct_n([" ".join(["the"] * 20)] * 8, 2) == pytest.approx(1 / 152)
    assert distinct_n([], 2) == 0.0


def test_robust_z_ignores_extreme_references():
    reference = [0.0, 1.0, 2.0, 3.0, 4.0, 1000.0]  # median 2.5, MAD 1.5
    assert robust_z([2.5, 2.5 + 1.4826 * 1.5], reference) == pytest.approx([0.0, 1.0])
    assert outlier_share([2.0, 3.0, 100.0, -100.0], reference, z=3.5) == 0.5
    assert robust_z([1.0], [0.0, 0.0, 0.0]) == [pytest.approx(1e8)]  # constant reference: any move is extreme


def test_trailing_mean_is_causal():
    assert trailing_mean([3.0, 0.0, 3.0, 6.0], 2) == [3.0, 1.5, 1.5, 4.5]


def test_noise_scale_ignores_trend():
    assert noise_scale([0.1 * t for t in range(20)]) == pytest.approx(0.0, abs=1e-12)
    rng = random.Random(0)
    noisy = [0.01 * t + rng.gauss(0, 0.05) for t in range(400)]
    assert noise_scale(noisy) == pytest.approx(0.05, rel=0.2)


def _rise_then_fall(peak_at: int, steps: int) -> list[float]:
    return [
        0.2 + 0.02 * t if t <= peak_at else 0.2 + 0.02 * peak_at - 0.03 * (t - peak_at) for t in range(steps)
    ]


def _first_alert(proxy, gold, **kwargs) -> int | None:
    """Feed the series point by point, as the loop does; the index of the first alert."""
    for t in range(1, len(gold) + 1):
        if divergence(proxy[:t], gold[:t], **kwargs).alert:
            return t - 1
    return None


def test_divergence_alerts_a_few_steps_after_golds_peak():
    gold = _rise_then_fall(peak_at=30, steps=60)
    proxy = [0.1 * t for t in range(60)]  # keeps rising
    alert = _first_alert(proxy, gold)
    assert alert is not None and 30 < alert <= 38  # lag ~2, 0.05 drop ~2, patience 3
    state = divergence(proxy[: alert + 1], gold[: alert + 1])
    assert 30 <= state.peak <= 32 and state.gold_drop > 0.05 and state.proxy_gain > 0


def test_divergence_with_noise_still_alerts_near_the_peak():
    rng = random.Random(0)
    gold = [g + rng.gauss(0, 0.01) for g in _rise_then_fall(peak_at=25, steps=50)]
    proxy = [0.05 * t + rng.gauss(0, 0.02) for t in range(50)]
    alert = _first_alert(proxy, gold)
    assert alert is not None and 25 < alert <= 34


@pytest.mark.parametrize("seed", range(10))
@pytest.mark.parametrize("proxy_plateaus", [True, False])
def test_no_divergence_on_healthy_noisy_rises(seed, proxy_plateaus):
    # A verifiable-reward run: held-out accuracy rises with the ±2-point noise of a few hundred problems,
    # then plateaus; the training reward plateaus with it, or keeps creeping up (memorised prompts).
    rng = random.Random(seed)
    gold = [min(0.3 + 0.004 * t, 0.55) + rng.gauss(0, 0.02) for t in range(150)]
    proxy = [0.3 + 0.004 * (min(t, 62) if proxy_plateaus else t) + rng.gauss(0, 0.02) for t in range(150)]
    assert _first_alert(proxy, gold) is None


def test_no_divergence_when_the_proxy_falls_with_gold():
    gold = _rise_then_fall(peak_at=10, steps=30)
    assert _first_alert(gold, gold) is None  # a collapse, not a proxy being gamed


def test_divergence_rejects_misaligned_series():
    with pytest.raises(ValueError, match="one of each per evaluation"):
        divergence([1.0, 2.0], [1.0])


def _stats(step, texts, proxy=0.0, gold=None, **kwargs) -> StepStats:
    lengths = tuple(len(t.split()) for t in texts)
    return StepStats(step=step, proxy=proxy, gold=gold, responses=tuple(texts), lengths=lengths, **kwargs)


def test_monitor_flags_the_the_the():
    monitor = HackingMonitor()
    healthy = WORKED * 10
    assert not monitor.update(_stats(0, healthy)).active
    update = monitor.update(_stats(1, [" ".join(["the"] * 12)] * 30))
    detectors = {alert.detector for alert in update.new}
    assert {"repetition", "distinct"} <= detectors
    assert update.metrics["monitor/hacking_alert"] == 1.0
    assert monitor.first_alert.step == 1 and monitor.tags()["monitor.hacking_alert"] == "true"


def test_monitor_flags_length_blow_up_but_not_a_doubling():
    monitor = HackingMonitor()
    base = ["#### 8", "4 + 4 = 8\n#### 8"] * 10
    monitor.update(_stats(0, base))
    doubled = monitor.update(_stats(1, ["4 + 4 = 8\n#### 8"] * 20))  # bare -> worked: healthy growth
    assert not doubled.active and 1.5 < doubled.metrics["monitor/length_ratio"] < 2
    blown = [" ".join(f"{i} + 1 = {i + 1}" for i in range(10)) + " #### 11"] * 20
    update = monitor.update(_stats(2, blown))
    assert [alert.detector for alert in update.new] == ["length"]
    assert "mean length / first" in update.new[0].reason


def test_monitor_kl_and_rm_outliers():
    monitor = HackingMonitor(MonitorConfig(max_kl=0.5))
    rng = random.Random(0)
    reference = tuple(rng.gauss(0, 1) for _ in range(64))
    monitor.update(_stats(0, WORKED, kl=0.0, rm_scores=reference))
    calm = monitor.update(_stats(1, WORKED, kl=0.2, rm_scores=tuple(x + 0.5 for x in reference)))
    assert not calm.active
    hacked = monitor.update(_stats(2, WORKED, kl=0.8, rm_scores=tuple(x + 10 for x in reference)))
    assert {alert.detector for alert in hacked.new} == {"kl", "rm_outliers"}
    assert hacked.metrics["monitor/rm_outlier_share"] == 1.0


@pytest.mark.parametrize("source", ["reward model", "first training step"])
def test_length_drift_is_judged_against_the_policys_samples_before_rl(source):
    bare, worked = ["#### 8"] * 20, ["4 + 4 = 8\n8 * 2 = 16\n16 - 1 = 15\n#### 15"] * 20
    padded = [worked[0] + "\n" + "\n".join(f"check 15 plus {i} minus {i} gives 15" for i in range(6))] * 20
    first_only = HackingMonitor()
    first_only.update(_stats(0, bare))
    assert [a.detector for a in first_only.update(_stats(1, worked)).new] == ["length"]  # 2 -> 17 words
    # Sampled answers before RL, bare and worked, 6 words long on average: the reward model's training
    # answers, or (no reward model) the first training step's samples, which arrive after evaluation 0.
    if source == "reward model":
        monitor = HackingMonitor(reference=DriftReference(Spread(0.0, 1.0), mean_length=6.0))
        monitor.update(_stats(0, bare))
    else:
        monitor = HackingMonitor()
        monitor.update(_stats(0, bare))
        monitor.observe_policy_samples([2, 2, 17, 3])
    monitor.observe_policy_samples([100, 100])  # later samples never move the reference
    healthy = monitor.update(_stats(1, worked))
    assert not healthy.active and healthy.metrics["monitor/length_ratio"] == pytest.approx(17 / 6)
    blown = monitor.update(_stats(2, padded))
    assert [a.detector for a in blown.new] == ["length"] and "sampled before RL" in blown.new[0].reason
    restored = HackingMonitor.from_state_dict(MonitorConfig(), json.loads(json.dumps(monitor.state_dict())))
    assert restored.reference == monitor.reference


def test_rm_outliers_are_judged_against_the_training_scores_when_known():
    # The first evaluation's answers are all poor (scores near -2): a policy that learns to answer well
    # moves every score far from them, though well inside what the reward model gave good answers in
    # training (median 0, spread 1.5). Only a score beyond anything seen in training is an outlier.
    rng = random.Random(1)
    poor = tuple(rng.gauss(-2, 0.2) for _ in range(64))
    improved = tuple(rng.gauss(1.5, 0.3) for _ in range(64))
    hacked = tuple(rng.gauss(12, 0.3) for _ in range(64))
    first_only = HackingMonitor()
    first_only.update(_stats(0, WORKED, rm_scores=poor))
    assert [a.detector for a in first_only.update(_stats(1, WORKED, rm_scores=improved)).new] == [
        "rm_outliers"
    ]
    trained = HackingMonitor(reference=DriftReference(Spread(median=0.0, scale=1.5), mean_length=3.0))
    trained.update(_stats(0, WORKED, rm_scores=poor))
    healthy = trained.update(_stats(1, WORKED, rm_scores=improved))
    assert not healthy.active and healthy.metrics["monitor/rm_outlier_share"] == 0.0
    assert [a.detector for a in trained.update(_stats(2, WORKED, rm_scores=hacked)).new] == ["rm_outliers"]


def test_spread_is_the_median_and_scaled_mad():
    assert Spread.of([1.0, 2.0, 3.0, 4.0, 100.0]) == Spread(3.0, pytest.approx(1.4826))
    assert robust_z([4.4826], Spread(3.0, 1.4826)) == [pytest.approx(1.0)]


def test_monitor_proxy_vs_gold_best_checkpoint_and_stop():
    monitor = HackingMonitor(MonitorConfig(stop_on_alert=True))
    gold = _rise_then_fall(peak_at=20, steps=40)
    best_steps, alert_step = [], None
    for t, g in enumerate(gold):
        update = monitor.update(_stats(t, WORKED, proxy=0.1 * t, gold=g))
        if update.is_best_gold:
            best_steps.append(t)
        if update.new:
            alert_step = t
            break
    assert best_steps[-1] == 20 and monitor.best_gold_step == 20
    assert alert_step is not None and 20 < alert_step <= 28 and monitor.should_stop
    tags = monitor.tags()
    assert tags["monitor.alert_detectors"] == "divergence" and tags["monitor.best_gold_step"] == "20"
    assert "gold fell" in tags["monitor.alert_reason"]


def test_monitor_is_silent_on_a_healthy_verifiable_run():
    monitor = HackingMonitor()
    rng = random.Random(1)
    for t in range(100):
        accuracy = min(0.3 + 0.005 * t, 0.6) + rng.gauss(0, 0.02)
        # The model learns to write its steps: answers grow from mostly bare to worked.
        worked_share = min(1.0, 0.4 + 0.01 * t)
        texts = [WORKED[i % 2] if (i / 40) < worked_share else "#### 8" for i in range(40)]
        update = monitor.update(_stats(t, texts, proxy=accuracy, gold=accuracy, kl=0.01 * math.sqrt(t)))
        assert not update.active, update.active
    assert monitor.first_alert is None and monitor.tags() == {}


def test_monitor_config_rejects_unknown_keys():
    with pytest.raises(ValidationError, match="max_repetiton"):
        MonitorConfig(max_repetiton=0.2)


def test_proxy_vs_gold_plot_marks_alert_and_best():
    from rlsys.rlhf.plots import proxy_vs_gold

    gold = _rise_then_fall(peak_at=10, steps=20)
    history = {"monitor/proxy": [(t, 0.1 * t) for t in range(20)], "monitor/gold": list(enumerate(gold))}
    figure = proxy_vs_gold(history, alert_step=16, best_gold_step=10)
    labels = figure.legends[0].get_texts()  # below the axes, on the figure
    assert [label.get_text() for label in labels] == [
        "proxy",
        "best gold (step 10)",
        "hacking alert (step 16)",
        "gold",
    ]
