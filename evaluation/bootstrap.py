"""Seeded bootstrap confidence intervals for corpus scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterator

import numpy as np

DEFAULT_RESAMPLES = 1000


@dataclass(frozen=True)
class Estimate:
    """A corpus score with its bootstrap 95% interval (percentile method)."""

    value: float
    low: float
    high: float

    def as_dict(self) -> dict[str, float]:
        return {"value": self.value, "ci_low": self.low, "ci_high": self.high}


CHUNK_ELEMENTS = 2_000_000  # resample indices held at once: memory stays flat in the number of samples


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n] indices drawn with replacement (one seed -> the same resamples everywhere)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def resample_chunks(n: int, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """:func:`resample_indices` a block of rows at a time (the same draws, concatenated)."""
    rng = np.random.default_rng(seed)
    rows = max(1, CHUNK_ELEMENTS // max(n, 1))
    for start in range(0, resamples, rows):
        yield rng.integers(0, n, size=(min(rows, resamples - start), n))


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    value: float,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """``statistic(indices[resamples, n]) -> [resamples]``; ``value`` is the full-data score."""
    return bootstrap_columns(lambda idx: statistic(idx)[:, None], n, {"value": value}, resamples, seed, level)["value"]


def bootstrap_columns(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    values: dict[str, float],
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> dict[str, Estimate]:
    """:func:`bootstrap` of a statistic with one column per name (``statistic(idx) -> [resamples,
    len(values)]``, computed once per resample); ``values``: name -> full-data score."""
    if n == 0:
        return {name: Estimate(float("nan"), float("nan"), float("nan")) for name in values}
    stats = np.concatenate([statistic(idx) for idx in resample_chunks(n, resamples, seed)])
    tail = (1 - level) / 2 * 100
    bounds = np.nanpercentile(stats, [tail, 100 - tail], axis=0)
    return {name: Estimate(float(value), float(bounds[0, i]), float(bounds[1, i]))
            for i, (name, value) in enumerate(values.items())}


def bootstrap_mean(values: np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Estimate:
    values = np.asarray(values, dtype=float)
    return bootstrap(lambda idx: values[idx].mean(axis=1), len(values), float(values.mean()) if len(values) else float("nan"),
                     resamples, seed)
