"""Ingest judgements (an AMT batch results CSV or the local page's export): unblind, screen
catch trials, take the majority per pair, report win/tie/lose rates with bootstrap 95% CIs.

Problems are reported with their row numbers (header = row 1) and the rest is still ingested:
malformed rows, unknown pair ids, duplicate assignments (the first is kept), missing answers.
"""

from __future__ import annotations

import csv
import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evaluation.bootstrap import resample_indices
from human_eval.protocol import CHOICES
from mils.errors import InputError, MissingInputError

PAIR_COLUMNS = ("Input.pair_id", "pair_id")
CHOICE_COLUMNS = ("Answer.choice", "choice")
WORKER_COLUMNS = ("WorkerId", "worker_id")


@dataclass
class Ingested:
    rates: dict[str, dict[str, Any]]  # axis -> {win, tie, lose: {value, ci_low, ci_high}, pairs}
    by_category: dict[str, dict[str, dict[str, Any]]]  # axis -> category -> rates
    problems: list[str] = field(default_factory=list)
    dropped_workers: dict[str, str] = field(default_factory=dict)
    votes: int = 0
    names: dict[str, str] = field(default_factory=dict)
    identical: int = 0  # pairs with the same output on both sides, counted as ties unjudged

    def as_dict(self) -> dict[str, Any]:
        return {"names": self.names, "rates": self.rates, "by_category": self.by_category, "votes": self.votes,
                "identical_pairs_counted_as_ties": self.identical,
                "dropped_workers": self.dropped_workers, "problems": self.problems}


def _pick(row: dict[str, str], names: tuple[str, ...]) -> str | None:
    for name in names:
        if name in row:
            return (row[name] or "").strip()
    return None


def _rates(outcomes: list[str], resamples: int, seed: int) -> dict[str, Any]:
    """outcomes: 'win' | 'tie' | 'lose' per pair, from B's (the second system's) side."""
    values = np.array(outcomes)
    out: dict[str, Any] = {"pairs": len(outcomes)}
    idx = resample_indices(len(values), resamples, seed) if len(values) else None
    for label in ("win", "tie", "lose"):
        hits = (values == label).astype(float)
        value = float(hits.mean()) if len(values) else float("nan")
        if idx is not None:
            low, high = np.percentile(hits[idx].mean(axis=1), [2.5, 97.5])
        else:
            low = high = float("nan")
        out[label] = {"value": value, "ci_low": float(low), "ci_high": float(high)}
    return out


def read_votes(results_csv: Path, pairs: dict[str, dict[str, Any]]) -> tuple[list[tuple[str, str, str]], list[str]]:
    """(worker, pair id, choice) of every usable row, and a problem line (with its row number) for
    every other row."""
    problems: list[str] = []
    votes: list[tuple[str, str, str]] = []  # (worker, pair_id, choice)
    seen: set[tuple[str, str]] = set()
    csv.field_size_limit(MAX_CELL)
    with results_csv.open(newline="", encoding=_encoding(results_csv)) as f:
        reader = csv.DictReader(f)
        header = reader.fieldnames or []
        if not any(c in header for c in PAIR_COLUMNS) or not any(c in header for c in CHOICE_COLUMNS):
            raise InputError(f"{results_csv} has no pair id / choice columns (expected Input.pair_id and "
                             f"Answer.choice, or pair_id and choice); has {header}")
        for number, row in enumerate(reader, start=2):
            if None in row or any(v is None for v in row.values()):
                problems.append(f"row {number}: malformed (wrong number of cells)")
                continue
            pid, choice, worker = (_printable(_pick(row, c)) for c in (PAIR_COLUMNS, CHOICE_COLUMNS, WORKER_COLUMNS))
            if not pid:
                problems.append(f"row {number}: no pair id")
            elif pid not in pairs:
                problems.append(f"row {number}: unknown pair id {pid!r}")
            elif not worker:
                problems.append(f"row {number}: no worker id")
            elif choice not in CHOICES:
                problems.append(f"row {number}: missing or invalid answer {choice!r} for pair {pid}")
            elif (worker, pid) in seen:
                problems.append(f"row {number}: duplicate assignment of pair {pid} by worker {worker} (first kept)")
            else:
                seen.add((worker, pid))
                votes.append((worker, pid, choice))
    return votes, problems


MAX_CELL = 16 * 1024 * 1024  # csv's default limit is 128 KB: a long free-text answer would stop the file


def _encoding(path: Path) -> str:
    """UTF-8 (with or without a BOM); a file that is not (Excel's cp1252 export) is read as cp1252."""
    try:
        path.read_bytes().decode("utf-8-sig")
        return "utf-8-sig"
    except UnicodeDecodeError:
        return "cp1252"


