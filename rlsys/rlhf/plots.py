"""The over-optimisation plot: proxy (reward model) and gold against RL step, with the monitor's marks."""

import matplotlib

matplotlib.use("Agg")  # no display on servers and CI
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402


def proxy_vs_gold(
    history: dict[str, list[tuple[int, float]]], *, alert_step: int | None, best_gold_step: int | None
) -> Figure:
    """`monitor/proxy` and `monitor/gold` on two y-axes (their units differ), alert and best-gold marked."""
    figure, proxy_axes = plt.subplots(figsize=(8, 4))
    gold_axes = proxy_axes.twinx()
    for axes, key, color in (
        (proxy_axes, "monitor/proxy", "tab:blue"),
        (gold_axes, "monitor/gold", "tab:orange"),
    ):
        if history.get(key):
            steps, values = zip(*history[key], strict=True)
            axes.plot(steps, values, marker=".", color=color, label=key.split("/")[1])
        axes.set_ylabel(key.split("/")[1], color=color)
    if best_gold_step is not None:
        proxy_axes.axvline(
            best_gold_step, color="tab:green", linestyle=":", label=f"best gold (step {best_gold_step})"
        )
    if alert_step is not None:
        proxy_axes.axvline(
            alert_step, color="tab:red", linestyle="--", label=f"hacking alert (step {alert_step})"
        )
    proxy_axes.set(title="Reward model (proxy) against the people (gold), held-out prompts", xlabel="RL step")
    handles = [h for axes in (proxy_axes, gold_axes) for h in axes.get_legend_handles_labels()[0]]
    # Below the axes: inside, any corner can hide the curves (both start low and one of them ends low).
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False)
    figure.tight_layout(rect=(0, 0.08, 1, 1))
    return figure
