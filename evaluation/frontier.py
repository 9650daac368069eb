"""Quality against cost for several runs on one frontier: ``mils frontier RUN...``.

Each run (a strategy, a VLM baseline written as a run, a sweep variant, a seed) is one point. Every
column is over the samples all the runs have (a warning says how many of each run's were left out):
quality = the optimised score (final, mean), the held-out score of its latest ``mils rescore`` (each
sample's last step) and each reference metric (x100) of those samples' final captions: from the run
record or the folder's metrics cache (a sweep folder's), when one covers exactly those samples with
those captions, else NaN (``<metric> n`` says over how many samples each value is); cost = generated
tokens, LLM seconds and model-seconds per sample from its ledger. Every run is compared with the
first, paired on the shared samples (the optimised score's mean delta and 95% interval). Points
that no other point beats on both cost and quality are marked Pareto-optimal. A point is named by
the settings that change results in which the runs differ. Writes ``frontier.csv`` and ``frontier.png``;
runs that differ in their seed are also one point per setting (mean over seeds, a delta paired on seed and
sample: evaluation/frontier_seeds.py).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Sequence

import pandas as pd

from mils.errors import InputError
from mils.files import own_folder, save_figure, written
from mils.storage import RunFolder

log = logging.getLogger(__name__)
# settings that never change a sample's result: left out of a point's name
NOT_SCIENCE = ("name", "metrics", "batch_size", "executor.", "runner.", "schedule", "in_flight", "score_batch", "score_wait",
               "tracking.", "output_dir", "cache_dir", "plugins", "generator.cache", "generator.price")
LABEL_VALUE_CHARS = 24


def pareto(cost: Sequence[float], quality: Sequence[float], higher_is_better: bool = True) -> list[bool]:
    """Whether each point is Pareto-optimal: no other point costs no more and is no worse, and one
    of the two strictly."""
    sign = 1.0 if higher_is_better else -1.0
    q = [sign * v for v in quality]
    return [not any(cost[j] <= cost[i] and q[j] >= q[i] and (cost[j] < cost[i] or q[j] > q[i])
                    for j in range(len(cost)) if j != i) for i in range(len(cost))]


@dataclass
class _Run:
    folder: Path
    run: object  # FinishedRun
    results: list
    higher: bool
    settings: dict[str, str]

    @cached_property
    def scores(self) -> dict[str, float]:  # read in a loop over the shared samples: built once
        return {r.sample_id: r.score for r in self.results}


def _open(folder: Path) -> _Run:
    from evaluation.finished_run import FinishedRun

    run = FinishedRun.open(folder, need_config=True)
    results = run.results()
    settings = {k: v for k, v in run.config.flat().items() if not k.startswith(NOT_SCIENCE)}
    return _Run(folder, run, results, run.higher_is_better(results), settings)


def _held_out(folder: Path, common: set[str]) -> float:
    """The latest rescore's held-out score of each shared sample's last step, mean; NaN without one."""
    rescored = sorted(folder.glob("rescore-*/by_sample.csv"), key=lambda p: p.stat().st_mtime)
    if not rescored:
        return float("nan")
    table = pd.read_csv(rescored[-1], dtype={"sample_id": str})
    steps = table[table["step"] != "kept"].astype({"step": int})
    last = steps.sort_values("step").groupby("sample_id").tail(1).set_index("sample_id")["held_out"]
    return float(last.reindex(sorted(common)).mean()) if common <= set(last.index) else float("nan")


def _reference_metrics(point: _Run, common: set[str]) -> dict[str, float]:
    """Reference metrics (x100) of the final captions of exactly the shared samples: the run record's
    when the run has no other samples, else a metrics-cache entry over exactly those captions."""
    captions = {r.sample_id: r.history[-1].best for r in point.results if r.sample_id in common}
    if len(point.results) == len(common) and point.run.final_metrics:
        return point.run.final_metrics
    for report in point.run.cached_reports:
        if report.per_sample["prediction"].to_dict() == captions:
            return {name: 100 * est.value for name, est in report.corpus.items()}
    return {}


def _row(point: _Run, common: set[str]) -> dict:
    from mils.engine import run_cost

    shared = [r for r in point.results if r.sample_id in common]
    cost = run_cost(shared, 0.0)
    captioner = RunFolder(point.folder).captioner  # a VLM baseline written as a run (evaluation/vlm_baseline.py)
    strategy = (f"vlm:{json.loads(captioner.read_text())['captioner']}" if captioner.is_file()
                else point.run.config.loop.strategy)
    row = {"run": point.folder.name, "strategy": strategy, "seed": point.run.config.loop.seed,
           "samples": len(point.results), "common_samples": len(common),
           "generated_tokens_per_sample": cost["generated_tokens"] / len(shared),
           "llm_seconds_per_sample": cost["llm_seconds"] / len(shared),
           "model_seconds_per_sample": cost["seconds_per_sample"],
           "optimised": sum(r.score for r in shared) / len(shared), "held_out": _held_out(point.folder, common)}
    metrics = _reference_metrics(point, common)
    row.update(metrics)
    row.update({f"{name} n": len(common) for name in metrics})
    return row


def labels(settings: Sequence[dict[str, str]]) -> list[str]:
    """Each run named by the settings in which the runs differ (``steps=5, keep=20``), values cut to
    a readable length; runs that differ in nothing are numbered."""
    differ = [k for k in settings[0] if len({s.get(k) for s in settings}) > 1]
    differ += [k for s in settings for k in s if k not in settings[0] and k not in differ]

    def value(text: str) -> str:
        return text if len(text) <= LABEL_VALUE_CHARS else text[: LABEL_VALUE_CHARS - 1] + "…"

    names = [", ".join(f"{k.split('.')[-1]}={value(str(s.get(k, '-')))}" for k in differ) for s in settings]
    return [name if name and names.count(name) == 1 else f"{name or 'run'} #{n}" for n, name in enumerate(names)]


def frontier(folders: Sequence[str | Path], out: str | Path, seed: int = 0) -> pd.DataFrame:
    """The table (one row per run, every column over the samples all runs have) and
    ``frontier.csv``/``frontier.png`` in ``out``."""
    from evaluation.paired import paired_scores

    if len(folders) < 2:
        raise InputError("a frontier needs two runs or more")
    points = [_open(Path(f)) for f in folders]
    if len({p.higher for p in points}) > 1:
        raise InputError("the runs were scored in opposite directions (a maximised and a minimised scorer)")
    common = set.intersection(*(set(p.scores) for p in points))
    if not common:
        raise InputError("the runs share no sample: there is nothing to compare (different datasets?)")
    if any(len(p.results) != len(common) for p in points):
        log.warning("the runs cover different samples (%s): every column is over the %d they all have",
                    ", ".join(str(len(p.results)) for p in points), len(common))
    first = {k: points[0].scores[k] for k in common}
    rows = []
    for point, label in zip(points, labels([p.settings for p in points])):
        versus = paired_scores(first, {k: point.scores[k] for k in common}, points[0].higher, seed=seed)
        rows.append({"label": label, **_row(point, common), "delta_vs_first": versus.mean.delta,
                     "delta_low": versus.mean.low, "delta_high": versus.mean.high})
    table = pd.DataFrame(rows)
    table["pareto"] = pareto(list(table["generated_tokens_per_sample"].fillna(0.0)), list(table["optimised"]),
                             points[0].higher)
    folder = Path(out)
    own_folder(folder)
    written(folder / "frontier.csv", lambda b: table.to_csv(b, index=False))
    _plot(table, folder / "frontier.png")
    from evaluation.frontier_seeds import over_seeds, write_seeds

    seeds = over_seeds(table, [p.settings for p in points], [{k: p.scores[k] for k in common} for p in points],
                       points[0].higher, seed)
    table.attrs["over_seeds"] = seeds  # one point per setting when the runs differ in their seed, else None
    table.attrs["files"] = [folder / "frontier.csv", folder / "frontier.png",
                            *(write_seeds(seeds, folder) if seeds is not None else [])]  # what MLflow logs
    return table


def console_table(table: pd.DataFrame) -> str:
    """The frontier as the terminal shows it: one line per run, the delta with its interval."""
    from evaluation.tables import text_table

    judges = [c for c in ("held_out", "CIDEr", "SPICE") if c in table and table[c].notna().any()]
    header = ["run", "strategy", "tokens/sample", "optimised", "Δ vs first [95% CI]", *judges, "Pareto"]
    rows = [[r["label"] or r["run"], r["strategy"], f"{r['generated_tokens_per_sample']:.1f}", f"{r['optimised']:.4f}",
             f"{r['delta_vs_first']:+.4f} [{r['delta_low']:+.4f}, {r['delta_high']:+.4f}]",
             *[f"{r[j]:.4f}" if j == "held_out" else f"{r[j]:.1f}" for j in judges], "yes" if r["pareto"] else ""]
            for _, r in table.iterrows()]
    return text_table(header, rows) + f"\n(every column over the {int(table['common_samples'].iloc[0])} samples " \
                                      "all the runs have; metrics x100)"


def panels(table: pd.DataFrame, width: float = 4.5, height: float = 4.2):
    """A figure with one panel per judge the table has (the optimised score, the held-out one, CIDEr)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    judges = [c for c in ("optimised", "held_out", "CIDEr") if c in table and table[c].notna().any()]
    fig, axes = plt.subplots(1, len(judges), figsize=(width * len(judges), height), squeeze=False, layout="constrained")
    return judges, fig, axes


