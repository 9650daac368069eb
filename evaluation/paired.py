"""Paired comparisons of two systems on the same samples: did B beat A, by how much, for sure?

One bootstrap resample of the shared sample ids scores BOTH sides, so the interval is the one of
the difference (much tighter than two separate intervals when the systems agree on most
samples). Reported per metric: A, B, Δ = B - A, its 95% interval, and the share of resamples in
which B did not beat A (Δ <= 0 for higher-is-better metrics): a one-sided bootstrap p-value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Mapping

import numpy as np
import pandas as pd

from evaluation.bootstrap import DEFAULT_RESAMPLES, resample_chunks
from evaluation.caption_metrics import METEOR_STATS, MetricReport, _bleu_from_stats, bleu_from_table, meteor_from_stats
from mils.config import higher_is_better as metric_direction
from mils.errors import InputError
from mils.storage import direction


@dataclass(frozen=True)
class PairedDelta:
    a: float
    b: float
    delta: float
    low: float
    high: float
    p_not_better: float  # share of resamples with delta <= 0 (>= 0 where lower is better)
    n: int
    p_worse: float = float("nan")  # share of resamples with delta < 0 (> 0 where lower is better)

    def verdict(self, name: str, higher_is_better: bool | None = None, scale: float = 100.0) -> str:
        """In words: B better / worse (the 95% interval excludes 0) or no clear difference; the
        direction is the metric registry's for ``name`` unless given."""
        higher_is_better = metric_direction(name) if higher_is_better is None else higher_is_better
        better = self.low > 0 if higher_is_better else self.high < 0
        worse = self.high < 0 if higher_is_better else self.low > 0
        word = "better" if better else "worse" if worse else "no clear difference"
        d, lo, hi = (scale * x for x in (self.delta, self.low, self.high))
        f = _decimals(d, lo, hi)
        return f"{name}: B {word} ({d:+.{f}f} [{lo:+.{f}f}, {hi:+.{f}f}], n={self.n})"

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def _decimals(*values: float) -> int:
    """Decimals that show the smallest non-zero value (one at least, four at most): a gain of
    +0.04 is not printed as "better (+0.0 ...)"."""
    smallest = min((abs(v) for v in values if v and np.isfinite(v)), default=1.0)
    return int(min(4, max(1, -np.floor(np.log10(smallest))))) if smallest < 1 else 1


def _delta(stat_a, stat_b, n: int, resamples: int, seed: int, higher_is_better: bool = True) -> PairedDelta:
    """``stat_x(indices[R, n]) -> [R]`` and ``stat_x(None) -> value on all samples``."""
    if n == 0:
        raise InputError("no shared samples to compare")
    a, b = float(stat_a(None)), float(stat_b(None))
    deltas = np.concatenate([stat_b(idx) - stat_a(idx) for idx in resample_chunks(n, resamples, seed)])
    low, high = np.nanpercentile(deltas, [2.5, 97.5])
    not_better = deltas <= 0 if higher_is_better else deltas >= 0
    worse = deltas < 0 if higher_is_better else deltas > 0
    return PairedDelta(a, b, b - a, float(low), float(high), float(np.mean(not_better)), n, float(np.mean(worse)))


def _mean_stat(values: np.ndarray):
    return lambda idx: values.mean() if idx is None else values[idx].mean(axis=1)


def _meteor_stat(table: pd.DataFrame):
    """Corpus METEOR of the rows (all, or each resample's), from the per-sample sufficient statistics."""
    stats = table[METEOR_STATS].to_numpy(float)
    return lambda idx: float(meteor_from_stats(stats.sum(0))) if idx is None else meteor_from_stats(stats[idx].sum(1))


def _bleu_stat(table: pd.DataFrame, k: int):
    """Corpus BLEU-(k+1) of the rows (all, or each resample's), from the per-sample n-gram statistics."""
    testlen, reflen = table["bleu_stat/testlen"].to_numpy(float), table["bleu_stat/reflen"].to_numpy(float)
    guess = table[[f"bleu_stat/guess{j + 1}" for j in range(4)]].to_numpy(float)
    correct = table[[f"bleu_stat/correct{j + 1}" for j in range(4)]].to_numpy(float)

    def stat(idx):
        if idx is None:
            return bleu_from_table(table)[k]
        return _bleu_from_stats(testlen[idx].sum(1), reflen[idx].sum(1), guess[idx].sum(1), correct[idx].sum(1))[:, k]
    return stat


def paired_metrics(a: MetricReport, b: MetricReport, resamples: int = DEFAULT_RESAMPLES,
                   seed: int = 0) -> dict[str, PairedDelta]:
    """Paired Δ for every metric both reports have, over the samples both scored. BLEU and METEOR
    are re-aggregated from per-sample statistics on each resample (corpus BLEU, the Java scorer's
    corpus METEOR); the other metrics are means of per-sample scores (reports cached before METEOR
    kept its statistics: the mean of its sample scores)."""
    ids = sorted(set(a.per_sample.index) & set(b.per_sample.index))
    ta, tb = a.per_sample.loc[ids], b.per_sample.loc[ids]
    out = {}
    for name in (n for n in a.corpus if n in b.corpus):
        if name.startswith("BLEU-") and "bleu_stat/testlen" in ta and "bleu_stat/testlen" in tb:
            k = int(name[-1]) - 1
            out[name] = _delta(_bleu_stat(ta, k), _bleu_stat(tb, k), len(ids), resamples, seed, metric_direction(name))
        elif name == "METEOR" and METEOR_STATS[0] in ta and METEOR_STATS[0] in tb:
            out[name] = _delta(_meteor_stat(ta), _meteor_stat(tb), len(ids), resamples, seed, metric_direction(name))
        elif name in ta and name in tb:
            out[name] = _delta(_mean_stat(ta[name].to_numpy(float)), _mean_stat(tb[name].to_numpy(float)),
                               len(ids), resamples, seed, metric_direction(name))
    return out


