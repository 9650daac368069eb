"""Seeded bootstrap confidence intervals for corpus scores."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


def resample_indices(n: int, resamples: int, seed: int) -> np.ndarray:
    """[resamples, n] indices drawn with replacement (one seed -> the same resamples everywhere)."""
    return np.random.default_rng(seed).integers(0, n, size=(resamples, n))


def bootstrap(
    statistic: Callable[[np.ndarray], np.ndarray],
    n: int,
    value: float,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = 0.95,
) -> Estimate:
    """``statistic(indices[resamples, n]) -> [resamples]``; ``value`` is the full-data score."""
    if n == 0:
        return Estimate(float("nan"), float("nan"), float("nan"))
    stats = statistic(resample_indices(n, resamples, seed))
    tail = (1 - level) / 2 * 100
    low, high = np.nanpercentile(stats, [tail, 100 - tail])
    return Estimate(float(value), float(low), float(high))


def bootstrap_mean(values: np.ndarray, resamples: int = DEFAULT_RESAMPLES, seed: int = 0) -> Estimate:
    values = np.asarray(values, dtype=float)
    return bootstrap(lambda idx: values[idx].mean(axis=1), len(values), float(values.mean()) if len(values) else float("nan"),
                     resamples, seed)
