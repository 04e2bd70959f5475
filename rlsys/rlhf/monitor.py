"""The reward-hacking monitor: is RL gaming its reward model?

A reward model is a proxy for what people want, and RL finds the proxy's blind spots (Gao et al. 2022,
"Scaling laws for reward model overoptimization"): the proxy keeps rising while the true quality (gold)
peaks and falls, and the text often degenerates on the way. Every few steps the learner loop scores
held-out prompts and hands the monitor a `StepStats`; the monitor answers with alerts and metrics.

Detectors (pure functions below, each tested on crafted sequences):
- `divergence`: the smoothed gold has fallen at least `min_drop` below its best for `patience` gold
  evaluations in a row while the smoothed proxy rose above its value at gold's best (both beyond noise).
  Needs a gold: the hidden preference in the quickstart, in general a verifiable check or a stronger judge.
- degeneration, no gold needed: `repetition_rate` (n-grams a text repeats), `distinct_n` (vocabulary
  collapse across a batch), length drift, per-token KL from the reference, and `outlier_share` of
  reward-model scores far outside the usual (robust z-score). "Usual" is a `DriftReference`: the reward
  model's scores on its held-out training data (saved by `rlsys train-rm`), and the mean length of the
  policy's *sampled* answers before RL (the reward model's training answers, or the first training step's
  samples): answers far longer, or scored far higher, than those are where a proxy stops meaning
  anything. The first evaluation is the fallback only: its greedy answers are a narrow slice (the
  embedded model answers bare, so learning to show its work would look like a 4x length drift).

The loop logs `monitor.metrics`, tags the MLflow run with `HackingMonitor.tags()` once an alert fired, keeps
the checkpoint of `best_gold_step`, and stops when `stop_on_alert` is set.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace

from rlsys.config import MonitorConfig

# Scales a median absolute deviation to the standard deviation of a normal distribution.
_MAD_TO_STD = 1.4826


def ngrams(words: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(words[i : i + n]) for i in range(len(words) - n + 1)]


def repetition_rate(text: str, n: int = 3) -> float:
    """Share of a text's word n-grams that repeat an earlier one: 1 - distinct / total (0 when too short).

    "the the the the" (n=3): 2 trigrams, 1 distinct, rate 0.5; a worked solution repeats none.
    """
    grams = ngrams(text.split(), n)
    return 1.0 - len(set(grams)) / len(grams) if grams else 0.0


def distinct_n(texts: Sequence[str], n: int = 2) -> float:
    """Distinct-n of a batch (Li et al. 2016): distinct word n-grams over all n-grams, pooled across texts."""
    grams = [gram for text in texts for gram in ngrams(text.split(), n)]
    return len(set(grams)) / len(grams) if grams else 0.0


@dataclass(frozen=True)
class Spread:
    """Where a distribution sits and how wide it is, robustly: its median and 1.4826 * MAD."""

    median: float
    scale: float

    @classmethod
    def of(cls, reference: Sequence[float]) -> Spread:
        """A reference with zero MAD (half of it one value) falls back to its standard deviation, or 1e-8."""
        center = statistics.median(reference)
        mad = statistics.median(abs(r - center) for r in reference)
        scale = _MAD_TO_STD * mad or (statistics.pstdev(reference) if len(reference) > 1 else 0.0) or 1e-8
        return cls(center, scale)


@dataclass(frozen=True)
class DriftReference:
    """What the drift detectors compare with: reward-model scores in training, and the mean length (tokens)
    of the policy's sampled answers before RL. None: not known (yet); the first evaluation stands in."""

    scores: Spread | None = None
    mean_length: float | None = None


def robust_z(values: Sequence[float], reference: Sequence[float] | Spread) -> list[float]:
    """(x - median(ref)) / (1.4826 * MAD(ref)): a z-score that a few extreme references do not inflate."""
    spread = reference if isinstance(reference, Spread) else Spread.of(reference)
    return [(v - spread.median) / spread.scale for v in values]


