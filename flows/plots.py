"""Sweep plots: the downstream metric against each swept value (paper Figs. 9, 10, 12), and the
quality each run reached against what it spent."""

from __future__ import annotations

import itertools
from typing import Any, Mapping

import pandas as pd

from mils.config import primary_metric


def rows_primary_metric(rows: list[dict[str, Any]]) -> str | None:
    names = [n for r in rows if r["final"] is not None for n in r["final"].corpus]
    return primary_metric(names)


def plot_sweep(grid: dict[str, list[Any]], rows: list[dict[str, Any]], title: str):
    """One panel per swept key: the final metric (x100, as the console prints it; bars: bootstrap
    95% CI) per value, step 0 dashed; below, the paired change in the optimised score from step 0
    with its CI. Variants that share a value differ in the other keys: each combination of those
    gets its own colour and marker, side by side, named in the legend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metric = rows_primary_metric(rows)
    if metric is None:
        return None

    def final(r):
        est = r["final"].corpus[metric]
        return 100 * est.value, 100 * est.low, 100 * est.high, 100 * r["step0"].corpus[metric].value

    def gain(r):
        m = r.get("metrics") or {}
        return (m["gain/score"], m["gain/score_ci_low"], m["gain/score_ci_high"], 0.0) if "gain/score_ci_low" in m else None

    panels = [(final, f"{metric} x100 (final; dashed: step 0)")]
    if any(gain(r) for r in rows if r["final"] is not None):
        panels.append((gain, "change in the optimised score\nfrom step 0 (scorer units)"))
    fig, axes = plt.subplots(len(panels), len(grid), figsize=(4.6 * len(grid), 3.4 * len(panels)), squeeze=False)
    for row_axes, (value, label) in zip(axes, panels):
        for ax, key in zip(row_axes, grid):
            _sweep_panel(ax, grid, key, [r for r in rows if r["final"] is not None], value)
            ax.set_ylabel(label, fontsize=8)
    fig.suptitle(f"{title}: {metric} and the optimised score's change vs swept value (bars: bootstrap 95% CI over "
                 "samples)", fontsize=10)
    fig.tight_layout()
    return fig


def _sweep_panel(ax, grid: dict[str, list[Any]], key: str, rows: list[dict[str, Any]], value) -> None:
    """``value(row)``: (estimate, low, high, reference drawn dashed) or None."""
    markers = "osD^v<>ph*"
    others = [k for k in grid if k != key]
    present = {tuple(r["point"][k] for k in others) for r in rows}
    groups = [g for g in itertools.product(*(grid[k] for k in others)) if g in present]  # in the grid's order
    width = 0.6 / max(len(groups), 1)
    for g, group in enumerate(groups):
        label = ", ".join(f"{k.split('.')[-1]}={v}" for k, v in zip(others, group)) or None
        style = {"color": f"C{g % 10}", "marker": markers[g % len(markers)]}
        for x, setting in enumerate(grid[key]):
            for r in (r for r in rows if r["point"][key] == setting and tuple(r["point"][k] for k in others) == group):
                if (point := value(r)) is None:
                    continue
                est, low, high, reference = point
                offset = x + (g - (len(groups) - 1) / 2) * width
                ax.errorbar(offset, est, yerr=[[est - low], [high - est]], capsize=3, linestyle="none", label=label,
                            **style)
                ax.plot([offset - width / 2, offset + width / 2], [reference] * 2, "--", color=style["color"])
                label = None  # once per group in the legend
    ax.set_xticks(range(len(grid[key])), [str(v) for v in grid[key]])
    ax.set_xlabel(key)
    ax.grid(alpha=0.3)
    if others:
        ax.legend(fontsize=7, loc="best", title=", ".join(k.split(".")[-1] for k in others), title_fontsize=7)


def plot_quality_vs_cost(runs: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]], title: str):
    """Mean best score at each step against the cumulative LLM tokens and seconds spent to reach
    it; one line per run (``label -> (step curves, step costs)``), so a sweep's variants share axes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 3.8))
    # longest first: a steps variant read off a longer run is that run's first steps, drawn over it
    for label, (curves, costs) in sorted(runs.items(), key=lambda item: -len(item[1][0])):
        spent = costs.reindex(curves["step"]).fillna(0).cumsum()
        for ax, column in ((axes[0], "generated_tokens"), (axes[1], "llm_seconds")):
            line, = ax.plot(spent[column].to_numpy(), curves["score/best"].to_numpy(), marker="o", label=label,
                            linewidth=1.5 + 2.5 / len(curves), markersize=4 + 4 / len(curves))
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


