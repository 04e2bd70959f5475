"""Summary plots logged as MLflow artifacts: a person would rather look at a curve than read a table."""

import matplotlib

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
