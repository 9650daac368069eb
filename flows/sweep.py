"""Ablation sweeps: a base config plus a grid of overrides, one MLflow child run per variant.

Work that an override does not touch is not redone: bank embeddings are cached per
(scorer, bank), models are loaded once per process, and variants that differ only in
``loop.steps`` are read off ONE run with the largest step count. That is exact: step k of a
long run does the same work with the same seeds as the last step of a k-step run.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger

from evaluation.caption_metrics import MetricReport
from evaluation.datasets import check_dataset
from evaluation.run_record import recorded_kind, write_record
from flows.benchmark import dataset_hash, optimise_config
from flows.executors import run_flow
from flows.record import BenchmarkOutcome, run_record
from flows.tracking import created_run, git_revision, log_config_run, package_versions
from mils.components import plan_run
from mils.config import RunConfig, build_config, read_yaml, set_dotted
from mils.engine import SampleResult
from mils.errors import InputError
from mils.storage import RunFolder
from tasks.benchmark import load_dataset_task, metrics_task

STEPS_KEY = "loop.steps"


Variants = list[tuple[dict[str, Any], RunConfig]]


PIPELINE_SECTIONS = ("judging", "baseline", "frontier", "notify", "retention")  # flows/pipeline.py's, not a run's


def expand_sweep(path: str | Path) -> tuple[dict[str, list[Any]], Variants]:
    """The sweep grid of a YAML file and one validated config per grid point (a pipeline's own
    sections, if any, are not part of the variants: `mils sweep` runs a pipeline YAML's sweep)."""
    raw = read_yaml(path)
    grid = raw.pop("sweep", None)
    for key in PIPELINE_SECTIONS:
        raw.pop(key, None)
    if not isinstance(grid, dict) or not grid or not all(isinstance(v, list) and v for v in grid.values()):
        raise InputError(f"{path} needs a 'sweep' mapping of dotted keys to non-empty lists, "
                         "e.g. sweep: {loop.steps: [1, 5, 10]}")
    return grid, sweep_variants(raw.pop("profile"), raw, grid)


MAX_VARIANTS = int(os.environ.get("MILS_MAX_VARIANTS", "200"))


def sweep_variants(profile: str, raw: dict[str, Any], grid: dict[str, list[Any]]) -> Variants:
    """One validated config per point of ``grid`` (dotted keys -> values) over the base ``raw``;
    a grid of more than :data:`MAX_VARIANTS` points is refused before any is built (YAML anchors
    can multiply a few lines into millions)."""
    count = math.prod(len(v) for v in grid.values())
    if count > MAX_VARIANTS:
        raise InputError(f"the sweep has {count:,} variants ({' x '.join(str(len(v)) for v in grid.values())}); at most "
                         f"{MAX_VARIANTS} are run (MILS_MAX_VARIANTS raises it): cut the grid or run it in parts")
    variants = []
    for values in itertools.product(*grid.values()):
        point = dict(zip(grid, values))
        override = raw
        for key, value in point.items():
            override = set_dotted(override, key, value)
        name = "-".join(f"{k.split('.')[-1]}={v}" for k, v in point.items()).replace("/", "_").replace("\\", "_")
        override = set_dotted(override, "name", f"{raw.get('name', 'sweep')}-{name}")
        variants.append((point, build_config(profile, override)))
    check_dataset(variants[0][1].dataset)
    return variants


def truncate(outcome: BenchmarkOutcome, steps: int) -> list[SampleResult]:
    """Per-sample results as a ``steps``-step run would have produced them."""
    return [r.truncated(steps) for r in outcome.results]


def _group_key(config: RunConfig) -> str:
    """Variants that differ only in ``loop.steps`` share one optimisation run (the longest's)."""
    return plan_run(config.model_copy(update={"loop": config.loop.model_copy(update={"steps": 0})})).key


def _score(results: list[SampleResult], references: dict[str, list[str]], config: RunConfig,
           step: int, cache_dir: Path) -> MetricReport:
    predictions = {r.sample_id: r.at_step(step).best for r in results}
    return metrics_task(predictions, {k: references[k] for k in predictions}, config.metrics, seed=config.loop.seed,
                        cache_dir=str(cache_dir), tokenize=config.eval_tokenize)


def variant_folder_name(results_name: str, point: dict[str, Any], per_variant: bool = True) -> str:
    """``demo-keep=5-explore=0.2``: a `mils sweep` variant's results folder, the sweep's name and the
    variant's settings (steps variants share the longest run's folder, so steps is left out). A
    pipeline's variants (``per_variant`` False) keep the pipeline's name, so the one equal to its base
    config resumes the base run's folder."""
    if not per_variant:
        return results_name
    settings = "-".join(f"{k.split('.')[-1]}={v}" for k, v in point.items() if k != STEPS_KEY)
    return re.sub(r"[^\w.=+-]", "_", f"{results_name}-{settings}" if settings else results_name)[:150]


def variant_config(config: RunConfig, results_name: str, point: dict[str, Any], per_variant: bool) -> RunConfig:
    """``config`` writing to its variant's folder; one this suite named ``sweep-keep5`` before sweeps took
    their config's name is resumed where it is."""
    named = config.model_copy(update={"name": variant_folder_name(results_name, point, per_variant)})
    if per_variant and not plan_run(named).results_dir.exists():
        old = "-".join(["sweep", *(f"{k.split('.')[-1]}{v}" for k, v in point.items() if k != STEPS_KEY)])
        legacy = config.model_copy(update={"name": re.sub(r"[^\w.=+-]", "_", old)[:150]})
        if plan_run(legacy).results_dir.is_dir():
            return legacy
    return named


def sweep_name(path: str | Path) -> str:
    """A sweep's one name: its config's ``name`` (the variants' names and folders start with it)."""
    return str(read_yaml(path).get("name") or "sweep")


@dataclass(frozen=True)
class SweepOutcome:
    """What a sweep leaves behind: its MLflow parent run (the dashboard's), how many variants it compared and
    how many optimisation runs they were read off (each variant's own record is in its results folder)."""

    parent_run_id: str
    variants: int
    optimisation_runs: int
    tracking_uri: str
    dashboard: str | None  # the MLflow UI link to its comparison view

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_variants(grid: dict[str, list[Any]], variants: Variants, title: str, data=None,
                 per_variant: bool = True) -> SweepOutcome:
    """Optimise and score every variant inside the current flow; an MLflow run ``sweep TITLE``
    (nested under the active run, if any) with one child per variant and the comparison plot.
    Results go to ``TITLE-<settings>-<result key>``; a pipeline's (``per_variant`` False) to
    ``TITLE-<result key>``, so a variant equal to the pipeline's base config resumes its folder."""
    import mlflow

    from flows.tracking import start_tracking

    logger = get_run_logger()
    base = variants[0][1]
    groups: dict[str, Variants] = {}
    for point, config in variants:
        groups.setdefault(_group_key(config), []).append((point, config))
    logger.info("%d variants in %d optimisation runs (step-count variants share one run)", len(variants), len(groups))
    data = data if data is not None else load_dataset_task(base.dataset)
    references = data.references()
    start_tracking(base.tracking)
    rows, provenance = [], {"git_revision": git_revision(), **package_versions()}
    with mlflow.start_run(run_name=f"sweep {title}", nested=mlflow.active_run() is not None) as parent:
        mlflow.set_tags({"mils.kind": "sweep", "sweep.keys": ",".join(grid)})
        mlflow.log_dict({"grid": grid}, "sweep.json")
        for members in groups.values():
            longest = max(members, key=lambda m: m[1].loop.steps)[1]
            started = time.time()
            outcome = optimise_config(plan_run(variant_config(longest, title, members[0][0], per_variant)), data=data)
            linked = {}
            for point, config in members:
                results = truncate(outcome, config.loop.steps)
                cache = RunFolder(outcome.results_dir).metrics
                reports = {"step0": _score(results, references, config, 0, cache),
                           "final": _score(results, references, config, -1, cache)} if results and config.metrics else {}
                child_id = created_run(parent.info.experiment_id, config.name, started, parent.info.run_id)
                with mlflow.start_run(run_id=child_id, nested=True) as child:  # its duration: the optimisation's
                    mlflow.log_params({f"sweep.{k}": str(v) for k, v in point.items()})
                    logged = log_config_run(config, plan_run(config).key, results, outcome.failures, reports,
                                            {"mils.kind": "config", "dataset_hash": dataset_hash(outcome),
                                             "mils.results_dir": str(outcome.results_dir),
                                             "derived_from_steps": str(outcome.config.loop.steps)},
                                            counts=outcome.counts,
                                            worker_peak_mb=outcome.worker_peak_mb)
                rows.append({"point": point, "run_id": child.info.run_id, "name": config.name, **logged,
                             "final": reports.get("final"), "step0": reports.get("step0")})
                linked[config.name] = child.info.run_id
            # the other way round: from the folder to the MLflow runs read off it (mils.results_dir: run -> folder)
            RunFolder(outcome.results_dir).write_ledger("sweep_runs", {
                "sweep": title, "parent_run_id": parent.info.run_id, "tracking_uri": base.tracking.uri,
                "variants": linked})
            if per_variant or recorded_kind(outcome.results_dir) != "benchmark":  # a pipeline's base run keeps its own
                write_record(run_record(outcome, provenance, kind="sweep"),
                             {"parent": parent.info.run_id, "variants": linked, "tracking_uri": base.tracking.uri})
        dashboard = log_sweep_summary(grid, rows, title)
    return SweepOutcome(parent.info.run_id, len(variants), len(groups), base.tracking.uri, dashboard)


def comparison_table(grid: dict[str, list[Any]], rows: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per variant: its swept values, final and step-0 scorer score, the paired gain, the
    final downstream metrics and what it cost."""
    out = []
    for r in rows:
        curves, metrics, cost = r["curves"], r["metrics"], r["cost"]
        row = {key: r["point"][key] for key in grid}
        if len(curves):
            row.update({"score/step0": float(curves["score/best"].iloc[0]),
                        "score/final": float(curves["score/best"].iloc[-1])})
        row.update({k: v for k, v in metrics.items() if k.startswith(("final/", "gain/"))
                    and not k.endswith(("_ci_low", "_ci_high", "_share_positive"))})
        row.update({f"cost/{k}": cost[k] for k in ("generated_tokens", "llm_seconds", "seconds_per_sample")})
        out.append({**row, "run_id": r["run_id"]})
    return pd.DataFrame(out)


def log_sweep_summary(grid: dict[str, list[Any]], rows: list[dict[str, Any]], title: str) -> str | None:
    """Into the active (sweep parent) run: the comparison table, the metric-vs-value plot,
    every variant's quality-vs-cost curve on shared axes, and the MLflow shared view that shows
    the variants side by side. Returns the view's address."""
    import matplotlib.pyplot as plt
    import mlflow

    from flows.dashboard import runs_url, share_sweep_view
    from flows.plots import plot_quality_vs_cost, plot_sweep, rows_primary_metric

    if not rows:
        return None
    run = mlflow.active_run()
    key = share_sweep_view(mlflow.MlflowClient(), run.info.experiment_id, run.info.run_id, title,
                           [r["run_id"] for r in rows], grid, rows_primary_metric(rows))
    url = runs_url(run.info.experiment_id, key)
    mlflow.set_tag("mils.dashboard", url)
    mlflow.log_table(comparison_table(grid, rows), "sweep_table.json")
    figure = plot_sweep(grid, rows, title)
    if figure is not None:
        mlflow.log_figure(figure, "sweep_comparison.png")
        plt.close(figure)
    runs = {r["name"]: (r["curves"], r["costs"]) for r in rows if len(r["curves"]) and len(r["costs"])}
    if runs:
        figure = plot_quality_vs_cost(runs, title)
        mlflow.log_figure(figure, "quality_vs_cost.png")
        plt.close(figure)
    return url


@flow(name="mils-sweep")
def sweep_flow(config_path: str) -> SweepOutcome:
    grid, variants = expand_sweep(config_path)
    return run_variants(grid, variants, sweep_name(config_path))


def run_sweep(config_path: str) -> SweepOutcome:
    _, variants = expand_sweep(config_path)
    return run_flow(sweep_flow, variants[0][1].executor, config_path)
