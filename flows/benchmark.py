"""The benchmark flow: config -> dataset -> shards -> optimisation -> metrics -> MLflow.

Per-sample results are written atomically as batches finish, under a folder named by the
config's result key; running the same config again resumes where a crash or kill stopped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.futures import as_completed
from tqdm.auto import tqdm

from evaluation.caption_metrics import MetricReport
from evaluation.datasets import Dataset
from flows.runners import make_task_runner
from flows.tracking import log_config_run
from mils.config import RunConfig, load_config
from mils.results import ResultStore
from tasks.captioning import load_dataset_task, metrics_task, optimise_shard_task, prepare_models_task


@dataclass
class BenchmarkOutcome:
    config: RunConfig
    results: list[dict[str, Any]]
    failures: dict[str, str]
    reports: dict[str, MetricReport]
    results_dir: Path
    seconds: float
    shard_stats: list[dict[str, Any]]


def optimise_config(
    config: RunConfig, results_dir: Path | None = None, data: Dataset | None = None
) -> BenchmarkOutcome:
    """Run (or resume) one configuration inside the current flow; no MLflow here. ``data``: the
    dataset when the caller has already loaded it (a sweep loads it once for all variants)."""
    logger = get_run_logger()
    start = time.perf_counter()
    results_dir = results_dir or config.results_dir()
    store = ResultStore(results_dir)
    (results_dir / "config.json").write_text(config.model_dump_json(indent=2))
    data = data if data is not None else load_dataset_task(config)
    samples = [s.as_sample() for s in data.samples]
    prepare_models_task(config)  # loads models in the flow process; encodes + caches the bank once
    shard_size = config.runner.shard_size
    shards = [samples[i : i + shard_size] for i in range(0, len(samples), shard_size)]
    already = sum(store.has(s.id) for s in samples)
    logger.info("%s: %d samples in %d shards, %d already done (%s)", config.name, len(samples), len(shards),
                already, results_dir)
    futures = [optimise_shard_task.submit(config, shard, str(results_dir)) for shard in shards]
    stats = []
    with tqdm(total=len(samples), initial=already, desc=f"{config.name} samples", unit="sample") as bar:
        for future in as_completed(futures):
            stat = future.result()
            stats.append(stat)
            bar.update(stat["computed"] + stat["failed"])
    order = [s.id for s in samples]
    results = store.results(order)
    failures = {**store.failures(), **{sid: reason for sid, reason in data.skipped}}
    references = data.references()
    reports: dict[str, MetricReport] = {}
    if results and config.metrics:
        for stage, step in (("step0", 0), ("final", -1)):
            predictions = {r["sample_id"]: r["history"][step]["best"] for r in results}
            refs = {k: references[k] for k in predictions}
            reports[stage] = metrics_task(predictions, refs, config.metrics, seed=config.loop.seed)
    return BenchmarkOutcome(config, results, failures, reports, results_dir, time.perf_counter() - start, stats)


def dataset_hash(outcome: BenchmarkOutcome) -> str:
    import hashlib

    ids = "\n".join(sorted(r["sample_id"] for r in outcome.results) + sorted(outcome.failures))
    return hashlib.sha256(ids.encode()).hexdigest()[:16]


def _tracked_run_ids(results_dir: Path) -> dict[str, str]:
    path = results_dir / "mlflow.json"
    return json.loads(path.read_text()) if path.is_file() else {}


@flow(name="mils-benchmark")
def benchmark_flow(config: RunConfig) -> dict[str, Any]:
    """One configuration: optimise every sample, score step 0 and the final step, log to MLflow."""
    import mlflow

    outcome = optimise_config(config)
    mlflow.set_tracking_uri(config.tracking.uri)
    mlflow.set_experiment(config.tracking.experiment)
    previous = _tracked_run_ids(outcome.results_dir)
    with mlflow.start_run(run_id=previous.get("parent"), run_name=f"benchmark {config.name}") as parent:
        mlflow.set_tag("mils.kind", "benchmark")
        with mlflow.start_run(run_name=f"{config.name} {config.result_key()}", nested=True) as child:
            log_config_run(config, outcome.results, outcome.failures, outcome.reports,
                           {"mils.kind": "config", "dataset_hash": dataset_hash(outcome)},
                           {"time/flow_seconds": outcome.seconds})
    (outcome.results_dir / "mlflow.json").write_text(json.dumps({"parent": parent.info.run_id}))
    return {"parent_run_id": parent.info.run_id, "child_run_id": child.info.run_id,
            "results_dir": str(outcome.results_dir), "done": len(outcome.results), "failed": outcome.failures,
            "reports": outcome.reports, "seconds": outcome.seconds,
            "shards": {"computed": sum(s["computed"] for s in outcome.shard_stats),
                       "resumed": sum(s["resumed"] for s in outcome.shard_stats)}}


def run_benchmark(config: RunConfig) -> dict[str, Any]:
    """Run the benchmark flow on the task runner the config asks for."""
    return benchmark_flow.with_options(task_runner=make_task_runner(config.runner))(config)


@flow(name="mils-benchmark-scheduled")
def scheduled_benchmark_flow(config_path: str, fresh: bool = True) -> dict[str, Any]:
    """For deployments: load the YAML at run time; ``fresh`` writes to a new dated results folder
    so a scheduled rerun recomputes instead of resuming the last one."""
    config = load_config(config_path)
    if fresh:
        config = config.model_copy(update={"output_dir": str(Path(config.output_dir) / time.strftime("%Y%m%d-%H%M%S"))})
    return benchmark_flow.with_options(task_runner=make_task_runner(config.runner))(config)
