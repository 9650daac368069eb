"""What one benchmark run computed: the full outcome in memory (:class:`BenchmarkOutcome`, which a
sweep truncates and MLflow logs), and the record made of it (:class:`evaluation.run_record.RunRecord`,
beside its reader).

The benchmark flow returns a RunRecord and writes it as ``run.json`` in the results folder; the CLI
only formats it (``mils run``, ``mils demo``), so nothing is read back or recomputed after the run.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evaluation.caption_metrics import MetricReport
from evaluation.run_record import RunRecord, build_record
from mils.components import RunPlan
from mils.config import RunConfig
from mils.engine import SampleResult


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


def run_record(outcome: BenchmarkOutcome, provenance: dict[str, str], kind: str = "benchmark") -> RunRecord:
    """The record of a finished optimisation (its MLflow ids come later): its counts are the split's
    (original, drawn, skipped) and the run's (done, failed, computed, resumed)."""
    plan = outcome.plan
    counts = {**(outcome.counts or {}), "done": len(outcome.results), "failed": len(outcome.failures),
              "computed": sum(s["computed"] for s in outcome.shard_stats),
              "resumed": sum(s["resumed"] for s in outcome.shard_stats)}
    return build_record(plan.config, plan.key, plan.results_dir, outcome.results, outcome.failures, outcome.reports,
                        outcome.seconds, counts, provenance, kind, outcome.worker_peak_mb)
