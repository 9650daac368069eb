"""The caption metrics, in one place: what a config may ask for, what each reports, which way is
better, and the order every table, plot, verdict and history uses (the paper's headline first).

Evaluation computes them (evaluation/caption_metrics.py); this module only names them, so the
config can be checked without importing pycocoevalcap."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Sequence


@dataclass(frozen=True)
class Metric:
    """A metric: its name, its columns and its direction; a task's own metric (a plugin's) also brings
    ``score(prediction, references) -> float``, one sample's value: the corpus value is their mean,
    with the same bootstrap interval as every mean metric."""

    name: str  # what a config's ``metrics`` lists
    reports: tuple[str, ...] = ()  # the columns it yields (BLEU yields BLEU-1 .. BLEU-4; default: its name)
    higher_is_better: bool = True
    score: Callable[[str, Sequence[str]], float] | None = None

    def __post_init__(self) -> None:
        if not self.reports:
            object.__setattr__(self, "reports", (self.name,))


def register_metric(metric: Metric) -> Metric:
    """Add a task's metric (a plugin's): configs may then list it and every table reports it."""
    from mils.errors import InputError

    if metric.score is None:
        raise InputError(f"metric {metric.name!r} needs score(prediction, references) -> float")
    if METRICS.get(metric.name, metric) != metric:
        raise InputError(f"metric {metric.name!r} is already registered")
    METRICS[metric.name] = metric
    return metric


def metric_names() -> tuple[str, ...]:
    """The names a config's ``metrics`` may list: the caption metrics, then those tasks registered."""
    return tuple(METRICS)


METRICS = {m.name: m for m in (
    Metric("BLEU", ("BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4")),
    Metric("METEOR", ("METEOR",)),
    Metric("ROUGE_L", ("ROUGE_L",)),
    Metric("CIDEr", ("CIDEr",)),
    Metric("SPICE", ("SPICE",)),
    Metric("SPIDEr", ("SPIDEr",)),  # (CIDEr + SPICE) / 2
)}
CAPTION_METRICS = tuple(METRICS)  # the caption metrics (a task's own: metric_names())
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
