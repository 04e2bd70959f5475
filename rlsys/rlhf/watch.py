"""The reward-hacking monitor in a running job: what the learner loop hands it and what it does on its own.

`HackingMonitor` (`rlsys.rlhf.monitor`) judges series of numbers. `MonitorWatch` is its place in the loop:
every `monitor.every` steps it samples one greedy answer per held-out prompt, scores it with the job's
reward (the proxy) and its gold component, logs `monitor/*`, tags the run at an alert, keeps the policy of the
best-gold step, and says whether to stop. At the end it logs its answers table and the proxy-vs-gold plot.
"""

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from rlsys import atomic
from rlsys.config import MonitorConfig, RewardModelConfig
from rlsys.console import console, note
from rlsys.metrics import mean
from rlsys.protocols import Pools, Tracker
from rlsys.rlhf.measure import step_stats
from rlsys.rlhf.monitor import DriftReference, HackingMonitor, MonitorUpdate
from rlsys.rlhf.plots import proxy_vs_gold
from rlsys.rlhf.reward_model import reward_model_info, training_reference
from rlsys.scoring import sample_and_score
from rlsys.types import Prompt, Reward, Sampling

BEST_GOLD_DIR = "best_gold_policy"
TABLE_ROWS = 4  # greedy answers per evaluation kept in the monitor's samples table


@dataclass(frozen=True)
class MonitorOutcome:
    alert_step: int | None  # the first alert
    best_gold_step: int | None
    best_gold_dir: str | None  # the policy of the best-gold step


