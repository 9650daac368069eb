"""The record of one run (``run.json`` in its results folder): typed, versioned, written by every
run kind (a benchmark, each sweep variant's optimisation, a VLM baseline, `mils caption`, `mils t2i`
and `mils style`) and read back by one reader, :func:`read_record`, which the report, the frontier
and the viewer share. Bump ``RUN_RECORD_VERSION`` when a field changes meaning.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from evaluation.bootstrap import Estimate
from evaluation.caption_metrics import MetricReport
from evaluation.paired import PairedDelta, ScoreComparison, run_gain
from mils.config import RunConfig, config_read_back
from mils.engine import SampleResult, run_cost
from mils.errors import InputError
from mils.files import write_atomic
from mils.storage import MAX_RESULT_BYTES, RunFolder, direction

RUN_RECORD_VERSION = 1


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
class RecordedReport:
    """A metric report as the record keeps it: the corpus estimates, the metrics that could not run
    (with the reason) and how many samples were scored (the per-sample table stays in metrics/)."""

    corpus: dict[str, Estimate]
    unavailable: dict[str, str]
    n_samples: int

    @classmethod
    def of(cls, report: MetricReport) -> "RecordedReport":
        return cls(dict(report.corpus), dict(report.unavailable), int(len(report.per_sample)))

    def as_dict(self) -> dict[str, Any]:
        return {"corpus": {k: v.as_dict() for k, v in self.corpus.items()}, "unavailable": self.unavailable,
                "n_samples": self.n_samples}


@dataclass(frozen=True)
class RunRecord:
    """One run of one configuration. ``counts``: the split's ``original`` size, the ``drawn``
    subset, the drawn samples ``skipped`` as unusable, and ``done``/``failed``/``computed``/``resumed``.
    ``gain``/``score_gain``: final vs step 0, paired, per metric and on the scorer's own score.
    ``kind``: what wrote it (benchmark, sweep, baseline, caption)."""

    config: RunConfig
    result_key: str
    results_dir: Path
    samples: tuple[SampleLine, ...]
    failures: dict[str, str]
    counts: dict[str, int]
    reports: dict[str, RecordedReport]
    gain: dict[str, PairedDelta]
    score_gain: ScoreComparison | None
    cost: dict[str, float]
    higher_is_better: bool
    provenance: dict[str, str]
    mlflow: dict[str, Any]
    seconds: float
    kind: str = "benchmark"
    version: int = RUN_RECORD_VERSION

    @property
    def status(self) -> str:
        """``completed``, or ``completed with failures`` (some samples failed; a rerun retries them)."""
        return "completed with failures" if self.failures else "completed"

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON data (what ``run.json`` holds)."""
        return {
            "version": self.version, "kind": self.kind, "status": self.status, "result_key": self.result_key,
            "config": self.config.model_dump(mode="json"), "results_dir": str(self.results_dir),
            "counts": self.counts, "failures": self.failures, "higher_is_better": self.higher_is_better,
            "reports": {stage: report.as_dict() for stage, report in self.reports.items()},
            "gain": {name: d.as_dict() for name, d in self.gain.items()},
            "score_gain": self.score_gain.as_dict() if self.score_gain else None,
            "cost": self.cost, "provenance": self.provenance, "mlflow": self.mlflow, "seconds": self.seconds,
            "samples": [vars(line) | {"by_step": list(line.by_step)} for line in self.samples],
        }

    @classmethod
    def from_dict(cls, raw: Any, source: str) -> "RunRecord":
        """A record read back (:meth:`as_dict`'s data); anything malformed is one InputError naming ``source``."""
        if not isinstance(raw, dict):
            raise InputError(f"{source} is not a run record (a JSON object)")
        try:
            return cls(
                config_read_back(raw["config"], f"{source} (its config)"), str(raw["result_key"]),
                Path(raw["results_dir"]),
                tuple(SampleLine(**{**line, "by_step": tuple(line["by_step"])}) for line in raw.get("samples", [])),
                dict(raw.get("failures") or {}), dict(raw.get("counts") or {}),
                {stage: _report(r) for stage, r in (raw.get("reports") or {}).items()},
                {name: _delta(d) for name, d in (raw.get("gain") or {}).items()}, _comparison(raw.get("score_gain")),
                dict(raw.get("cost") or {}), bool(raw.get("higher_is_better", True)), dict(raw.get("provenance") or {}),
                dict(raw.get("mlflow") or {}), _number(raw.get("seconds")), str(raw.get("kind", "benchmark")),
                int(raw.get("version", RUN_RECORD_VERSION)))
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise InputError(f"{source} is not a run record this suite can read ({type(err).__name__}: {err})") from None


