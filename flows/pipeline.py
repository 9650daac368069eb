"""The pipeline: initial bank -> optimisation -> metrics -> ablation sweep -> judging batch.

One YAML file describes it: a run config, plus an optional ``sweep:`` grid and ``judging:``
settings (``judging: false`` turns the batch off). Every stage is keyed by its inputs, so a second
run of a finished pipeline recomputes nothing: the generated bank is cached by its recipe, samples
resume from their result files, metrics are cached by their inputs, the sweep is logged once and
the judging batch folder is named by its inputs. Everything lands under one MLflow parent run.

A scheduled rerun (``fresh``) writes a new dated results folder and tags its MLflow run with the
previous run of the same config (``mils.follows``), so reruns can be compared over time.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from evaluation.datasets import check_dataset
from flows.benchmark import dataset_hash, optimise_config
from flows.executors import run_flow
from flows.history import log_history
from flows.notify import Webhook, on_failure, read_notify, regression_message, send
from flows.record import BenchmarkOutcome
from flows.retention import prune_dated
from flows.sweep import run_variants, sweep_variants
from flows.tracking import end_orphans, log_config_run, start_tracking
from human_eval.protocol import BatchSettings
from mils.components import RunPlan, plan_run
from mils.config import VERDICTS, RunConfig, build_config, read_yaml
from mils.errors import InputError
from mils.files import content_hash
from mils.registry import checked_options
from mils.storage import RunFolder
from tasks.benchmark import generate_bank_task
from tasks.judging import judging_task


@dataclass(frozen=True)
class PipelineSpec:
    config: RunConfig
    sweep: dict[str, list[Any]] | None
    judging: BatchSettings | None
    profile: str
    raw: dict[str, Any]  # the run config's YAML overrides (the sweep expands over them)
    baseline: dict[str, Any] | None = None  # {captioner, options, seed}: a VLM run first, seeding MILS
    notify: tuple[Webhook, ...] = ()  # webhooks told of failures and regressions (flows/notify.py)
    retention: int | None = None  # scheduled reruns: keep the newest N dated folders (flows/schedule.py)
    frontier: bool = False  # every run it made (the run, sweep variants, the baseline) on one frontier

    def key(self) -> str:
        """Identifies the pipeline across scheduled reruns (not its dated output folder)."""
        payload = json.dumps([self.config.model_dump(mode="json", exclude={"output_dir"}), self.sweep,
                              self.judging.model_dump(mode="json") if self.judging else None, self.baseline],
                             sort_keys=True)
        return content_hash(payload, 16)


def read_pipeline(path: str | Path) -> PipelineSpec:
    raw = read_yaml(path)
    grid = raw.pop("sweep", None)
    judging = raw.pop("judging", {})
    baseline = raw.pop("baseline", None)
    notify = read_notify(raw.pop("notify", None), f"{path}: notify")
    retention = raw.pop("retention", None)
    frontier = raw.pop("frontier", False)
    if not isinstance(frontier, bool):
        raise InputError(f"{path}: 'frontier' is true or false, not {frontier!r}")
    if retention is not None and (isinstance(retention, bool) or not isinstance(retention, int) or retention < 1):
        raise InputError(f"{path}: 'retention' is how many dated results folders to keep (1 or more), not {retention!r}")
    profile = raw.pop("profile")
    if baseline is not None and not (isinstance(baseline, dict) and isinstance(baseline.get("captioner"), str)
                                     and set(baseline) <= {"captioner", "options", "seed"}):
        raise InputError(f"{path}: 'baseline' is {{captioner: blip2, options: {{model: ...}}, seed: true}}")
    if grid is not None and (not isinstance(grid, dict) or not all(isinstance(v, list) and v for v in grid.values())):
        raise InputError(f"{path}: 'sweep' must map dotted keys to non-empty lists, e.g. {{loop.keep: [5, 10]}}")
    if judging not in (None, False) and not isinstance(judging, dict):
        raise InputError(f"{path}: 'judging' must be a mapping of batch settings, or false")
    settings = BatchSettings.model_validate(judging) if isinstance(judging, dict) else None
    config = build_config(profile, raw)
    check_dataset(config.dataset)
    if baseline is not None:  # a misspelt captioner fails now, not after the bank stage
        import mils.components.vlm_captioners  # noqa: F401  (registers the built-in captioners)

        checked_options("captioner", baseline["captioner"], baseline.get("options") or {}, "baseline.options")
    return PipelineSpec(config, grid, settings, profile, raw, baseline, notify, retention, frontier)


def _dated(config: RunConfig) -> RunConfig:
    stamp = time.strftime("%Y%m%d-%H%M%S") + "-" + uuid.uuid4().hex[:4]
    return config.model_copy(update={"output_dir": str(Path(config.output_dir) / stamp)})


def previous_run(spec: PipelineSpec, exclude: str) -> str | None:
    """The latest finished pipeline run of the same config in the experiment (None if none)."""
    import mlflow

    experiment = mlflow.get_experiment_by_name(spec.config.tracking.experiment)
    runs = mlflow.MlflowClient().search_runs(
        [experiment.experiment_id],
        f"tags.`mils.kind` = 'pipeline' and tags.`mils.pipeline_key` = '{spec.key()}' and status = 'FINISHED'",
        order_by=["attributes.start_time DESC"], max_results=5)
    return next((r.info.run_id for r in runs if r.info.run_id != exclude), None)


@dataclass(frozen=True)
class PipelineOutcome:
    """What a pipeline run leaves behind: its MLflow parent run, its results folder, the run it follows (a
    scheduled rerun's previous), and each stage's summary by name (bank, optimise, vs_previous, vs_seed, sweep,
    frontier, judging: plain data, logged as the parent run's ``pipeline.json``)."""

    parent_run_id: str
    results_dir: str
    follows: str | None
    tracking_uri: str
    stages: dict[str, Any]
    removed: tuple[str, ...] = ()  # dated results folders the retention removed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class _Ledger:
    """``RESULTS/pipeline.json``: the parent MLflow run and which stage outputs it already holds."""

    def __init__(self, results_dir: Path) -> None:
        self.folder = RunFolder(results_dir)
        self.data = self.folder.read_ledger("pipeline") or {"logged": {}}

    def logged(self, stage: str, key: str) -> bool:
        return self.data["logged"].get(stage) == key

    def mark(self, stage: str, key: str) -> None:
        self.data["logged"][stage] = key
        self.save()

    def save(self) -> None:
        self.folder.write_ledger("pipeline", self.data)


def _bank_stage(plan: RunPlan, ledger: _Ledger) -> dict[str, Any]:
    import mlflow

    if plan.bank.generated is None:
        return {"source": plan.bank.config.path or plan.bank.config.builtin}
    bank = generate_bank_task(plan)
    if not ledger.logged("bank", bank["path"]):
        mlflow.log_artifact(bank["path"], "bank")
        mlflow.log_artifact(bank["path"] + ".provenance.json", "bank")
        ledger.mark("bank", bank["path"])
    return bank


def _optimise_stage(plan: RunPlan, ledger: _Ledger) -> tuple[BenchmarkOutcome, dict[str, Any]]:
    import mlflow

    outcome, config = optimise_config(plan), plan.config
    reports = json.dumps({s: r.as_dict() for s, r in outcome.reports.items()}, sort_keys=True)
    key = content_hash(reports, 12) + f"-{len(outcome.results)}"
    computed = sum(s["computed"] for s in outcome.shard_stats)
    if not ledger.logged("optimise", key):
        with mlflow.start_run(run_name=f"{config.name} {plan.key}", nested=True):
            log_config_run(config, plan.key, outcome.results, outcome.failures, outcome.reports,
                           {"mils.kind": "config", "dataset_hash": dataset_hash(outcome),
                            "mils.results_dir": str(outcome.results_dir)},
                           {"time/flow_seconds": outcome.seconds}, counts=outcome.counts,
                           worker_peak_mb=outcome.worker_peak_mb)
        ledger.mark("optimise", key)
    metrics = {stage: {name: est.value for name, est in report.corpus.items()}
               for stage, report in outcome.reports.items()}
    return outcome, {"computed": computed, "resumed": sum(s["resumed"] for s in outcome.shard_stats),
                     "failed": len(outcome.failures), "metrics": metrics}


def _variants(spec: PipelineSpec, config: RunConfig):
    overrides = {**spec.raw, "output_dir": config.output_dir}
    if config.bank.generate is not None or config.bank.seed_captions:  # as resolved by the earlier stages
        overrides["bank"] = config.bank.model_dump(exclude_none=True)
    return sweep_variants(spec.profile, overrides, spec.sweep)


def _sweep_stage(spec: PipelineSpec, config: RunConfig, variants, ledger: _Ledger) -> dict:
    key = content_hash(json.dumps([spec.sweep, [plan_run(c).key for _, c in variants]]), 12)
    if ledger.logged("sweep", key):
        return {"cached": True, "variants": len(variants), "parent_run_id": ledger.data.get("sweep_run_id"),
                "dashboard": ledger.data.get("sweep_dashboard")}
    summary = run_variants(spec.sweep, variants, config.name, per_variant=False)
    ledger.data["sweep_run_id"] = summary.parent_run_id
    ledger.data["sweep_dashboard"] = summary.dashboard
    ledger.mark("sweep", key)
    return {"cached": False, **summary.as_dict()}


def _vs_previous_stage(follows: str, outcome: BenchmarkOutcome, ledger: _Ledger) -> dict[str, Any]:
    """Compare this run with the run it follows (same pipeline, an earlier date): paired deltas on
    the same samples, logged as ``vs_previous/...``; a significant drop tags ``mils.regression``."""
    import mlflow

    from evaluation.compare import compare, references_for, system_from_path
    from evaluation.paired import gain_metrics

    previous_dir = mlflow.MlflowClient().get_run(follows).data.tags.get("mils.results_dir")
    if not previous_dir or not RunFolder(Path(previous_dir)).samples.is_dir() or not outcome.config.metrics:
        return {"skipped": f"the previous run's results folder is not here ({previous_dir})"}
    if ledger.logged("vs_previous", follows):
        return {"cached": True, "previous": follows}
    before, now = system_from_path(previous_dir), system_from_path(str(outcome.results_dir))
    result = compare(before, now, references_for(before, now), outcome.config.metrics, seed=outcome.config.loop.seed)
    drops = [name for name, d in result.metrics.items() if d.high < 0]
    mlflow.log_metrics(gain_metrics(result.metrics, result.scores, prefix="vs_previous"))
    mlflow.set_tags({"mils.regression": str(bool(drops)).lower(), "mils.regression_metrics": ",".join(drops)})
    ledger.data.update(regression=bool(drops), previous_dir=previous_dir)
    ledger.mark("vs_previous", follows)
    return {"previous": follows, "previous_dir": previous_dir, "regression": bool(drops), "dropped": drops,
            "deltas": {name: result.metrics[name].as_dict() for name in drops}, "n": result.n}


def _vs_seed_stage(config: RunConfig, outcome: BenchmarkOutcome, ledger: _Ledger) -> dict[str, Any]:
    """MILS as a caption enhancer: the seed captions (another captioner's output, each sample's
    first) against what MILS made of them, paired on the same samples, logged as ``vs_seed/...``."""
    import mlflow

    from evaluation.compare import System, compare, references_for, system_from_path
    from evaluation.paired import gain_metrics
    from mils.components import load_seed_captions

    if not config.metrics:
        return {"skipped": "no metrics configured"}
    if ledger.logged("vs_seed", outcome.plan.key):
        return {"cached": True}
    seeds = {k: texts[0] for k, texts in load_seed_captions(config.bank.seed_captions).items() if texts}
    before, now = System(f"seed captions {config.bank.seed_captions}", seeds), system_from_path(str(outcome.results_dir))
    result = compare(before, now, references_for(before, now), config.metrics, seed=config.loop.seed)
    mlflow.log_metrics(gain_metrics(result.metrics, result.scores, prefix="vs_seed"))
    ledger.mark("vs_seed", outcome.plan.key)
    return {"n": result.n, "delta": {name: round(d.delta, 4) for name, d in result.metrics.items()},
            "verdicts": [d.verdict(name) for name, d in result.metrics.items() if name in VERDICTS]}


def _baseline_stage(spec: PipelineSpec, config: RunConfig) -> tuple[RunConfig, PipelineSpec, dict[str, Any]]:
    """A captioner over the dataset (resumable); with ``seed`` (the default) its captions seed MILS,
    and ``judging: {against: baseline}`` pits MILS's final captions against the captioner's."""
    from evaluation.vlm_baseline import run_baseline

    options = spec.baseline.get("options") or {}
    outcome = run_baseline(config, spec.baseline["captioner"], options, batch_size=config.batch_size)
    if spec.baseline.get("seed", True):
        config = config.model_copy(update={"bank": config.bank.model_copy(update={"seed_captions": outcome["captions"]})})
    if spec.judging is not None and spec.judging.against == "baseline":
        spec = replace(spec, judging=spec.judging.model_copy(update={"against": outcome["results_dir"]}))
    return config, spec, {"captioner": spec.baseline["captioner"], "results_dir": outcome["results_dir"],
                          "done": outcome["done"], "failed": len(outcome["failed"])}


def _frontier_stage(config: RunConfig, outcome: BenchmarkOutcome, variants, stages: dict,
                    ledger: _Ledger) -> dict[str, Any]:
    """The run, each sweep variant's folder (variants that differ only in ``loop.steps`` share the
    longest's) and the VLM baseline on one quality-vs-cost frontier, a child run of the pipeline's."""
    from evaluation.frontier import frontier
    from flows.tracking import log_frontier

    folders = [outcome.results_dir] + [plan_run(c.model_copy(update={"name": config.name})).results_dir for _, c in variants]
    if "baseline" in stages:
        folders.append(Path(stages["baseline"]["results_dir"]))
    folders = [f for f in dict.fromkeys(folders) if RunFolder(f).samples.is_dir()]
    if len(folders) < 2:
        return {"skipped": "one run: a frontier needs a sweep or a baseline beside it"}
    key = content_hash(json.dumps([[str(f), len(list(RunFolder(f).samples.glob("*.json")))] for f in folders]), 12)
    if ledger.logged("frontier", key):
        return {"cached": True, "runs": len(folders), "run_id": ledger.data.get("frontier_run_id")}
    out = outcome.results_dir / "frontier"
    table = frontier(folders, out)
    ledger.data["frontier_run_id"] = log_frontier(table, config.tracking)
    ledger.mark("frontier", key)
    return {"cached": False, "runs": len(folders), "run_id": ledger.data["frontier_run_id"], "table": str(out / "frontier.csv"),
            "pareto": [row["run"] for _, row in table.iterrows() if row["pareto"]]}


def _judging_stage(spec: PipelineSpec, outcome: BenchmarkOutcome, parent_run_id: str, ledger: _Ledger) -> dict:
    import mlflow

    batch = judging_task(str(outcome.results_dir), spec.judging, parent_run_id)
    if batch.get("path") and not ledger.logged("judging", batch["path"]):
        mlflow.log_artifacts(batch["path"], "judging")
        ledger.mark("judging", batch["path"])
    return batch


@flow(name="mils-pipeline-stages")
def pipeline_stages(config_path: str, fresh: bool = False) -> PipelineOutcome:
    """The stages, on the task runner the config asks for (see :func:`pipeline_flow`)."""
    import mlflow

    logger = get_run_logger()
    spec = read_pipeline(config_path)
    config = _dated(spec.config) if fresh else spec.config
    stages: dict[str, Any] = {}
    if spec.baseline:  # before the results folder is named: the seed captions are part of its key
        config, spec, stages["baseline"] = _baseline_stage(spec, config)
    plan = plan_run(config)
    results_dir = plan.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    ledger = _Ledger(results_dir)
    start_tracking(config.tracking)
    with mlflow.start_run(run_id=ledger.data.get("parent_run_id"), run_name=f"pipeline {config.name}") as parent:
        ledger.data["parent_run_id"] = parent.info.run_id
        end_orphans(parent.info.run_id)  # a killed earlier attempt's half-logged children
        follows = ledger.data.get("follows") or previous_run(spec, exclude=parent.info.run_id)
        ledger.data["follows"] = follows
        mlflow.set_tags({"mils.kind": "pipeline", "mils.pipeline_key": spec.key(), "mils.config": str(config_path),
                         "mils.results_dir": str(results_dir), "mils.scheduled": str(fresh).lower(),
                         **({"mils.follows": follows} if follows else {})})
        stages["bank"] = _bank_stage(plan, ledger)
        outcome, stages["optimise"] = _optimise_stage(plan, ledger)
        if follows:
            stages["vs_previous"] = _vs_previous_stage(follows, outcome, ledger)
            if stages["vs_previous"].get("regression") and spec.notify:
                stages["vs_previous"]["undelivered"] = send(spec.notify, regression_message(
                    plan, stages["vs_previous"], follows, parent.info.run_id))
        if config.bank.seed_captions:
            stages["vs_seed"] = _vs_seed_stage(config, outcome, ledger)
        variants = _variants(spec, config) if spec.sweep else []
        if spec.sweep:
            stages["sweep"] = _sweep_stage(spec, config, variants, ledger)
        if spec.frontier:
            stages["frontier"] = _frontier_stage(config, outcome, variants, stages, ledger)
        if spec.judging is not None:
            stages["judging"] = _judging_stage(spec, outcome, parent.info.run_id, ledger)
        summary = PipelineOutcome(parent.info.run_id, str(results_dir), follows, config.tracking.uri, stages)
        if not ledger.logged("summary", json.dumps(stages, sort_keys=True, default=str)):
            mlflow.log_dict(summary.as_dict(), "pipeline.json")
            ledger.mark("summary", json.dumps(stages, sort_keys=True, default=str))
    ledger.save()
    if fresh:  # the newest rerun's MLflow run shows the whole history (a plot that fails never fails the run)
        try:
            log_history(config.tracking.uri, config.tracking.experiment, spec.key(), f"{config.name}: reruns")
        except Exception as err:  # noqa: BLE001
            logger.warning("history not logged: %s", err)
    if fresh and spec.retention:
        removed = prune_dated(Path(spec.config.output_dir), spec.retention, results_dir.parent)
        summary = replace(summary, removed=tuple(str(p) for p in removed))
    logger.info("pipeline %s done: %s", config.name, json.dumps(stages, default=str)[:500])
    return summary


@flow(name="mils-pipeline", on_failure=[on_failure], on_crashed=[on_failure])
def pipeline_flow(config_path: str, fresh: bool = False) -> PipelineOutcome:
    """What ``mils pipeline`` and a scheduled deployment run. Parameters are plain data (a path and
    a flag), so a deployment can carry them; the config is read at run time, and the stages run on
    the task runner it names."""
    spec = read_pipeline(config_path)  # fail here, with the file's name, before any stage starts
    return run_flow(pipeline_stages, spec.config.executor, str(Path(config_path).resolve()), fresh)
