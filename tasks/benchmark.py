"""Tasks of a benchmark run: dataset, models + bank, optimisation shards, metrics."""

from __future__ import annotations

import os
import time
from typing import Any, Sequence

from prefect import get_run_logger, task

from evaluation.caption_metrics import MetricReport, cached_caption_metrics
from evaluation.datasets import Dataset, config_dataset
from mils.components import RunPlan, ensure_generated_bank
from mils.config import DatasetConfig
from mils.engine import advance, peak_memory_mb
from mils.errors import InputError, MilsError
from mils.protocols import Sample
from mils.run import model_lock, models_for, run_into_folder, runner_for
from mils.storage import ResultStore


@task(name="load-dataset")
def load_dataset_task(dataset: DatasetConfig) -> Dataset:
    data = config_dataset(dataset)
    logger = get_run_logger()
    counts = data.counts()
    logger.info("dataset %s: %d samples (%d drawn of %d, %d of them skipped)", data.name, len(data), counts["drawn"],
                counts["original"], counts["skipped"])
    for sample_id, reason in data.skipped[:20]:
        logger.warning("skipped %s: %s", sample_id, reason)
    return data


def transient(task, task_run, state) -> bool:
    """Prefect's retry condition: only an error that can pass on a second try is retried (the
    network, a hub's rate limit: OSError or an HTTP client's error). A MilsError (a wrong name, a
    missing file, bad input) or a bug fails at once: a deterministic failure would only fail again."""
    error = state.data if isinstance(state.data, BaseException) else None
    if error is None or isinstance(error, MilsError):
        return False
    return isinstance(error, OSError) or type(error).__module__.split(".")[0] in ("httpx", "requests", "urllib3",
                                                                                 "huggingface_hub")


# Loading from a hub can fail transiently (network, rate limits): that alone is retried.
@task(name="load-models-and-encode-bank", retries=2, retry_delay_seconds=30, retry_condition_fn=transient)
def prepare_models_task(plan: RunPlan) -> dict[str, Any]:
    """Load the models in this process and make sure the bank embeddings are cached on disk."""
    bank = runner_for(plan).bank  # None: the task's samples bring their own initial candidates
    return {"bank_size": len(bank) if bank else 0, "bank_hash": bank.content_hash() if bank else None,
            "bank_provenance": bank.provenance if bank else None}


class StepLog:
    """tqdm-shaped reporter that writes each finished step of a shard's batches to the Prefect log."""

    def __init__(self, logger, steps: int, first: str, key: str | None = None) -> None:
        self.logger, self.steps, self.first, self.key = logger, steps, first, key

    def update(self, n: int) -> None:  # sample-steps: the flow's bar, when it runs in this process
        if self.key is not None:
            advance(self.key, n)

    def set_postfix(self, step: int, best: str) -> None:
        self.logger.info("shard from %s: step %d/%d, mean best score of the batch %s", self.first, step, self.steps, best)


@task(name="optimise-shard")
def optimise_shard_task(plan: RunPlan, samples: Sequence[Sample]) -> dict[str, Any]:
    """Optimise the shard's unfinished samples (the runner cuts the batches); each result is on disk
    in the plan's results folder as soon as its sample finishes."""
    store = ResultStore(plan.results_dir, plan.scorer.record)
    todo = [s for s in samples if not store.has(s.id)]
    done_before = len(samples) - len(todo)
    start = time.perf_counter()
    with model_lock():
        runner = runner_for(plan)
        runner.timer.seconds.clear()
        log = StepLog(get_run_logger(), plan.loop.steps, todo[0].id, str(plan.results_dir)) if todo else None
        run = run_into_folder(runner, todo, reporter=log, checked=True)  # media: the flow checked it; results written
        timings, failed = dict(runner.timer.seconds), run.failed
    if failed:
        get_run_logger().warning("shard: %d samples failed: %s", len(failed), list(failed.items())[:3])
    return {"computed": len(todo) - len(failed), "resumed": done_before, "failed": len(failed),
            "seconds": time.perf_counter() - start, "timings": timings, "pid": os.getpid(),
            "peak_rss_mb": peak_memory_mb()["peak_rss_mb"]}  # this shard's process: a Dask worker's, or the flow's


@task(name="caption-metrics")
def metrics_task(predictions: dict[str, str], references: dict[str, list[str]], metrics: Sequence[str],
                 seed: int = 0, cache_dir: str | None = None, tokenize: str = "ptb") -> MetricReport:
    """Captioning metrics; with ``cache_dir``, kept there under a hash of every input, so the same
    predictions are never scored twice (METEOR alone starts a JVM)."""
    return cached_caption_metrics(predictions, references, list(metrics), seed, cache_dir, tokenize)


@task(name="generate-bank", retries=2, retry_delay_seconds=30, retry_condition_fn=transient)
def generate_bank_task(plan: RunPlan) -> dict[str, Any]:
    """The bank ``bank.generate`` describes: generated with the run's LLM, or reused from the cache
    when the same recipe was generated before (keyed by recipe, prompt and LLM settings)."""
    path, generated = plan.bank.generated, False
    if path is None:
        raise InputError("the config's bank is not a generated one (bank.generate is not set)")
    if not path.is_file():  # only then are the models needed
        with model_lock():
            generator, _ = models_for(plan)
            path, generated = ensure_generated_bank(plan.bank, generator)
    get_run_logger().info("bank %s: %s", "generated" if generated else "reused from the cache", path)
    return {"path": str(path), "generated": generated}
