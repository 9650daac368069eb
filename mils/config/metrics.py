"""The caption metrics, in one place: what a config may ask for, what each reports, which way is
better, and the order every table, plot, verdict and history uses (the paper's headline first).

Evaluation computes them (evaluation/caption_metrics.py); this module only names them, so the
config can be checked without importing pycocoevalcap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable


@dataclass(frozen=True)
class Metric:
    name: str  # what a config's ``metrics`` lists
    reports: tuple[str, ...]  # the columns it yields (BLEU yields BLEU-1 .. BLEU-4)
    higher_is_better: bool = True


METRICS = {m.name: m for m in (
    Metric("BLEU", ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")),
    Metric("METEOR", ("METEOR",)),
    Metric("ROUGE_L", ("ROUGE_L",)),
    Metric("CIDEr", ("CIDEr",)),
    Metric("SPICE", ("SPICE",)),
    Metric("SPIDEr", ("SPIDEr",)),  # (CIDEr + SPICE) / 2
)}
CAPTION_METRICS = tuple(METRICS)  # the names a config is checked against when it is built
DEFAULT_METRICS = ("BLEU", "METEOR", "ROUGE_L", "CIDEr", "SPICE")  # a run's, unless its profile says otherwise
HEADLINE = ("CIDEr", "SPICE", "METEOR", "BLEU-4", "ROUGE_L", "SPIDEr")  # reported names, most telling first
VERDICTS = ("CIDEr", "METEOR", "BLEU-4", "ROUGE_L", "SPICE")  # the ones a comparison states a verdict on


def headline(names: Iterable[str]) -> list[str]:
    """``names`` in headline order (the others after them, as given)."""
    names = list(names)
    return [m for m in HEADLINE if m in names] + [n for n in names if n not in HEADLINE]


def primary_metric(names: Iterable[str]) -> str | None:
    """The one metric a plot or a one-line verdict shows: the first headline metric present."""
    ordered = headline(names)
    return ordered[0] if ordered else None


def higher_is_better(reported: str) -> bool:
    """The direction of a reported column (``BLEU-4``, ``CIDEr``); every caption metric rises with quality."""
    return next((m.higher_is_better for m in METRICS.values() if reported in m.reports), True)