@dataclass(frozen=True)
class ScoreComparison:
    """The scorer's own score, B vs A per sample: win/tie/loss and the paired mean Δ."""

    wins: int
    ties: int
    losses: int
    mean: PairedDelta
    higher_is_better: bool = True  # the scorer's direction: a win is a higher score, or a lower one

    def as_dict(self) -> dict:
        return {"wins": self.wins, "ties": self.ties, "losses": self.losses, **self.mean.as_dict(),
                "higher_is_better": self.higher_is_better}


def paired_scores(a: Mapping[str, float], b: Mapping[str, float], higher_is_better: bool = True,
                  resamples: int = DEFAULT_RESAMPLES, seed: int = 0, tie: float = 1e-9) -> ScoreComparison:
    ids = sorted(set(a) & set(b))
    va, vb = np.array([a[i] for i in ids], float), np.array([b[i] for i in ids], float)
    diff = (vb - va) * (1 if higher_is_better else -1)
    mean = _delta(_mean_stat(va), _mean_stat(vb), len(ids), resamples, seed, higher_is_better)
    return ScoreComparison(int((diff > tie).sum()), int((np.abs(diff) <= tie).sum()), int((diff < -tie).sum()), mean,
                           higher_is_better)


def gain_metrics(metrics: Mapping[str, PairedDelta], scores: ScoreComparison | None, prefix: str = "gain") -> dict:
    """Flat MLflow metrics: ``gain/CIDEr``, ``gain/CIDEr_ci_low``, ..., ``gain/CIDEr_share_positive`` (the
    share of resamples with change > 0: the name the console and the report use), ``gain/score``, ``gain/wins``."""
    out = {}
    for name, d in metrics.items():
        out.update({f"{prefix}/{name}": d.delta, f"{prefix}/{name}_ci_low": d.low, f"{prefix}/{name}_ci_high": d.high,
                    f"{prefix}/{name}_share_positive": 1 - d.p_not_better})
    if scores is not None:
        out.update({f"{prefix}/score": scores.mean.delta, f"{prefix}/score_ci_low": scores.mean.low,
                    f"{prefix}/score_ci_high": scores.mean.high,
                    f"{prefix}/score_share_positive": 1 - scores.mean.p_not_better, f"{prefix}/wins": float(scores.wins),
                    f"{prefix}/ties": float(scores.ties), f"{prefix}/losses": float(scores.losses)})
    return out


def gain_table(metrics: Mapping[str, PairedDelta], scores: ScoreComparison | None, names=("A", "B")) -> str:
    """Terminal table: metric, A, B, Δ [95% CI], how often B is better / worse over the bootstrap
    resamples; metrics x100, scorer scores as they are. A footnote says what is a per-sample mean."""
    from evaluation.tables import text_table

    def odds(d: PairedDelta) -> str:
        return f"{1 - d.p_not_better:.3f} / {d.p_worse:.3f}"

    rows = [(name, f"{100 * d.a:.1f}", f"{100 * d.b:.1f}", f"{100 * d.delta:+.1f} [{100 * d.low:+.1f}, {100 * d.high:+.1f}]",
             odds(d)) for name, d in metrics.items()]
    if scores is not None:
        m = scores.mean
        rows.append(("scorer score" + ("" if scores.higher_is_better else " (lower is better)"), f"{m.a:.3f}", f"{m.b:.3f}", f"{m.delta:+.3f} [{m.low:+.3f}, {m.high:+.3f}]",
                     odds(m)))
    table = text_table(("metric", names[0], names[1], "Δ (B - A) [95% CI]", "share of resamples with change > 0 / < 0"),
                       rows)
    table += ("\nshare of resamples with change > 0 / < 0: of the paired bootstrap resamples, those in which B beats A "
              "/ A beats B (both near 0: the two are equal on nearly every resample)")

    if scores is not None:
        table += f"\nper sample on the scorer: {scores.wins} wins, {scores.ties} ties, {scores.losses} losses (B vs A)"
    return table


def run_gain(results, reports: Mapping[str, MetricReport], seed: int = 0,
             resamples: int = DEFAULT_RESAMPLES) -> tuple[dict[str, PairedDelta], ScoreComparison | None]:
    """MILS's gain over its own starting point: final vs step 0 (the initial-bank retrieval
    baseline) on the same samples, for every metric and for the scorer's score (a win is a better
    score in the scorer's recorded direction: lower for a distance)."""
    if not results:
        return {}, None
    metrics = (paired_metrics(reports["step0"], reports["final"], resamples, seed)
               if "step0" in reports and "final" in reports else {})
    scores = paired_scores({r.sample_id: r.initial.best_score for r in results},
                           {r.sample_id: r.score for r in results}, direction(results), resamples, seed)
    return metrics, scores
