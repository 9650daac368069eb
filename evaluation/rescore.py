"""A held-out judge for a finished run: ``mils rescore RUN --scorer SPEC``.

Each step's best text (and the final kept set) is scored again by another scorer, from the stored
history alone: the LLM is never called. The curve "optimised score vs held-out score by step"
shows over-optimisation as the held-out curve flattening or falling while the optimised one rises.
Reference metrics (CIDEr, BLEU) by step are a held-out judge too and are plotted beside it.
Writes ``RUN/rescore-<scorer>/``: ``by_sample.csv``, ``by_step.csv``, ``held_out_vs_step.png``.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from evaluation.finished_run import FinishedRun
from mils.config import ScorerConfig
from mils.engine import SampleResult
from mils.errors import InputError
from mils.files import content_hash, own_folder, save_figure, write_atomic, written

log = logging.getLogger(__name__)


def rescore(folder: str | Path, scorer_cfg: ScorerConfig, metrics: tuple[str, ...] = ("CIDEr", "BLEU"),
            resamples: int = 200, scorer=None, plugins: Sequence[str] = ()) -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """(per sample and step, mean per step, the output folder). ``metrics``: reference metrics by
    step, when the run's dataset has references. ``scorer``: ``scorer_cfg`` already loaded (several
    runs rescored by one model). ``plugins``: modules to import for a plugin's scorer, from the user
    (never from the folder's config.json: a folder from elsewhere must not choose what code runs)."""
    from evaluation.datasets import folder_dataset
    from mils.components import build_scorer, plan_scorer
    from mils.registry import import_plugins

    folder = Path(folder)
    run = FinishedRun.open(folder, need_config=True)
    config, results = run.config, run.results()
    import_plugins(plugins)  # before the dataset: a plugin's dataset kind is registered by its module
    data = folder_dataset(config.dataset, folder, "pass --plugins MODULE for a plugin's dataset")
    by_id = {s.id: s for s in data.samples}
    missing = [r.sample_id for r in results if r.sample_id not in by_id]
    if missing:
        raise InputError(f"{len(missing)} samples of {folder} are not in its dataset any more (e.g. {missing[0]})")
    import_plugins(plugins)
    if set(config.plugins) - set(plugins):
        log.warning("the run imported plugins %s; a folder's config does not import code: give --plugins to use "
                    "their scorers", ", ".join(config.plugins))
    if scorer_cfg.name == config.scorer.name and scorer_cfg.options == config.scorer.options:
        log.warning("%s is the scorer this run optimised: its scores are not held out (they rise by construction); "
                    "rescore with another scorer for a held-out judge", scorer_cfg.name)
    judge = plan_scorer(scorer_cfg, plugins, where="--scorer options")
    scorer = scorer or build_scorer(judge)
    samples = [by_id[r.sample_id].as_sample() for r in results]
    rows = []
    for result, sample in zip(results, samples):
        texts = [h.best for h in result.history]
        kept = [t for t, _ in result.kept]
        held = _scores(scorer, sample, texts + kept, scorer_cfg.name, config.task)
        for h, value in zip(result.history, held[: len(texts)]):
            rows.append({"sample_id": result.sample_id, "step": h.step, "text": h.best, "optimised": h.best_score,
                         "held_out": value})
        if kept:
            rows.append({"sample_id": result.sample_id, "step": "kept", "text": "", "optimised": np.nan,
                         "held_out": float(np.mean(held[len(texts):]))})
    table = pd.DataFrame(rows)
    curve = by_step(table[table["step"] != "kept"].astype({"step": int}))
    _reference_curve(curve, results, data.references(), metrics, resamples)
    out = folder / f"rescore-{scorer_cfg.name}-{content_hash(scorer_cfg.model_dump_json(), 8)}"
    own_folder(out, then="nothing was rescored into it: move it away")  # a link planted under this
    # predictable name would take every file below it elsewhere
    written(out / "by_sample.csv", lambda b: table.to_csv(b, index=False))
    written(out / "by_step.csv", curve.to_csv)
    write_atomic(out / "scorer.json", json.dumps(scorer_cfg.model_dump(mode="json"), indent=2))
    _plot(curve, scorer_cfg.name, config.scorer.name, out / "held_out_vs_step.png")
    return table, curve, out


def by_step(steps: pd.DataFrame) -> pd.DataFrame:
    """Mean optimised and held-out score at each step over every sample: a sample that stopped
    earlier (a budget, early stopping) counts with its last step's text, as ``at_step`` reads it, so
    the curve is never an average over whichever samples happen to run that long."""
    last = int(steps["step"].max())
    return pd.DataFrame({column: steps.pivot(index="sample_id", columns="step", values=column)
                         .reindex(columns=range(last + 1)).ffill(axis=1).mean()
                         for column in ("optimised", "held_out")}).rename_axis("step")


def _scores(scorer, sample, texts: list[str], name: str, task: str) -> list[float]:
    """The held-out scorer's score of each text for ``sample`` (a per-objective score: their sum)."""
    from mils.protocols import Scorer as TwoTower

    try:
        if isinstance(scorer, TwoTower):
            values = scorer.similarity(scorer.embed_samples([sample]), scorer.embed_texts(texts))[0]
        else:
            values = scorer.score([sample], [texts])[0]
    except Exception as err:  # noqa: BLE001  (a scorer of another modality fails on the sample)
        raise InputError(f"scorer {name!r} cannot score this run's {task} sample {sample.id}: "
                         f"{type(err).__name__}: {err}") from err
    return [float(np.sum(v)) for v in values]


def _reference_curve(curve: pd.DataFrame, results: list[SampleResult], references: dict[str, list[str]],
                     metrics: tuple[str, ...], resamples: int) -> None:
    """Adds a column per reference metric (x100) by step, when there are references."""
    from evaluation.caption_metrics import caption_metrics

    if not metrics or not all(references.get(r.sample_id) for r in results):
        return
    for step in curve.index:
        predictions = {r.sample_id: r.at_step(int(step)).best for r in results}
        report = caption_metrics(predictions, {k: references[k] for k in predictions}, metrics=list(metrics),
                                 resamples=resamples)
        for name, estimate in report.corpus.items():
            curve.loc[step, name] = 100 * estimate.value


def _plot(curve: pd.DataFrame, held_out: str, optimised: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    references = [c for c in curve.columns if c not in ("optimised", "held_out")]
    fig, axes = plt.subplots(2 if references else 1, 1, figsize=(7, 6 if references else 3.5), squeeze=False,
                             sharex=True)
    left = axes[0, 0]
    left.plot(curve.index, curve["optimised"], marker="o", color="tab:blue")
    left.set_ylabel(f"optimised: {optimised}", color="tab:blue")
    right = left.twinx()
    right.plot(curve.index, curve["held_out"], marker="s", color="tab:red")
    right.set_ylabel(f"held-out: {held_out}", color="tab:red")
    left.set_title("the optimised score and a held-out judge, by step (mean over samples)")
    if references:
        for name in references:
            axes[1, 0].plot(curve.index, curve[name], marker=".", label=name)
        axes[1, 0].set_ylabel("reference metrics (x100)")
        axes[1, 0].legend(fontsize=8)
    axes[-1, 0].set_xlabel("step")
    fig.tight_layout()
    save_figure(fig, path)