def _plot(table: pd.DataFrame, path: Path) -> None:
    judges, fig, axes = panels(table)
    x = table["generated_tokens_per_sample"].fillna(0.0)
    for ax, judge in zip(axes[0], judges):
        for strategy, group in table.groupby("strategy", sort=False):  # one colour per strategy
            ax.scatter(x[group.index], group[judge], alpha=0.7, label=f"{strategy} ({len(group)})")
        ax.scatter(x[table["pareto"]], table[judge][table["pareto"]], marker="*", s=180, facecolors="none",
                   edgecolors="black", label="Pareto-optimal (optimised score)")
        if judge == "optimised":  # the paired interval of each run's difference from the first, around its point
            first = table["optimised"].iloc[0]
            ax.errorbar(x, first + table["delta_vs_first"], yerr=[table["delta_vs_first"] - table["delta_low"],
                                                                  table["delta_high"] - table["delta_vs_first"]],
                        fmt="none", ecolor="grey", elinewidth=1, capsize=2)
        if len(table) <= 8:  # a few points: each named (short); more (seeds, variants): frontier.csv names them
            for xi, yi, n in zip(x, table[judge], range(len(table))):
                ax.annotate(f"#{n}", (xi, yi), fontsize=7, xytext=(3, 3), textcoords="offset points")
        ax.set_xlabel("generated tokens per sample")
        ax.set_ylabel(judge)
        ax.margins(0.15)
    handles, names = axes[0, 0].get_legend_handles_labels()
    fig.legend(handles, names, loc="outside lower center", ncol=min(3, len(names)), fontsize=8)
    if len(table) <= 8:  # the key to the numbers, beside the panels (long names never squeeze the axes)
        from matplotlib.lines import Line2D

        fig.legend([Line2D([], [], linestyle="")] * len(table), [f"#{n}  {label}" for n, label in
                                                                 enumerate(table["label"])],
                   loc="outside right upper", fontsize=7, handlelength=0, title="points")
    fig.suptitle(f"quality vs cost, over the {int(table['common_samples'].iloc[0])} shared samples")
    save_figure(fig, path)
