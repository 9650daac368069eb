"""Sweep plots: the downstream metric against each swept value (paper Figs. 9, 10, 12), and the
quality each run reached against what it spent."""

from __future__ import annotations

from typing import Any, Mapping

import pandas as pd

PREFERRED = ("CIDEr", "METEOR", "BLEU-4", "ROUGE_L")


def primary_metric(rows: list[dict[str, Any]]) -> str | None:
    names = [n for r in rows if r["final"] is not None for n in r["final"].corpus]
    return next((m for m in PREFERRED if m in names), names[0] if names else None)


def plot_sweep(grid: dict[str, list[Any]], rows: list[dict[str, Any]], title: str):
    """One panel per swept key: final metric (95% CI) per value, step-0 baseline dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = primary_metric(rows)
    if metric is None:
        return None
    fig, axes = plt.subplots(1, len(grid), figsize=(4.2 * len(grid), 3.4), squeeze=False)
    for ax, key in zip(axes[0], grid):
        values = grid[key]
        xs = list(range(len(values)))
        for x, value in zip(xs, values):
            for r in (r for r in rows if r["point"][key] == value and r["final"] is not None):
                est, base = r["final"].corpus[metric], r["step0"].corpus[metric]
                ax.errorbar(x, est.value, yerr=[[est.value - est.low], [est.high - est.value]], fmt="o", capsize=3,
                            color="C0")
                ax.plot([x - 0.25, x + 0.25], [base.value] * 2, "--", color="C1")
        ax.set_xticks(xs, [str(v) for v in values])
        ax.set_xlabel(key)
        ax.set_ylabel(f"{metric} (final; dashed: step 0)")
        ax.grid(alpha=0.3)
    fig.suptitle(f"{title}: {metric} vs swept value", fontsize=10)
    fig.tight_layout()
    return fig


def plot_quality_vs_cost(runs: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], title: str):
    """Mean best score at each step against the cumulative LLM tokens and seconds spent to reach
    it; one line per run (``label -> (step curves, step costs)``), so a sweep's variants share axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    for label, (curves, costs) in runs.items():
        spent = costs.reindex(curves["step"]).fillna(0).cumsum()
        for ax, column in ((axes[0], "generated_tokens"), (axes[1], "llm_seconds")):
            line, = ax.plot(spent[column].to_numpy(), curves["score/best"].to_numpy(), marker="o", label=label)
            for x, y, step in zip(spent[column], curves["score/best"], curves["step"]):
                ax.annotate(str(step), (x, y), textcoords="offset points", xytext=(3, 3), fontsize=6,
                            color=line.get_color())
    for ax, label in ((axes[0], "generated tokens (cumulative)"), (axes[1], "LLM seconds (cumulative)")):
        ax.set_xlabel(label)
        ax.set_ylabel("mean best score")
        ax.grid(alpha=0.3)
    if len(runs) > 1:
        axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(f"{title}: quality vs cost (labels: step)", fontsize=9)
    fig.tight_layout()
    return fig


