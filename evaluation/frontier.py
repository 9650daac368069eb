"""Quality against cost for several runs on one frontier: ``mils frontier RUN...``.

Each run (a strategy, a VLM baseline written as a run, a sweep variant, a seed) is one point:
quality = the optimised score (final, mean over samples), the held-out score of its latest
``mils rescore`` and each reference metric of its run record; cost = generated tokens, LLM
seconds and model-seconds per sample (its ledger). Every run is compared with the first, paired
on their common samples (the optimised score's mean delta and 95% interval). Points that no other
point beats on both cost and quality are marked Pareto-optimal. Writes ``frontier.csv`` and
``frontier.png``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import pandas as pd

from mils.errors import InputError
from mils.files import own_folder, save_figure, written

log = logging.getLogger(__name__)


def pareto(cost: Sequence[float], quality: Sequence[float], higher_is_better: bool = True) -> list[bool]:
    """Whether each point is Pareto-optimal: no other point costs no more and is no worse, and one
    of the two strictly."""
    sign = 1.0 if higher_is_better else -1.0
    q = [sign * v for v in quality]
    return [not any(cost[j] <= cost[i] and q[j] >= q[i] and (cost[j] < cost[i] or q[j] > q[i])
                    for j in range(len(cost)) if j != i) for i in range(len(cost))]


def _point(folder: Path) -> tuple[dict, dict[str, float], bool, dict[str, str]]:
    from evaluation.finished_run import FinishedRun
    from mils.engine.cost import run_cost

    run = FinishedRun.open(folder, need_config=True)
    config, results = run.config, run.results()
    cost = run_cost(results, 0.0)
    n = len(results)
    captioner = folder / "captioner.json"  # a VLM baseline written as a run (evaluation/vlm_baseline.py)
    strategy = f"vlm:{json.loads(captioner.read_text())['captioner']}" if captioner.is_file() else config.loop.strategy
    row = {"run": folder.name, "strategy": strategy, "seed": config.loop.seed, "samples": n,
           "generated_tokens_per_sample": cost["generated_tokens"] / n,
           "llm_seconds_per_sample": cost["llm_seconds"] / n, "model_seconds_per_sample": cost["seconds_per_sample"]}
    rescored = sorted(folder.glob("rescore-*/by_step.csv"), key=lambda p: p.stat().st_mtime)
    if rescored:
        curve = pd.read_csv(rescored[-1], index_col=0)
        row["held_out"] = float(curve["held_out"].iloc[-1])
        row.update({name: float(curve[name].iloc[-1]) for name in curve.columns if name not in ("optimised", "held_out")})
    row.update(run.final_metrics)  # a run's record has every reference metric (a sweep variant has none: its rescore's)
    settings = {k: v for k, v in config.flat().items() if not k.startswith(("tracking.", "output_dir", "cache_dir"))}
    return row, {r.sample_id: r.score for r in results}, run.higher_is_better(results), settings


def labels(settings: Sequence[dict[str, str]]) -> list[str]:
    """Each run named by the settings in which the runs differ (``steps=5, keep=20``); runs that
    differ in nothing the config says are numbered."""
    differ = [k for k in settings[0] if len({s.get(k) for s in settings}) > 1]
    differ += [k for s in settings for k in s if k not in settings[0] and k not in differ]
    names = [", ".join(f"{k.split('.')[-1]}={s.get(k, '-')}" for k in differ) for s in settings]
    return [name if name and names.count(name) == 1 else f"{name or 'run'} #{n}" for n, name in enumerate(names)]


def frontier(folders: Sequence[str | Path], out: str | Path, seed: int = 0) -> pd.DataFrame:
    """The table (one row per run) and ``frontier.csv``/``frontier.png`` in ``out``. Runs over
    different samples are compared on the samples they all have (a warning says how many): every
    mean and delta is over those."""
    from evaluation.paired import paired_scores

    if len(folders) < 2:
        raise InputError("a frontier needs two runs or more")
    points = [_point(Path(f)) for f in folders]
    if len({d for _, _, d, _ in points}) > 1:
        raise InputError("the runs were scored in opposite directions (a maximised and a minimised scorer)")
    common = set.intersection(*(set(scores) for _, scores, _, _ in points))
    if not common:
        raise InputError("the runs share no sample: there is nothing to compare (different datasets?)")
    if any(len(scores) != len(common) for _, scores, _, _ in points):
        log.warning("the runs cover different samples (%s): every mean and delta is over the %d they all have",
                    ", ".join(str(len(scores)) for _, scores, _, _ in points), len(common))
    higher = points[0][2]
    first = {k: points[0][1][k] for k in common}
    rows = []
    for (row, scores, _, _), label in zip(points, labels([s for _, _, _, s in points])):
        shared = {k: scores[k] for k in common}
        versus = paired_scores(first, shared, higher, seed=seed)
        rows.append({"label": label, **row, "common_samples": len(common), "optimised": sum(shared.values()) / len(common),
                     "delta_vs_first": versus.mean.delta, "delta_low": versus.mean.low, "delta_high": versus.mean.high})
    table = pd.DataFrame(rows)
    table["pareto"] = pareto(list(table["generated_tokens_per_sample"].fillna(0.0)), list(table["optimised"]), higher)
    folder = Path(out)
    own_folder(folder)
    written(folder / "frontier.csv", lambda b: table.to_csv(b, index=False))
    _plot(table, folder / "frontier.png")
    return table


def _plot(table: pd.DataFrame, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judges = [c for c in ("optimised", "held_out", "CIDEr") if c in table]
    fig, axes = plt.subplots(1, len(judges), figsize=(5 * len(judges), 4), squeeze=False)
    x = table["generated_tokens_per_sample"].fillna(0.0)
    for ax, judge in zip(axes[0], judges):
        for strategy, group in table.groupby("strategy", sort=False):  # one colour per strategy
            ax.scatter(x[group.index], group[judge], alpha=0.7, label=f"{strategy} ({len(group)})")
        ax.scatter(x[table["pareto"]], table[judge][table["pareto"]], marker="*", s=180, facecolors="none",
                   edgecolors="black", label="Pareto-optimal (optimised score)")
        if len(table) <= 6:  # a few points: each named; more (seeds, variants): frontier.csv names them
            for xi, yi, label in zip(x, table[judge], table["label"]):
                ax.annotate(label, (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("generated tokens per sample")
        ax.set_ylabel(judge)
    axes[0, 0].legend(fontsize=8)
    fig.suptitle("quality vs cost")
    fig.tight_layout()
    save_figure(fig, path)
