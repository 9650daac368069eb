"""The benchmark flow: config -> dataset -> shards -> optimisation -> metrics -> MLflow.

Per-sample results are written atomically as batches finish, under a folder named by the
config's result key; running the same config again resumes where a crash or kill stopped.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import as_completed
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from evaluation.caption_metrics import MetricReport
from evaluation.datasets import Dataset
from evaluation.run_record import RunRecord, write_record
from evaluation.run_report import headline_sentence
from flows.dashboard import share_runs_view
from flows.executors import run_flow
from flows.record import BenchmarkOutcome, run_record
from flows.tracking import created_run, end_orphans, git_revision, log_config_run, package_versions, start_tracking
from mils.components import RunPlan, plan_run
from mils.config import RunConfig, primary_metric
from mils.engine import shared_bar
from mils.files import content_hash, write_atomic
from mils.run import check_media
from mils.storage import ResultStore, RunFolder, folder_lock, write_media_root
from tasks.benchmark import (
    load_dataset_task,
    metrics_task,
    optimise_shard_task,
    prepare_models_task,
)


def optimise_config(plan: RunPlan, data: Dataset | None = None) -> BenchmarkOutcome:
    """Run (or resume) one planned configuration (:func:`mils.components.plan.plan_run`) inside the
    current flow; no MLflow here. ``data``: the dataset when the caller has already loaded it (a
    sweep loads it once for all variants)."""
    with folder_lock(plan.results_dir):  # a second run of the same config refuses instead of computing it all again
        return _optimise(plan, data)


def _optimise(plan: RunPlan, data: Dataset | None) -> BenchmarkOutcome:
    logger = get_run_logger()
    start = time.perf_counter()
    config, results_dir = plan.config, plan.results_dir
    store = ResultStore(results_dir)
    write_atomic(RunFolder(results_dir).config, config.model_dump_json(indent=2))
    data = data if data is not None else load_dataset_task(config.dataset)
    samples = [s.as_sample() for s in data.samples]
    write_media_root(results_dir, samples)
    shard_size = config.executor.shard_size
    todo, unreadable = check_media([s for s in samples if not store.has(s.id)])
    for sample_id, error in [*data.skipped, *unreadable.items()]:  # recorded in failed/ without loading any model
        store.write_failure(sample_id, error)
    if config.schedule == "async" and config.executor.kind == "threads":  # one process takes one shard at a time:
        shard_size = max(len(todo), 1)  # a single one keeps the engine fed from the first sample to the last
    shards = [todo[i : i + shard_size] for i in range(0, len(todo), shard_size)]
    already = len(samples) - len(todo) - len(unreadable)
    logger.info("%s: %d samples, %d already done, %d shards to run (%s)", config.name, len(samples), already,
                len(shards), results_dir)
    if shards:  # a finished run loads no model
        prepare_models_task(plan)  # loads models in the flow process; encodes + caches the bank once
    futures = {}
    for shard in shards:
        futures[optimise_shard_task.submit(plan, shard)] = shard
    stats = [{"computed": 0, "resumed": already, "failed": len(unreadable), "seconds": 0.0, "timings": {}}]
    steps = max(config.loop.effective_steps, 1)  # in sample-steps: it moves at every step, with a rate and an ETA
    with (tqdm(total=len(samples) * steps, initial=already * steps, desc=f"{config.name} sample-steps",
               unit="sample-step") as bar, shared_bar(str(results_dir), bar),
          logging_redirect_tqdm(_console_loggers())):  # log lines print above the bar, not glued to it
        finished = already * steps
        for future in as_completed(list(futures)):
            try:
                stat = future.result()
            except Exception as err:
                if type(err).__name__ != "KilledWorker":
                    raise
                stat = _record_lost_shard(store, futures[future], err)
                logger.error("%d samples recorded failed: %s", stat["failed"], err)
            stats.append(stat)
            finished += (stat["computed"] + stat["failed"]) * steps
            bar.update(max(0, finished - bar.n))  # a shard in another process, failures, early stops
    order = [s.id for s in samples]
    results = store.results(order, summary=True)  # the trace and replies stay on disk
    failures = {**store.failures(), **{sid: reason for sid, reason in data.skipped}}
    references = data.references()
    reports: dict[str, MetricReport] = {}
    judged = [r for r in results if references.get(r.sample_id)]  # a folder dataset may have no references
    if config.metrics and len(judged) < len(results):
        logger.warning("%s: %d of %d samples have no reference captions: reference metrics (%s) %s", config.name,
                       len(results) - len(judged), len(results), ", ".join(config.metrics),
                       "are skipped" if not judged else f"are computed over the {len(judged)} that have")
    if judged and config.metrics:
        for stage, step in (("step0", 0), ("final", -1)):
            predictions = {r.sample_id: r.at_step(step).best for r in judged}
            refs = {k: references[k] for k in predictions}
            reports[stage] = metrics_task(predictions, refs, config.metrics, seed=config.loop.seed,
                                          cache_dir=str(RunFolder(results_dir).metrics), tokenize=config.eval_tokenize)
    return BenchmarkOutcome(plan, results, failures, reports, time.perf_counter() - start, stats, data.counts())


def _console_loggers() -> list[logging.Logger]:
    """The loggers that print on the terminal (ours through the root, Prefect's own): only those get
    tqdm's handler, which would otherwise print a propagated line twice."""
    names = ("", "prefect", "prefect.flow_runs", "prefect.task_runs")
    return [logger for logger in map(logging.getLogger, names)
            if any(isinstance(h, logging.StreamHandler) and h.stream in (sys.stdout, sys.stderr) for h in logger.handlers)]


def _record_lost_shard(store: ResultStore, shard: list, err: Exception) -> dict[str, Any]:
    """Dask gave up on a shard whose worker process died on every attempt (``KilledWorker``):
    its unfinished samples are recorded failed, so the run finishes and a rerun retries them."""
    lost = [s.id for s in shard if not store.has(s.id)]
    reason = (f"the worker process running this sample's shard died ({type(err).__name__}: {str(err)[:160]}); "
              "rerun the config to retry it")
    for sample_id in lost:
        store.write_failure(sample_id, reason)
    return {"computed": len(shard) - len(lost), "resumed": 0, "failed": len(lost), "seconds": 0.0, "timings": {}}


def dataset_hash(outcome: BenchmarkOutcome) -> str:

    ids = "\n".join(sorted(r.sample_id for r in outcome.results) + sorted(outcome.failures))
    return content_hash(ids, 16)


def _finished(run_id: str | None) -> bool:
    import mlflow

    try:
        return run_id is not None and mlflow.MlflowClient().get_run(run_id).info.status == "FINISHED"
    except mlflow.exceptions.MlflowException:  # deleted, or another tracking store
        return False


def _tracked_run_ids(results_dir: Path) -> dict[str, Any]:
    return RunFolder(results_dir).read_ledger("mlflow")


@flow(name="mils-benchmark")
def benchmark_flow(config: RunConfig) -> RunRecord:
    """One configuration: optimise every sample, score step 0 and the final step, log to MLflow.
    Returns the run's record, also written as ``run.json`` in the results folder. (A deployment
    passes the config as JSON; Prefect validates it into a RunConfig by this annotation.)"""
    import mlflow

    started = time.time()
    plan = plan_run(config)  # the only place a benchmark run resolves its config
    outcome = optimise_config(plan)
    record = run_record(outcome, {"git_revision": git_revision(), **package_versions()})
    experiment_id = start_tracking(config.tracking)
    previous = _tracked_run_ids(outcome.results_dir)
    state = {"dataset_hash": dataset_hash(outcome), "done": len(outcome.results), "failed": len(outcome.failures),
             "metrics": list(config.metrics), "eval_tokenize": config.eval_tokenize}
    parent_id = previous.get("parent") or created_run(experiment_id, f"benchmark {config.name}", started)
    with mlflow.start_run(run_id=parent_id) as parent:
        mlflow.set_tag("mils.kind", "benchmark")
        # at once, so that a rerun after a kill during logging reopens this parent instead of adding one
        RunFolder(outcome.results_dir).write_ledger("mlflow", {"parent": parent.info.run_id})
        end_orphans(parent.info.run_id)  # a killed earlier attempt's half-logged child
        child_id = previous.get("child") if previous.get("state") == state and _finished(previous.get("child")) else None
        if child_id is None:  # a finished run whose results have not changed is not logged twice
            name = f"{config.name} {plan.key}"
            with mlflow.start_run(run_id=created_run(experiment_id, name, started, parent.info.run_id), nested=True) as child:
                log_config_run(config, plan.key, outcome.results, outcome.failures, outcome.reports,
                               {"mils.kind": "config", "dataset_hash": state["dataset_hash"],
                                "mils.results_dir": str(outcome.results_dir)},
                               {"time/flow_seconds": outcome.seconds}, counts=outcome.counts, worker_peak_mb=outcome.worker_peak_mb,
                               gain=(record.gain, record.score_gain))
            child_id = child.info.run_id
        # the run's overview opens on its headline sentence (MLflow's description), not on raw floats
        note = headline_sentence(record.as_dict())
        for run_id in (parent.info.run_id, child_id):
            mlflow.MlflowClient().set_tag(run_id, "mlflow.note.content", note)
        RunFolder(outcome.results_dir).write_ledger("mlflow", {"parent": parent.info.run_id, "child": child_id,
                                                               "state": state})
        view = share_runs_view(mlflow.MlflowClient(), parent.info.experiment_id, parent.info.run_id,
                               primary_metric=primary_metric(config.metrics))
    return write_record(record, {"parent": parent.info.run_id, "child": child_id, "tracking_uri": config.tracking.uri,
                                 "view": view})


def run_benchmark(config: RunConfig) -> RunRecord:
    """Run the benchmark flow on the task runner the config asks for."""
    return run_flow(benchmark_flow, config.executor, config)