class MonitorWatch:
    """Everything the loop does for the reward-hacking monitor, behind four verbs: `observe_training` (after
    each step), `look` (may stop the run), `state_dict`/`load_state_dict` (checkpoints) and `finish`."""

    def __init__(
        self,
        config: MonitorConfig,
        *,
        prompts: Sequence[Prompt],
        max_new_tokens: int,
        reward_model: RewardModelConfig | None,
        pools: Pools,
        tracker: Tracker,
        run_dir: Path,
    ) -> None:
        self.config, self.pools, self.tracker = config, pools, tracker
        self.prompts = list(prompts[: config.prompts])
        self.greedy = Sampling(n=1, temperature=0.0, max_new_tokens=max_new_tokens)
        self.reward_model_name = reward_model.name if reward_model is not None else None
        # Length drift and outlying scores are judged against what the reward model saw, when recorded.
        reference = training_reference(reward_model.path) if reward_model is not None else DriftReference()
        self.monitor = HackingMonitor(config, reference)
        self.best_gold_dir = run_dir / BEST_GOLD_DIR
        self.last_kl: float | None = None  # the latest train/kl
        self.rows: list[dict] = []

    def observe_training(self, lengths: Sequence[int], kl: float | None, *, untrained: bool) -> None:
        """A training step's answer lengths (a length reference when the policy was still `untrained`) and its
        measured KL to the reference, if any."""
        if untrained:
            self.monitor.observe_policy_samples(lengths)
        if kl is not None:
            self.last_kl = kl

    def look(self, step: int) -> bool:
        """The monitor's look at this step, when one is due (step 0 included); True when it says stop."""
        if step % self.config.every:
            return False
        scored = sample_and_score(
            self.pools.rollout, self.pools.scorers(), self.prompts, self.greedy, [None] * len(self.prompts)
        )
        samples, rewards = [g[0] for g in scored.groups], [r[0] for r in scored.rewards]
        stats = step_stats(
            step,
            samples,
            rewards,
            gold=self.config.gold,
            reward_model=self.reward_model_name,
            kl=self.last_kl,
        )
        update = self.monitor.update(stats)
        self.tracker.log_metrics(
            {**update.metrics, "monitor/accuracy": mean(bool(r.correct) for r in rewards)}, step
        )
        self.rows.extend(
            _rows(step, self.prompts[:TABLE_ROWS], stats.responses[:TABLE_ROWS], rewards[:TABLE_ROWS])
        )
        gold = "n/a" if stats.gold is None else f"{stats.gold:.3f}"
        console.log(f"monitor at step {step}: proxy {stats.proxy:.3f}  gold {gold}  {_alert_words(update)}")
        for alert in update.new:
            console.log(
                f"[bold red]reward-hacking alert[/] at step {step} ({alert.detector}): {alert.reason}"
            )
        if update.new:
            self.tracker.set_tags(self.monitor.tags())
        if update.is_best_gold:
            self._save_best_gold(step, stats.gold)
        return self.monitor.should_stop

    def _save_best_gold(self, step: int, gold: float) -> None:
        """The policy of the best-gold step so far, as a Hugging Face directory (replaced whole, never
        partial), with `best_gold.json` saying which step it is."""
        self.pools.learner.save_pretrained(str(self.best_gold_dir))
        atomic.write_text(
            self.best_gold_dir / "best_gold.json", json.dumps({"step": step, "gold": gold}) + "\n"
        )

    def state_dict(self) -> dict:
        return {"monitor": self.monitor.state_dict(), "last_kl": self.last_kl}

    def load_state_dict(self, state: dict) -> None:
        # Checkpoints written before the watch kept its own state hold the monitor's alone.
        monitor = state.get("monitor", state)
        self.monitor = HackingMonitor.from_state_dict(self.config, monitor, self.monitor.reference)
        self.last_kl = state.get("last_kl")

    def finish(self) -> MonitorOutcome:
        """Tags, the monitor's answers table and the proxy-vs-gold plot; what the run's summary reports."""
        monitor, tracker = self.monitor, self.tracker
        alert = monitor.first_alert
        best_dir = self.best_gold_dir if monitor.best_gold_step is not None else None
        tags = monitor.tags() or {"monitor.hacking_alert": "false"}
        if best_dir is not None:
            tags.update(
                {
                    "monitor.best_gold_step": str(monitor.best_gold_step),
                    "monitor.best_gold_policy": str(best_dir),
                }
            )
        tracker.set_tags(tags)
        tracker.log_table(self.rows, "monitor_samples.json")
        history = {key: tracker.history(key) for key in ("monitor/proxy", "monitor/gold")}
        alert_step = alert.step if alert else None
        figure = proxy_vs_gold(history, alert_step=alert_step, best_gold_step=monitor.best_gold_step)
        tracker.log_figure(figure, "plots/proxy_vs_gold.png")
        return MonitorOutcome(alert_step, monitor.best_gold_step, str(best_dir) if best_dir else None)


def check_reward_model_base(reward_model_dir: str, policy_dir: str) -> None:
    """Say so when the reward model learned from another model's answers than the policy's: it scores fine,
    but it was never shown answers like the policy's, so it is a weaker proxy (e.g. after a rebuilt
    embedded model: train the reward model again)."""
    base = reward_model_info(reward_model_dir).get("base_model")
    if base is not None and Path(base).resolve() != Path(policy_dir).resolve():
        note(
            f"the reward model was trained from {base}, the policy is {policy_dir}: "
            f"retrain it (`rlsys train-rm`) for a proxy that has seen this policy's answers"
        )


def _alert_words(update: MonitorUpdate) -> str:
    return f"ALERT: {', '.join(a.detector for a in update.active)}" if update.active else "no alert"


def _rows(
    step: int, prompts: Sequence[Prompt], responses: Sequence[str], rewards: Sequence[Reward]
) -> list[dict]:
    """The greedy answers the monitor scored, for the monitor's samples table."""
    return [
        {
            "step": step,
            "prompt": prompt.messages[-1]["content"],
            "completion": text,
            "reward": reward.score,
            "components": json.dumps(reward.components),
        }
        for prompt, text, reward in zip(prompts, responses, rewards, strict=True)
    ]
