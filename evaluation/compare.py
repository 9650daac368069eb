"""`mils compare A B`: two systems on the same samples, paired.

A system is a results folder (its final captions, or ``FOLDER:step0`` for the initial-bank
retrieval baseline), a JSON file id -> caption from any other system, or (through the CLI) an
MLflow run's results table. References come from a results folder's dataset (or ``--references``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from evaluation.caption_metrics import MetricReport, cached_caption_metrics
from evaluation.paired import PairedDelta, ScoreComparison, gain_table, paired_metrics, paired_scores
from mils.config import VERDICTS, RunConfig
from mils.errors import InputError, MissingInputError
from mils.files import read_json
from mils.storage import RunFolder

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class System:
    name: str
    predictions: dict[str, str]
    scores: dict[str, float] | None = None  # the scorer's score per sample, when the system is a MILS run
    config: RunConfig | None = None
    cache_dir: Path | None = None  # where its metric reports are cached
    higher_is_better: bool = True  # the direction its results recorded


def system_from_path(spec: str) -> System:
    """``FOLDER``, ``FOLDER:step0`` (a results folder) or ``FILE.json`` (id -> caption)."""
    from evaluation.finished_run import FinishedRun

    path, _, stage = spec.partition(":") if not Path(spec).exists() else (spec, "", "")
    folder = Path(path)
    if RunFolder(folder).samples.is_dir():
        if stage not in ("", "final", "step0"):
            raise InputError(f"{spec}: the stage after ':' is final or step0, not {stage!r}")
        run = FinishedRun.open(folder)
        results = run.results()
        pick = (lambda r: r.initial) if stage == "step0" else (lambda r: r.history[-1])
        return System(spec, {r.sample_id: pick(r).best for r in results}, {r.sample_id: pick(r).best_score for r in results},
                    run.config, RunFolder(folder).metrics, run.higher_is_better(results))
    if not folder.is_file():
        raise MissingInputError(f"{spec}: not a results folder (no samples/), a JSON file or an MLflow run id")
    raw = read_json(folder, "captions")
    if not isinstance(raw, dict) or not all(isinstance(v, str) for v in raw.values()):
        raise InputError(f"{folder} must map sample id -> caption (a JSON object of strings)")
    return System(spec, raw)


def references_for(a: System, b: System, references: str | None = None) -> dict[str, list[str]]:
    if references:
        raw = read_json(references, "references")
        if not isinstance(raw, dict):
            raise InputError(f"{references} must map sample id -> caption or list of captions")
        return {k: [v] if isinstance(v, str) else list(v) for k, v in raw.items()}
    config = a.config or b.config
    if config is None:
        raise InputError("neither system is a MILS run with a dataset: give --references refs.json (id -> captions)")
    from evaluation.datasets import folder_dataset

    return folder_dataset(config.dataset, a.name if a.config else b.name,
                          "give --references refs.json (id -> captions), or --plugins MODULE for a plugin's dataset"
                          ).references()


@dataclass(frozen=True)
class Comparison:
    a: System
    b: System
    n: int
    metrics: dict[str, PairedDelta]
    scores: ScoreComparison | None

    def report(self) -> str:
        lines = [f"A = {self.a.name}\nB = {self.b.name}\n{self.n} shared samples; metrics x100; paired bootstrap",
                 gain_table(self.metrics, self.scores)]
        if self.scores is None:
            lines.append("(scorer scores: only when both systems are MILS runs with the same scorer)")
        lines.append("\nverdict: " + "; ".join(d.verdict(name) for name, d in self.metrics.items()
                                               if name in VERDICTS))
        return "\n".join(lines)


def compare(a: System, b: System, references: dict[str, list[str]], metrics, seed: int = 0,
            resamples: int = 1000) -> Comparison:
    shared = sorted(set(a.predictions) & set(b.predictions) & set(references))
    if not shared:
        raise InputError(f"{a.name} and {b.name} share no sample id that has references")

    # one tokenisation for both systems (A's when the configs disagree), or the deltas compare two metrics
    configs = [system.config for system in (a, b) if system.config]
    tokenize = configs[0].eval_tokenize if configs else "ptb"
    if len({c.eval_tokenize for c in configs}) > 1:
        log.warning("%s evaluates %s strings and %s %s ones: both are scored %s here", a.name, a.config.eval_tokenize,
                    b.name, b.config.eval_tokenize, tokenize)

    def report(system: System) -> MetricReport:
        return cached_caption_metrics({i: system.predictions[i] for i in shared}, {i: references[i] for i in shared},
                                      list(metrics), seed, system.cache_dir, tokenize)

    same_scorer = a.config and b.config and a.config.scorer == b.config.scorer
    if same_scorer and a.higher_is_better != b.higher_is_better:
        raise InputError(f"{a.name} and {b.name} name the same scorer but recorded opposite score directions")
    scores = (paired_scores(a.scores, b.scores, a.higher_is_better, resamples=resamples, seed=seed)
              if a.scores and b.scores and same_scorer else None)
    return Comparison(a, b, len(shared), paired_metrics(report(a), report(b), resamples, seed), scores)