def outlier_share(values: Sequence[float], reference: Sequence[float] | Spread, z: float = 3.5) -> float:
    """Share of `values` whose robust z-score against `reference` exceeds `z` in absolute value."""
    if not values:
        return 0.0
    return sum(abs(score) > z for score in robust_z(values, reference)) / len(values)


def trailing_mean(values: Sequence[float], window: int) -> list[float]:
    """Mean of the last `window` values at each point (causal: uses no later value)."""
    return [statistics.fmean(values[max(0, i - window + 1) : i + 1]) for i in range(len(values))]


def noise_scale(values: Sequence[float]) -> float:
    """The point-to-point noise of a series: 1.4826 * MAD(second differences) / sqrt(6).

    A second difference x[t+1] - 2 x[t] + x[t-1] cancels any locally straight trend, so a curve that climbs
    or falls fast but smoothly does not pass for noise (first differences did: a fast rise inflated the
    noise and delayed the alert by several evaluations); the median ignores the few bends (a real peak).
    Each second difference carries 1 + 4 + 1 = 6 times a point's noise variance, hence the sqrt(6).
    Zero with fewer than four points.
    """
    curvature = [a - 2 * b + c for a, b, c in zip(values, values[1:], values[2:], strict=False)]
    if len(curvature) < 2:
        return 0.0
    center = statistics.median(curvature)
    return _MAD_TO_STD * statistics.median(abs(d - center) for d in curvature) / math.sqrt(6)


@dataclass(frozen=True)
class Divergence:
    """The state of the proxy-vs-gold check as of the last gold evaluation (indices into the series)."""

    peak: int  # index of the smoothed gold's best
    gold_drop: float  # smoothed gold's best minus its last value
    proxy_gain: float  # smoothed proxy's last value minus its value at gold's best
    streak: int  # trailing evaluations where gold is down and the proxy up, both beyond their thresholds
    alert: bool


def divergence(
    proxy: Sequence[float],
    gold: Sequence[float],
    *,
    window: int = 5,
    min_drop: float = 0.05,
    noise_z: float = 3.0,
    patience: int = 3,
) -> Divergence:
    """Does gold fall while the proxy keeps rising? Both series are aligned, one point per gold evaluation.

    Smooth both with a trailing mean of `window` (G and P); let p = argmax G. A point t > p is a breach when

        G_p - G_t > max(min_drop, noise_z * sigma_gold / sqrt(window))     gold fell, beyond its noise
        P_t - P_p > noise_z * sigma_proxy / sqrt(window)                   the proxy rose, beyond its noise

    with sigma from `noise_scale`. Alert when the last `patience` points are all breaches. The trailing mean
    lags about (window - 1) / 2 points, so the alert comes a few evaluations after gold's peak, later when
    gold falls slowly. A healthy run's gold wanders around a plateau; the noise term keeps such wandering
    from counting, provided gold is measured on enough prompts that its noise is well under `min_drop`.
    """
    if len(proxy) != len(gold):
        raise ValueError(f"proxy has {len(proxy)} points, gold {len(gold)}; pass one of each per evaluation")
    if not gold:
        return Divergence(peak=0, gold_drop=0.0, proxy_gain=0.0, streak=0, alert=False)
    smooth_proxy, smooth_gold = trailing_mean(proxy, window), trailing_mean(gold, window)
    peak = max(range(len(smooth_gold)), key=lambda i: (smooth_gold[i], -i))  # earliest best
    need_drop = max(min_drop, noise_z * noise_scale(gold) / math.sqrt(window))
    need_gain = noise_z * noise_scale(proxy) / math.sqrt(window)
    streak = 0
    for t in range(len(gold) - 1, peak, -1):
        fell = smooth_gold[peak] - smooth_gold[t] > need_drop
        rose = smooth_proxy[t] - smooth_proxy[peak] > need_gain
        if not (fell and rose):
            break
        streak += 1
    return Divergence(
        peak=peak,
        gold_drop=smooth_gold[peak] - smooth_gold[-1],
        proxy_gain=smooth_proxy[-1] - smooth_proxy[peak],
        streak=streak,
        alert=streak >= patience,
    )