def _number(value: Any) -> float:
    return float("nan") if value is None else float(value)  # NaN is written as null


def _report(raw: dict) -> RecordedReport:
    corpus = {k: Estimate(_number(v["value"]), _number(v["ci_low"]), _number(v["ci_high"])) for k, v in raw["corpus"].items()}
    return RecordedReport(corpus, dict(raw.get("unavailable") or {}), int(raw.get("n_samples", 0)))


def _delta(raw: dict) -> PairedDelta:
    return PairedDelta(**{k: (int(v) if k == "n" else _number(v)) for k, v in raw.items()})


def _comparison(raw: dict | None) -> ScoreComparison | None:
    if raw is None:
        return None
    rest = {k: v for k, v in raw.items() if k not in ("wins", "ties", "losses", "higher_is_better")}
    return ScoreComparison(int(raw["wins"]), int(raw["ties"]), int(raw["losses"]), _delta(rest),
                           bool(raw.get("higher_is_better", True)))


def build_record(config: RunConfig, result_key: str, results_dir: Path, results: list[SampleResult],
                 failures: dict[str, str], reports: dict[str, MetricReport], seconds: float, counts: dict[str, int],
                 provenance: dict[str, str], kind: str = "benchmark", worker_peak_mb: float | None = None) -> RunRecord:
    """The record of a finished run (its MLflow ids come later): the paired gain and the cost computed
    here, once. ``result_key``/``results_dir``: the plan's (a baseline's: its own folder's)."""
    gain, score_gain = run_gain(results, reports, seed=config.loop.seed)
    price = config.generator.price.model_dump() if config.generator.price else None
    cost = run_cost(results, seconds, counts.get("original"), worker_peak_mb, price)
    counts = {**counts, "done": len(results), "failed": len(failures)}
    return RunRecord(config, result_key, Path(results_dir), tuple(SampleLine.of(r) for r in results), failures, counts,
                     {stage: RecordedReport.of(r) for stage, r in reports.items()}, gain, score_gain, cost,
                     direction(results), provenance, {}, seconds, kind)


def write_record(record: RunRecord, mlflow: dict[str, Any] | None = None) -> RunRecord:
    """``run.json`` in the record's results folder (with its MLflow ids, when given); the record written."""
    record = replace(record, mlflow=mlflow) if mlflow is not None else record
    write_atomic(RunFolder(record.results_dir).record, json.dumps(record.as_dict(), indent=2, default=str))
    return record


def recorded_kind(folder: str | Path) -> str | None:
    """What wrote the folder's record (benchmark, sweep, ...); None without a readable one."""
    try:
        record = read_record(folder)
    except InputError:
        return None
    return record.kind if record else None


def read_record(folder: str | Path) -> RunRecord | None:
    """A results folder's record; None where it has none (an older run); a broken one is one InputError naming it."""
    path = RunFolder(Path(folder)).record
    if not path.is_file():  # a pipe planted under the name is no record either: never opened
        return None
    if path.stat().st_size > MAX_RESULT_BYTES:
        raise InputError(f"{path} is {path.stat().st_size:,} bytes: no run record is that large")
    try:  # json, not orjson: a metric with no value is written as NaN
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, OSError, RecursionError) as err:
        raise InputError(f"cannot read run record {path}: {err}") from None
    return RunRecord.from_dict(raw, str(path))
