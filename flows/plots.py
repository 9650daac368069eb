"""Sweep comparison plot: the downstream metric against each swept value (paper Figs. 9, 10, 12)."""

from __future__ import annotations

from typing import Any

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
