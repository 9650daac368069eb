"""What one benchmark run computed: the full outcome in memory (:class:`BenchmarkOutcome`, which a
sweep truncates and MLflow logs) and the typed, versioned record kept of it (:class:`RunRecord`).

The benchmark flow returns a :class:`RunRecord` and writes it as ``run.json`` in the results
folder (``as_dict``); the CLI only formats it (``mils run``, ``mils demo``), so nothing is read
back or recomputed after the run. Bump ``RUN_RECORD_VERSION`` when a field changes meaning.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.caption_metrics import MetricReport
from evaluation.paired import PairedDelta, ScoreComparison, run_gain
from mils.components.plan import RunPlan
from mils.config.run_config import RunConfig
from mils.engine.cost import run_cost
from mils.engine.records import SampleResult
from mils.storage.results import direction

RUN_RECORD_VERSION = 1


@dataclass
class BenchmarkOutcome:
    """What optimising one config computed (full results, in memory): the flow's record of it
    (:func:`flows.record.run_record`, run.json) and the MLflow logging are made from this."""

    plan: RunPlan
    results: list[SampleResult]
    failures: dict[str, str]
    reports: dict[str, MetricReport]
    seconds: float
    shard_stats: list[dict[str, Any]]
    counts: dict[str, int] | None = None  # Dataset.counts(): the split, the drawn subset, the skipped

    @property
    def config(self) -> RunConfig:
        return self.plan.config

    @property
    def results_dir(self) -> Path:
        return self.plan.results_dir

    @property
    def worker_peak_mb(self) -> float | None:
        """The largest peak RSS of the worker processes (not this one) that ran shards: Dask's."""
        peaks = [s["peak_rss_mb"] for s in self.shard_stats if s.get("pid") not in (None, os.getpid())]
        return max(peaks) if peaks else None

    @property
    def dataset_size(self) -> int | None:
        """The split's size before any subsample: for the cost projection."""
        return self.counts["original"] if self.counts else None


@dataclass(frozen=True)
class SampleLine:
    """One sample's start and end: the step-0 (retrieval) best, the final best, the best by step."""

    sample_id: str
    initial: str
    initial_score: float
    caption: str
    score: float
    by_step: tuple[float, ...]

    @classmethod
    def of(cls, result: SampleResult) -> "SampleLine":
        return cls(result.sample_id, result.initial.best, result.initial.best_score, result.caption, result.score,
                   tuple(h.best_score for h in result.history))


@dataclass(frozen=True)
class RunRecord:
    """One run of one configuration. ``counts``: the split's ``original`` size, the ``drawn``
    subset, the drawn samples ``skipped`` as unusable, and ``done``/``failed``/``computed``/``resumed``.
    ``gain``/``score_gain``: final vs step 0, paired, per metric and on the scorer's own score."""

    config: RunConfig
    result_key: str
    results_dir: Path
    samples: tuple[SampleLine, ...]
    failures: dict[str, str]
    counts: dict[str, int]
    reports: dict[str, MetricReport]
    gain: dict[str, PairedDelta]
    score_gain: ScoreComparison | None
    cost: dict[str, float]
    higher_is_better: bool
    provenance: dict[str, str]
    mlflow: dict[str, str | None]
    seconds: float
    version: int = RUN_RECORD_VERSION

    @property
    def status(self) -> str:
        """``completed``, or ``completed with failures`` (some samples failed; a rerun retries them)."""
        return "completed with failures" if self.failures else "completed"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data (what ``run.json`` holds)."""
        return {
            "version": self.version, "status": self.status, "result_key": self.result_key,
            "config": self.config.model_dump(mode="json"), "results_dir": str(self.results_dir),
            "counts": self.counts, "failures": self.failures, "higher_is_better": self.higher_is_better,
            "reports": {stage: report.as_dict() for stage, report in self.reports.items()},
            "gain": {name: d.as_dict() for name, d in self.gain.items()},
            "score_gain": self.score_gain.as_dict() if self.score_gain else None,
            "cost": self.cost, "provenance": self.provenance, "mlflow": self.mlflow, "seconds": self.seconds,
            "samples": [vars(line) | {"by_step": list(line.by_step)} for line in self.samples],
        }


def run_record(outcome: BenchmarkOutcome, counts: dict[str, int], provenance: dict[str, str]) -> RunRecord:
    """The record of a finished run (its MLflow ids come later): the paired gain and the cost
    computed here, once."""
    config, results = outcome.config, outcome.results
    gain, score_gain = run_gain(results, outcome.reports, seed=config.loop.seed)
    price = config.generator.price.model_dump() if config.generator.price else None
    cost = run_cost(results, outcome.seconds, counts.get("original"), outcome.worker_peak_mb, price)
    return RunRecord(config, outcome.plan.key, outcome.results_dir, tuple(SampleLine.of(r) for r in results),
                     outcome.failures, counts, outcome.reports, gain, score_gain, cost, direction(results), provenance,
                     {}, outcome.seconds)