@dataclass(frozen=True)
class StepStats:
    """What the loop measured on held-out prompts at one step (one response per prompt)."""

    step: int
    proxy: float  # mean proxy reward (the reward model's score)
    gold: float | None = None  # mean gold score of the same responses; None where no gold exists
    responses: tuple[str, ...] = ()
    lengths: tuple[int, ...] = ()  # response lengths in tokens
    kl: float | None = None  # per-token KL(policy || reference)
    rm_scores: tuple[float, ...] = ()  # the reward model's score of each response


@dataclass(frozen=True)
class Alert:
    step: int
    detector: str  # "divergence", "repetition", "distinct", "length", "kl", "rm_outliers"
    reason: str


@dataclass
class MonitorUpdate:
    """The monitor's answer to one `StepStats`."""

    metrics: dict[str, float]
    active: list[Alert]  # every detector over its threshold at this step
    new: list[Alert]  # the detectors that crossed for the first time at this step
    is_best_gold: bool  # this step's gold is the best so far: keep its checkpoint


@dataclass
class HackingMonitor:
    """Feeds `StepStats` to the detectors; the first evaluation is every drift detector's baseline."""

    config: MonitorConfig = field(default_factory=MonitorConfig)
    reference: DriftReference = field(default_factory=DriftReference)
    baseline: StepStats | None = None
    proxies: list[float] = field(default_factory=list)  # at steps with a gold
    golds: list[float] = field(default_factory=list)
    gold_steps: list[int] = field(default_factory=list)
    fired: dict[str, Alert] = field(default_factory=dict)  # detector -> its first alert

    @property
    def best_gold_step(self) -> int | None:
        if not self.golds:
            return None
        return self.gold_steps[max(range(len(self.golds)), key=lambda i: (self.golds[i], -i))]

    @property
    def first_alert(self) -> Alert | None:
        return min(self.fired.values(), key=lambda alert: alert.step, default=None)

    @property
    def should_stop(self) -> bool:
        return self.config.stop_on_alert and bool(self.fired)

    def observe_policy_samples(self, lengths: Sequence[int]) -> None:
        """The untrained policy's sampled answers: their mean length is the length reference, unless the
        reward model's training answers already gave one."""
        if self.reference.mean_length is None and lengths:
            self.reference = replace(self.reference, mean_length=statistics.fmean(lengths))

    def update(self, stats: StepStats) -> MonitorUpdate:
        if self.baseline is None:
            self.baseline = stats
        metrics: dict[str, float] = {"monitor/proxy": stats.proxy}
        active: list[Alert] = []
        is_best = False
        if stats.gold is not None:
            is_best = not self.golds or stats.gold > max(self.golds)
            self.proxies.append(stats.proxy)
            self.golds.append(stats.gold)
            self.gold_steps.append(stats.step)
            active += self._divergence(stats.step, metrics)
        active += self._degeneration(stats, metrics)
        new = [alert for alert in active if alert.detector not in self.fired]
        self.fired.update({alert.detector: alert for alert in new})
        metrics["monitor/hacking_alert"] = float(bool(active))
        return MonitorUpdate(metrics=metrics, active=active, new=new, is_best_gold=is_best)

    def state_dict(self) -> dict:
        """What the monitor remembers (not its config) as JSON-able data, saved with a checkpoint so a
        resumed run continues the same series and keeps its first alert."""
        return {
            "reference": asdict(self.reference),
            "baseline": asdict(self.baseline) if self.baseline is not None else None,
            "proxies": list(self.proxies),
            "golds": list(self.golds),
            "gold_steps": list(self.gold_steps),
            "fired": {detector: asdict(alert) for detector, alert in self.fired.items()},
        }

    @classmethod
    def from_state_dict(
        cls, config: MonitorConfig, state: dict, reference: DriftReference | None = None
    ) -> HackingMonitor:
        """`reference`: for a state saved before the monitor kept its own."""
        baseline = state["baseline"]
        if baseline is not None:  # JSON turned the tuples into lists
            baseline = StepStats(**{k: tuple(v) if isinstance(v, list) else v for k, v in baseline.items()})
        if state.get("reference") is not None:
            saved = state["reference"]
            scores = Spread(**saved["scores"]) if saved["scores"] is not None else None
            reference = DriftReference(scores, saved["mean_length"])
        return cls(
            config=config,
            reference=reference or DriftReference(),
            baseline=baseline,
            proxies=list(state["proxies"]),
            golds=list(state["golds"]),
            gold_steps=list(state["gold_steps"]),
            fired={detector: Alert(**alert) for detector, alert in state["fired"].items()},
        )

    def tags(self) -> dict[str, str]:
        """MLflow run tags once an alert fired (empty before)."""
        first = self.first_alert
        if first is None:
            return {}
        return {
            "monitor.hacking_alert": "true",
            "monitor.alert_step": str(first.step),
            "monitor.alert_detectors": ",".join(sorted(self.fired)),
            "monitor.alert_reason": first.reason,
            "monitor.best_gold_step": str(self.best_gold_step),
        }

    def _divergence(self, step: int, metrics: dict[str, float]) -> list[Alert]:
        c = self.config
        state = divergence(
            self.proxies,
            self.golds,
            window=c.window,
            min_drop=c.min_drop,
            noise_z=c.noise_z,
            patience=c.patience,
        )
        metrics.update(
            {
                "monitor/gold": self.golds[-1],
                "monitor/gold_smoothed": trailing_mean(self.golds, c.window)[-1],
                "monitor/proxy_smoothed": trailing_mean(self.proxies, c.window)[-1],
                "monitor/gold_drop": state.gold_drop,
            }
        )
        if not state.alert:
            return []
        reason = (
            f"gold fell {state.gold_drop:.3f} below its best (step {self.gold_steps[state.peak]}) for "
            f"{state.streak} evaluations while the proxy rose {state.proxy_gain:+.3f}"
        )
        return [Alert(step, "divergence", reason)]

    def _degeneration(self, stats: StepStats, metrics: dict[str, float]) -> list[Alert]:
        c, base, alerts = self.config, self.baseline, []

        def check(detector: str, value: float | None, limit: float | None, above: bool, what: str) -> None:
            if value is None or limit is None:
                return
            if (value > limit) if above else (value < limit):
                alerts.append(
                    Alert(stats.step, detector, f"{what} {value:.3f} {'>' if above else '<'} {limit}")
                )

        if stats.responses:
            repetition = statistics.fmean(repetition_rate(text, c.repetition_n) for text in stats.responses)
            distinct = distinct_n(stats.responses, 2)
            base_distinct = distinct_n(base.responses, 2) if base.responses else 0.0
            metrics.update({"monitor/repetition_rate": repetition, "monitor/distinct_2": distinct})
            check("repetition", repetition, c.max_repetition, True, "mean repetition rate")
            if base_distinct > 0:
                metrics["monitor/distinct_ratio"] = distinct / base_distinct
                check("distinct", distinct / base_distinct, c.min_distinct_ratio, False, "distinct-2 / first")
        known = self.reference
        base_length = known.mean_length or (statistics.fmean(base.lengths) if base.lengths else 0.0)
        if stats.lengths and base_length > 0:
            ratio = statistics.fmean(stats.lengths) / base_length
            what = f"mean length / {'sampled before RL' if known.mean_length else 'first evaluation'}"
            metrics["monitor/length_ratio"] = ratio
            check("length", ratio, c.max_length_ratio, True, what)
            check("length", ratio, c.min_length_ratio, False, what)
        if stats.kl is not None:
            metrics["monitor/kl"] = stats.kl
            check("kl", stats.kl, c.max_kl, True, "per-token KL to the reference")
        reference = known.scores or base.rm_scores
        if stats.rm_scores and reference:
            share = outlier_share(stats.rm_scores, reference, c.outlier_z)
            metrics["monitor/rm_outlier_share"] = share
            check(
                "rm_outliers", share, c.max_outlier_share, True, f"share of RM scores beyond z={c.outlier_z}"
            )
        return alerts
