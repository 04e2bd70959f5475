"""Summary plots logged as MLflow artifacts: a person would rather look at a curve than read a table."""

import matplotlib

from rlsys.abstention import calibration_table

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def training_summary(history: dict[str, list[tuple[int, float]]]) -> Figure:
    """Held-out accuracy (greedy and sampled) and training reward against RL step, in two panels; in a job
    whose responses call tools, the share of answers that did beside each, so both can be seen to rise
    together."""
    figure, (eval_axes, train_axes) = plt.subplots(1, 2, figsize=(11, 4))
    for key, label in (
        ("eval/accuracy", "greedy"),
        ("eval/accuracy_sampled", "sampled"),
        ("eval/tool/used_share", "greedy answers calling the tool"),
    ):
        if history.get(key):
            steps, values = zip(*history[key], strict=True)
            eval_axes.plot(steps, values, marker="o", label=label)
    eval_axes.set(title="Held-out accuracy", xlabel="RL step", ylabel="share", ylim=(0, 1))
    eval_axes.legend()
    for key, label in (
        ("train/reward_mean", "reward"),
        ("train/accuracy", "accuracy"),
        ("tool/used_share", "samples calling the tool"),
    ):
        if history.get(key):
            steps, values = zip(*history[key], strict=True)
            train_axes.plot(steps, values, label=label, alpha=0.8)
    train_axes.set(title="Training batches", xlabel="RL step", ylim=(0, 1))
    train_axes.legend()
    figure.tight_layout()
    return figure


def sft_losses(history: dict[str, list[tuple[int, float]]]) -> Figure:
    """An SFT run's training loss (per step) and held-out loss (per evaluation) against step."""
    figure, axes = plt.subplots(figsize=(7, 4))
    for key, label, style in (("train/loss", "training", "-"), ("eval/loss", "held out", "o-")):
        if history.get(key):
            steps, values = zip(*history[key], strict=True)
            axes.plot(steps, values, style, label=label, alpha=0.8)
    axes.set(title="SFT loss (reply tokens)", xlabel="step", ylabel="cross-entropy per token")
    axes.legend()
    figure.tight_layout()
    return figure


def calibration_plot(points: dict[int, list[tuple[float, str]]]) -> Figure:
    """Calibration of the answers at each step given (`rlsys.abstention.calibration_points`): left, the
    accuracy of the answers given against the model's confidence in them (a calibrated model follows the
    diagonal); right, per confidence bin, the shares of right, abstained and wrong greedy answers, one bar per
    step (a model that knows what it does not know abstains where its confidence is low)."""
    figure, (reliability, shares) = plt.subplots(1, 2, figsize=(12, 4.5))
    reliability.plot([0, 1], [0, 1], ":", color="grey", label="calibrated")
    width = 0.8 / (5 * max(1, len(points)))
    colors = {"right": "tab:green", "abstained": "tab:gray", "wrong": "tab:red"}
    for offset, (step, step_points) in enumerate(sorted(points.items())):
        table = calibration_table(step_points)
        centres = [(row["low"] + row["high"]) / 2 for row in table]
        given = [
            (c, row["accuracy"]) for c, row in zip(centres, table, strict=True) if row["accuracy"] is not None
        ]
        if given:
            reliability.plot(*zip(*given, strict=True), "o-", label=f"step {step}")
        bottom = [0.0] * len(table)
        positions = [c - 0.08 + offset * (width + 0.01) for c in centres]
        for name, color in colors.items():
            heights = [row[name] for row in table]
            shares.bar(
                positions,
                heights,
                width,
                bottom=bottom,
                color=color,
                alpha=1.0 if offset else 0.45,
                label=f"{name} (step {step})",
            )
            bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    reliability.set(
        title="Accuracy of the answers given",
        xlabel="confidence (share of samples agreeing with the greedy answer)",
        ylabel="accuracy",
        xlim=(0, 1),
        ylim=(0, 1.02),
    )
    reliability.legend()
    shares.set(
        title="Greedy answers by confidence", xlabel="confidence", ylabel="share of questions", ylim=(0, 1.02)
    )
    shares.legend(fontsize="small", ncol=2)
    figure.tight_layout()
    return figure


def knowledge_map(right_shares: list[float], abstain_shares: list[float], samples: int) -> Figure:
    """The probe's knowledge map: how many questions the model gets right in each share of its samples (0 of
    k: it does not know; k of k: it knows), and beside it how often it already abstains."""
    figure, (known, declined) = plt.subplots(1, 2, figsize=(11, 4))
    edges = [(i - 0.5) / samples for i in range(samples + 2)]
    known.hist(right_shares, bins=edges, color="tab:green", edgecolor="white")
    known.set(
        title="Knowledge map: per-question accuracy",
        xlabel=f"share of {samples} sampled answers right",
        ylabel="questions",
    )
    declined.hist(abstain_shares, bins=edges, color="tab:gray", edgecolor="white")
    declined.set(
        title="Abstentions", xlabel=f"share of {samples} sampled answers abstaining", ylabel="questions"
    )
    figure.tight_layout()
    return figure
