"""A frontier over seeds: the runs that differ only in ``loop.seed`` are one setting, one point.

Each quality and cost column is the mean over the setting's seeds, with its spread (``<column> sd``: the
sample standard deviation over seeds). The optimised score's difference from the first run's setting is
paired on (seed, sample): each seed's run against the first setting's run of the same seed, over the samples
both have; its 95% interval is a two-way bootstrap (seeds and samples each resampled with replacement), so
it counts both the luck of the seed and the choice of the samples. Pareto points are marked on the means.
Written beside the per-run frontier as ``frontier_seeds.csv`` and ``frontier_seeds.png``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from mils.files import save_figure, written

SEED = "loop.seed"
QUALITY = ("optimised", "held_out", "BLEU-4", "METEOR", "ROUGE_L", "CIDEr", "SPICE")
COST = ("generated_tokens_per_sample", "llm_seconds_per_sample", "model_seconds_per_sample")


def two_way_interval(diffs: np.ndarray, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
    """The 95% interval of the mean of ``diffs[seeds, samples]``, seeds and samples resampled apart."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, diffs.shape[0], size=(resamples, diffs.shape[0]))
    cols = rng.integers(0, diffs.shape[1], size=(resamples, diffs.shape[1]))
    means = np.array([diffs[np.ix_(r, c)].mean() for r, c in zip(rows, cols)])
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def over_seeds(table: pd.DataFrame, settings: Sequence[Mapping[str, str]], scores: Sequence[Mapping[str, float]],
               higher_is_better: bool = True, seed: int = 0) -> pd.DataFrame | None:
    """One row per setting (``table``'s runs, their ``settings`` and per-sample ``scores``, grouped by every
    setting but the seed), first setting first; None when the runs do not differ in their seed."""
    from evaluation.frontier import labels, pareto

    if len({s.get(SEED) for s in settings}) < 2:
        return None
    keys = [json.dumps({k: v for k, v in s.items() if k != SEED}, sort_keys=True) for s in settings]
    groups = {key: [i for i, k in enumerate(keys) if k == key] for key in dict.fromkeys(keys)}
    common = [{k: v for k, v in settings[members[0]].items() if k != SEED} for members in groups.values()]
    names = labels(common) if len(groups) > 1 else ["all runs"]  # in the config's order of settings
    first = {settings[i].get(SEED): scores[i] for i in next(iter(groups.values()))}
    rows = []
    for name, members in zip(names, groups.values()):
        runs = table.iloc[members]
        row = {"setting": name, "strategy": runs["strategy"].iloc[0], "seeds": len(members),
               "runs": " ".join(runs["run"])}
        for column in [c for c in (*COST, *QUALITY) if c in runs]:
            row[column] = float(runs[column].mean())
            row[f"{column} sd"] = float(runs[column].std()) if len(members) > 1 else float("nan")
        paired = [(scores[i], first[settings[i].get(SEED)]) for i in members if settings[i].get(SEED) in first]
        shared = sorted(set.intersection(*(set(mine) & set(theirs) for mine, theirs in paired))) if paired else []
        if shared:
            diffs = np.array([[mine[s] - theirs[s] for s in shared] for mine, theirs in paired])
            row["delta_vs_first"] = float(diffs.mean())
            row["delta_low"], row["delta_high"] = two_way_interval(diffs, seed=seed)
        row["paired_seeds"] = len(paired)
        rows.append(row)
    out = pd.DataFrame(rows)
    out["pareto"] = pareto(list(out["generated_tokens_per_sample"].fillna(0.0)), list(out["optimised"]),
                           higher_is_better)
    return out


def write_seeds(seeds: pd.DataFrame, folder: Path) -> list[Path]:
    """``frontier_seeds.csv`` and ``frontier_seeds.png`` in ``folder``; returns their paths."""
    written(folder / "frontier_seeds.csv", lambda b: seeds.to_csv(b, index=False))
    _plot(seeds, folder / "frontier_seeds.png")
    return [folder / "frontier_seeds.csv", folder / "frontier_seeds.png"]


def console_seeds(seeds: pd.DataFrame) -> str:
    """The settings as the terminal shows them: mean ± sd over seeds, the pooled delta with its interval."""
    from evaluation.tables import text_table

    judges = [c for c in ("held_out", "CIDEr", "SPICE") if c in seeds and seeds[c].notna().any()]

    def spread(row, column: str, fmt: str) -> str:
        return f"{row[column]:{fmt}} ± {row[f'{column} sd']:{fmt}}"
    header = ["setting", "seeds", "tokens/sample", "optimised (± sd)", "Δ vs first [95% CI]", *judges, "Pareto"]
    rows = [[r["setting"], r["seeds"], f"{r['generated_tokens_per_sample']:.1f}", spread(r, "optimised", ".4f"),
             f"{r.get('delta_vs_first', float('nan')):+.4f} [{r.get('delta_low', float('nan')):+.4f}, "
             f"{r.get('delta_high', float('nan')):+.4f}]",
             *[spread(r, j, ".4f" if j == "held_out" else ".1f") for j in judges], "yes" if r["pareto"] else ""]
            for _, r in seeds.iterrows()]
    return text_table(header, rows) + "\n(mean ± sd over seeds; the delta paired on seed and sample, two-way bootstrap)"


def _plot(seeds: pd.DataFrame, path: Path) -> None:
    from evaluation.frontier import panels

    judges, fig, axes = panels(seeds, 4.8, 4.4)
    x = seeds["generated_tokens_per_sample"].fillna(0.0)
    for ax, judge in zip(axes[0], judges):
        for strategy, group in seeds.groupby("strategy", sort=False):  # one colour per strategy, a line over budgets
            order = group.sort_values("generated_tokens_per_sample")
            ax.errorbar(x[order.index], order[judge], yerr=order[f"{judge} sd"].fillna(0.0), marker="o", capsize=3,
                        alpha=0.8, label=strategy)
        ax.scatter(x[seeds["pareto"]], seeds[judge][seeds["pareto"]], marker="*", s=200, facecolors="none",
                   edgecolors="black", label="Pareto-optimal (mean optimised score)", zorder=3)
        ax.set_xlabel("generated tokens per sample (mean over seeds)")
        ax.set_ylabel(f"{judge} (mean ± sd over seeds)")
        ax.margins(0.12)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(4, len(names)), fontsize=8)
    fig.suptitle(f"quality vs cost over {int(seeds['seeds'].max())} seeds, {len(seeds)} settings")
    save_figure(fig, path)