def _printable(value: str | None, limit: int = 200) -> str | None:
    """A cell as it may be printed: control characters (terminal escape codes) shown as \\xNN, capped."""
    if value is None:
        return None
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _manifest(key_path: Path) -> dict[str, Any]:
    try:
        manifest = json.loads(key_path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as err:
        raise InputError(f"unblinding key {key_path} is not valid JSON: {err}") from err
    pairs = manifest.get("pairs") if isinstance(manifest, dict) else None
    if not isinstance(pairs, dict) or not all(
            isinstance(p, dict) and isinstance(p.get("catch"), bool) and isinstance(p.get("axis"), str)
            and (p.get("good") in CHOICES if p["catch"] else p.get("left") in ("A", "B")) for p in pairs.values()):
        raise InputError(f"unblinding key {key_path} has no valid 'pairs' (pair id -> axis, left A|B, or a catch "
                         "trial's good side): is it the key.json that `mils human-eval export` wrote?")
    return manifest


def ingest(results_csv: str | Path, key_path: str | Path, resamples: int = 1000, seed: int = 0) -> Ingested:
    results_csv, key_path = Path(results_csv), Path(key_path)
    if not key_path.is_file():
        raise MissingInputError(f"unblinding key not found: {key_path}")
    if not results_csv.is_file():
        raise MissingInputError(f"results file not found: {results_csv}")
    manifest = _manifest(key_path)
    pairs: dict[str, dict[str, Any]] = manifest["pairs"]
    votes, problems = read_votes(results_csv, pairs)
    dropped = {}
    for worker, pid, choice in votes:
        info = pairs[pid]
        if info["catch"] and choice != info["good"] and worker not in dropped:
            dropped[worker] = f"chose the broken side of catch trial {pid}"
    tallies: dict[str, Counter] = defaultdict(Counter)
    kept_votes = 0
    for worker, pid, choice in votes:
        info = pairs[pid]
        if worker in dropped or info["catch"]:
            continue
        system = info["left"] if choice == "left" else ("B" if info["left"] == "A" else "A")
        tallies[pid][system] += 1
        kept_votes += 1
    outcomes: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for pid, tally in tallies.items():
        outcome = "win" if tally["B"] > tally["A"] else "lose" if tally["A"] > tally["B"] else "tie"
        outcomes[pairs[pid]["axis"]].append((outcome, pairs[pid].get("category")))
    identical = manifest.get("identical", {})
    for axis in manifest.get("axes", []):  # identical outputs were not shown: they are ties
        outcomes[axis].extend(("tie", category) for category in identical.values())
    rates = {axis: _rates([o for o, _ in items], resamples, seed) for axis, items in outcomes.items()}
    by_category: dict[str, dict[str, dict[str, Any]]] = {}
    for axis, items in outcomes.items():
        categories = sorted({c for _, c in items if c})
        if categories:
            by_category[axis] = {c: _rates([o for o, cat in items if cat == c], resamples, seed) for c in categories}
    return Ingested(rates, by_category, problems, dropped, kept_votes, manifest.get("names", {}), len(identical))


def report_text(result: Ingested) -> str:
    a, b = result.names.get("A", "A"), result.names.get("B", "B")
    lines = [f"{b} vs {a}: majority vote per pair, bootstrap 95% CI ({result.votes} votes used; "
             f"{result.identical} identical pairs counted as ties per axis)"]
    for axis, rates in result.rates.items():
        parts = [f"{label} {100 * rates[label]['value']:.1f}% [{100 * rates[label]['ci_low']:.1f}, "
                 f"{100 * rates[label]['ci_high']:.1f}]" for label in ("win", "tie", "lose")]
        lines.append(f"  {axis:<13} {rates['pairs']:>4} pairs  " + "  ".join(parts))
        for category, cat_rates in result.by_category.get(axis, {}).items():
            lines.append(f"    {category:<20} {cat_rates['pairs']:>3} pairs  win {100 * cat_rates['win']['value']:.1f}%"
                         f"  tie {100 * cat_rates['tie']['value']:.1f}%  lose {100 * cat_rates['lose']['value']:.1f}%")
    for worker, reason in result.dropped_workers.items():
        lines.append(f"  dropped worker {worker}: {reason}")
    for problem in result.problems:
        lines.append(f"  problem: {problem}")
    return "\n".join(lines)


def log_to_mlflow(result: Ingested, run_id: str, tracking_uri: str) -> None:
    """Win/tie/lose rates (and CI bounds) as metrics of the run that produced the pairs."""
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri)
    for axis, rates in result.rates.items():
        for label in ("win", "tie", "lose"):
            for stat, value in rates[label].items():
                suffix = "" if stat == "value" else f"_{stat}"
                client.log_metric(run_id, f"human/{axis}/{label}{suffix}", value)
    client.log_text(run_id, report_text(result), "human_eval_report.txt")
