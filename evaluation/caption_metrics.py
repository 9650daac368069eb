"""Captioning metrics through pycocoevalcap, with one PTB tokenisation for every modality.

The official MILS code tokenises COCO with the PTB tokenizer but scores audio and video captions
on raw strings; by default every prediction and reference here goes through the same PTB
tokenizer, so ``A dog.`` and ``a dog`` score the same whatever the modality. ``tokenize="raw"``
(the paper profile's setting for audio and video) scores the strings as they are, comparable
with the paper's audio and video tables.

Corpus values are pycocoevalcap's own (BLEU from summed n-gram statistics; METEOR from the
Java scorer's aggregate; ROUGE-L, CIDEr-D and SPICE as means over samples). 95% intervals come
from a seeded bootstrap over samples and are always of the number they stand beside: BLEU and
METEOR re-aggregate the resampled statistics (METEOR as its Java scorer aggregates them), the others
resample per-sample scores.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from evaluation.bootstrap import DEFAULT_RESAMPLES, Estimate, bootstrap, bootstrap_columns, bootstrap_mean
from mils.config import CAPTION_METRICS, METRICS, metric_names
from mils.errors import ComponentError, InputError, StorageError
from mils.files import content_hash, own_folder, write_atomic, written

log = logging.getLogger(__name__)

ALL_METRICS = CAPTION_METRICS  # the caption metric families (BLEU expands to BLEU-1..4); a task's own: METRICS


@dataclass
class MetricReport:
    """Corpus estimates, a per-sample table, and metrics that could not run (with the reason)."""

    corpus: dict[str, Estimate]
    per_sample: pd.DataFrame
    unavailable: dict[str, str] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"corpus": {k: v.as_dict() for k, v in self.corpus.items()}, "unavailable": self.unavailable,
                "n_samples": int(len(self.per_sample))}

    def save(self, stem: Path) -> None:
        """``stem.json`` (corpus values) + ``stem.parquet`` (per sample); the JSON last, so its
        presence means both are whole."""
        try:
            written(stem.with_suffix(".parquet"), self.per_sample.to_parquet)
            write_atomic(stem.with_suffix(".json"), json.dumps(self.as_dict(), indent=2))
        except OSError as err:
            raise StorageError(f"could not write the metrics cache {stem}.json ({err.strerror or err}): free some "
                               "space and rerun; the samples already computed are kept") from None

    @classmethod
    def load(cls, stem: Path) -> "MetricReport":
        raw = json.loads(stem.with_suffix(".json").read_text())
        corpus = {k: Estimate(v["value"], v["ci_low"], v["ci_high"]) for k, v in raw["corpus"].items()}
        return cls(corpus, pd.read_parquet(stem.with_suffix(".parquet")), raw["unavailable"])


def check_inputs(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]]) -> None:
    """Fail with the offending ids: every prediction needs references, every reference list a text."""
    missing = sorted(set(predictions) - set(references))
    if missing:
        raise InputError(f"{len(missing)} predictions have no references, e.g. {missing[:5]}")
    unpredicted = sorted(set(references) - set(predictions))
    if unpredicted:
        raise InputError(f"{len(unpredicted)} reference ids have no prediction, e.g. {unpredicted[:5]}")
    bad = sorted(k for k, refs in references.items()
                 if not isinstance(refs, (list, tuple)) or not all(isinstance(r, str) for r in refs))
    if bad:
        raise InputError(f"references must map id -> a list of caption strings; not for ids {bad[:5]}")
    empty = sorted(k for k, refs in references.items() if not [r for r in refs if r and r.strip()])
    if empty:
        raise InputError(f"{len(empty)} samples have no non-empty reference, e.g. {empty[:5]}")
    not_text = sorted(k for k, p in predictions.items() if not isinstance(p, str))
    if not_text:
        raise InputError(f"predictions must be strings; not for ids {not_text[:5]}")
    if not predictions:
        raise InputError("no predictions to evaluate")


class _QuietPopen(subprocess.Popen):
    """The tokenizer's Java process: its per-call "PTBTokenizer tokenized" line dropped, the rest logged."""

    def __init__(self, *args, **kwargs) -> None:
        kwargs.setdefault("stderr", subprocess.PIPE)
        super().__init__(*args, **kwargs)

    def communicate(self, *args, **kwargs):
        out, err = super().communicate(*args, **kwargs)
        for line in (err or b"").decode(errors="replace").splitlines():
            if line.strip() and not line.startswith("PTBTokenizer tokenized"):
                log.warning("PTB tokenizer: %s", line)
        return out, err


def ptb_tokenize(texts: Mapping[str, Sequence[str]]) -> dict[str, list[str]]:
    """PTB-tokenise (lower-case, punctuation removed) with pycocoevalcap's Stanford tokenizer."""
    import types

    from pycocoevalcap.tokenizer import ptbtokenizer

    require_java("the PTB tokenizer")
    ptbtokenizer.subprocess = types.SimpleNamespace(Popen=_QuietPopen, PIPE=subprocess.PIPE)  # its only two uses
    return ptbtokenizer.PTBTokenizer().tokenize({k: [{"caption": t} for t in v] for k, v in texts.items()})


def require_java(what: str) -> None:
    if shutil.which("java") is None:
        raise ComponentError(
            f"{what} needs Java (pycocoevalcap runs Stanford/METEOR jars): apt-get install default-jre-headless"
        )


def spice_missing_reason() -> str | None:
    """Why SPICE cannot run here, or None when it can."""
    import pycocoevalcap.spice as spice

    lib = Path(spice.__file__).parent / "lib"
    jars = [lib / "stanford-corenlp-3.6.0.jar", lib / "stanford-corenlp-3.6.0-models.jar"]
    absent = [j.name for j in jars if not j.is_file()]
    if shutil.which("java") is None:
        return "SPICE needs Java: apt-get install default-jre-headless"
    if absent:
        return (
            f"SPICE needs Stanford CoreNLP 3.6.0 jars, missing from {lib}: {', '.join(absent)}. "
            "On a machine with internet run: python -c 'from pycocoevalcap.spice.get_stanford_models import "
            "get_stanford_models; get_stanford_models()', or copy both jars from "
            "stanford-corenlp-full-2015-12-09.zip into that folder."
        )
    return None


# -- BLEU ------------------------------------------------------------------------------------------

_SMALL, _TINY = 1e-9, 1e-15  # pycocoevalcap's smoothing constants


def _bleu_from_stats(testlen, reflen, guess, correct, n: int = 4) -> np.ndarray:
    """Corpus BLEU-1..n from summed statistics; any leading batch axes are kept."""
    precisions = np.log((correct + _TINY) / (guess + _SMALL))  # [..., n]
    bleus = np.exp(np.cumsum(precisions, axis=-1) / np.arange(1, n + 1))
    ratio = (testlen + _TINY) / (reflen + _SMALL)
    brevity = np.where(ratio < 1, np.exp(1 - 1 / np.minimum(ratio, 1)), 1.0)
    return bleus * brevity[..., None]


def _bleu(gts, res, ids, resamples, seed):
    from pycocoevalcap.bleu.bleu_scorer import BleuScorer

    scorer = BleuScorer(n=4)
    for i in ids:
        scorer += (res[i][0], gts[i])
    corpus, per_sample = scorer.compute_score(option="closest", verbose=0)
    testlen = np.array([c["testlen"] for c in scorer.ctest], float)
    reflen = np.array([min((abs(r - c["testlen"]), r) for r in c["reflen"])[1] for c in scorer.ctest], float)
    guess = np.array([c["guess"] for c in scorer.ctest], float)
    correct = np.array([c["correct"] for c in scorer.ctest], float)

    def stat(idx):  # idx [R, N] -> [R, 4]
        return _bleu_from_stats(testlen[idx].sum(1), reflen[idx].sum(1), guess[idx].sum(1), correct[idx].sum(1))

    # one set of resamples for the four orders (the shared seed gives the same indices to each)
    estimates = bootstrap_columns(stat, len(ids), {f"BLEU-{k + 1}": float(corpus[k]) for k in range(4)}, resamples, seed)
    columns = {f"BLEU-{k + 1}": np.array(per_sample[k]) for k in range(4)}
    # the n-gram statistics, so a paired comparison can re-aggregate corpus BLEU on resamples
    columns.update({"bleu_stat/testlen": testlen, "bleu_stat/reflen": reflen})
    columns.update({f"bleu_stat/guess{k + 1}": guess[:, k] for k in range(4)})
    columns.update({f"bleu_stat/correct{k + 1}": correct[:, k] for k in range(4)})
    return estimates, columns


def bleu_from_table(table: pd.DataFrame) -> np.ndarray | None:
    """Corpus BLEU-1..4 of the rows of a per-sample table (None if it has no BLEU statistics)."""
    if "bleu_stat/testlen" not in table:
        return None
    guess = table[[f"bleu_stat/guess{k + 1}" for k in range(4)]].to_numpy().sum(0)
    correct = table[[f"bleu_stat/correct{k + 1}" for k in range(4)]].to_numpy().sum(0)
    return _bleu_from_stats(table["bleu_stat/testlen"].sum(), table["bleu_stat/reflen"].sum(), guess, correct)


def _scored(metric, gts, res, ids):
    corpus, per_sample = metric.compute_score({i: gts[i] for i in ids}, {i: res[i] for i in ids})
    return float(corpus), np.asarray(per_sample, float)


# METEOR 1.5 as pycocoevalcap runs it (-l en -norm): alpha, beta, gamma, delta; module weights
# (exact, stem, synonym, paraphrase). Checked against the Java scorer's own aggregate on every call.
METEOR_EN = (0.85, 0.20, 0.60, 0.75, (1.0, 0.60, 0.80, 0.60))


def meteor_from_stats(stats: np.ndarray) -> np.ndarray:
    """METEOR of summed sufficient statistics (``[..., 23]``: test and reference length, function
    words, then per module test/reference content/function matches, chunks, word matches), as
    MeteorScorer.computeMetrics scores them; any leading batch axes are kept."""
    alpha, beta, gamma, delta, weights = METEOR_EN
    stages = stats[..., 4:20].reshape(*stats.shape[:-1], 4, 4)  # [..., module, (tc, rc, tf, rf)]
    w = np.asarray(weights)
    test_matches = (stages[..., 0] * w).sum(-1) * delta + (stages[..., 2] * w).sum(-1) * (1 - delta)
    ref_matches = (stages[..., 1] * w).sum(-1) * delta + (stages[..., 3] * w).sum(-1) * (1 - delta)
    test_len = delta * (stats[..., 0] - stats[..., 2]) + (1 - delta) * stats[..., 2]
    ref_len = delta * (stats[..., 1] - stats[..., 3]) + (1 - delta) * stats[..., 3]
    test_total, ref_total = stages[..., [0, 2]].sum((-1, -2)), stages[..., [1, 3]].sum((-1, -2))
    chunks = stats[..., 20]
    with np.errstate(divide="ignore", invalid="ignore"):
        precision, recall = test_matches / test_len, ref_matches / ref_len
        f_mean = 1.0 / ((1 - alpha) / precision + alpha / recall)
        perfect = _perfect(stats)
        frag = np.where(perfect, 0.0, chunks / ((test_total + ref_total) / 2))
        score = f_mean * (1 - gamma * frag**beta)
    return np.where(np.isnan(score), 0.0, np.maximum(score, 0.0))


def _meteor_stats(lines: list[str]) -> np.ndarray:
    """Per-sample statistics, with the chunks of a perfect match zeroed (MeteorStats.addStats does
    not add them), so that a sum over samples is the Java scorer's aggregate."""
    stats = np.array([[float(v) for v in line.split()] for line in lines]).reshape(len(lines), 23)
    stats[_perfect(stats), 20] = 0.0
    return stats


def _perfect(stats: np.ndarray) -> np.ndarray:
    """Whether each row of statistics is a perfect match (every word matched, one chunk)."""
    stages = stats[..., 4:20].reshape(*stats.shape[:-1], 4, 4)
    return ((stages[..., [0, 2]].sum((-1, -2)) == stats[..., 0]) & (stages[..., [1, 3]].sum((-1, -2)) == stats[..., 1])
            & (stats[..., 20] == 1))


def _meteor(gts, res, ids, resamples, seed) -> tuple[Estimate, np.ndarray, np.ndarray | None]:
    """METEOR as the official script reports it (the Java scorer's aggregate over every sample's
    statistics, not the mean of sample scores) with an interval of that same number: each resample
    sums the resampled samples' statistics and scores them as the Java scorer does."""
    from pycocoevalcap.meteor.meteor import Meteor

    meteor = Meteor()
    with meteor.lock:
        lines = [meteor._stat(res[i][0], gts[i]) for i in ids]  # what compute_score sends, sample by sample
        meteor.meteor_p.stdin.write(("EVAL ||| " + " ||| ".join(lines) + "\n").encode())
        meteor.meteor_p.stdin.flush()
        per_sample = [float(meteor.meteor_p.stdout.readline().strip()) for _ in lines]
        corpus = float(meteor.meteor_p.stdout.readline().strip())
    stats = _meteor_stats(lines)
    ours = float(meteor_from_stats(stats.sum(0)))
    if abs(ours - corpus) > 1e-9:  # another METEOR build or parameter set: no interval rather than a wrong one
        log.warning("METEOR's aggregate %.6f differs from the re-aggregation %.6f: no interval for it", corpus, ours)
        return Estimate(corpus, float("nan"), float("nan")), np.asarray(per_sample, float), None
    estimate = bootstrap(lambda idx: meteor_from_stats(stats[idx].sum(1)), len(ids), corpus, resamples, seed)
    return estimate, np.asarray(per_sample, float), stats


METEOR_STATS = [f"meteor_stat/{k}" for k in range(23)]  # per-sample columns: a paired comparison re-aggregates them


_MEAN_METRICS = {  # name -> pycocoevalcap scorer (module, class); corpus value = mean of per-sample scores
    "ROUGE_L": ("pycocoevalcap.rouge.rouge", "Rouge"),
    "CIDEr": ("pycocoevalcap.cider.cider", "Cider"),
}


def caption_metrics(
    predictions: Mapping[str, str],
    references: Mapping[str, Sequence[str]],
    metrics: Sequence[str] = ALL_METRICS,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    tokenize: str = "ptb",
) -> MetricReport:
    """Score ``predictions`` (id -> caption) against ``references`` (id -> captions).
    ``tokenize``: ``ptb`` (pycocoevalcap's PTB tokenizer, as COCO's evaluation does) or ``raw``
    (the strings as they are: how the official MILS code scores audio and video captions)."""
    unknown = sorted(set(metrics) - set(metric_names()))
    if unknown:
        raise InputError(f"unknown metrics {unknown}; known: {', '.join(metric_names())}")
    check_inputs(predictions, references)
    ids = sorted(predictions)
    if tokenize not in ("ptb", "raw"):
        raise InputError(f"tokenize must be 'ptb' or 'raw', got {tokenize!r}")
    prepare = ptb_tokenize if tokenize == "ptb" and set(metrics) & set(CAPTION_METRICS) else dict  # a task's own: raw
    gts = prepare({i: [r for r in references[i] if r.strip()] for i in ids})
    res = prepare({i: [predictions[i]] for i in ids})
    corpus: dict[str, Estimate] = {}
    columns: dict[str, np.ndarray] = {}
    unavailable: dict[str, str] = {}

    def mean_metric(name, corpus_value, values):
        est = bootstrap_mean(values, resamples, seed)
        corpus[name] = Estimate(corpus_value, est.low, est.high)
        columns[name] = values

    if "BLEU" in metrics:
        estimates, cols = _bleu(gts, res, ids, resamples, seed)
        corpus.update(estimates)
        columns.update(cols)
    if "METEOR" in metrics:
        corpus["METEOR"], columns["METEOR"], stats = _meteor(gts, res, ids, resamples, seed)
        if stats is not None:
            columns.update({name: stats[:, k] for k, name in enumerate(METEOR_STATS)})
    wanted = set(metrics) | ({"CIDEr", "SPICE"} if "SPIDEr" in metrics else set())
    for name, (module, cls) in _MEAN_METRICS.items():
        if name in wanted:
            mean_metric(name, *_scored(getattr(importlib.import_module(module), cls)(), gts, res, ids))
    if "SPICE" in wanted:
        unavailable.update(_spice_metrics(gts, res, ids, mean_metric, columns, "SPIDEr" in metrics))
    if "CIDEr" not in metrics:
        corpus.pop("CIDEr", None)
        columns.pop("CIDEr", None)
    for metric in (METRICS[name] for name in metrics if METRICS[name].score is not None):  # a task's own: raw texts
        values = np.array([float(metric.score(predictions[i], list(references[i]))) for i in ids])
        mean_metric(metric.name, float(values.mean()), values)
    table = pd.DataFrame(columns, index=pd.Index(ids, name="id"))
    table.insert(0, "prediction", [predictions[i] for i in ids])
    return MetricReport(corpus, table, unavailable)


def cached_caption_metrics(predictions: Mapping[str, str], references: Mapping[str, Sequence[str]],
                           metrics: Sequence[str], seed: int = 0, cache_dir: str | Path | None = None,
                           tokenize: str = "ptb") -> MetricReport:
    """:func:`caption_metrics`, kept in ``cache_dir`` under a hash of every input, so the same
    predictions are never scored twice (METEOR alone starts a JVM)."""
    stem = None
    if cache_dir is not None:
        inputs = [predictions, references, list(metrics), seed] + ([tokenize] if tokenize != "ptb" else [])
        payload = json.dumps(inputs, sort_keys=True)
        stem = Path(cache_dir) / f"metrics-{content_hash(payload, 16)}"
        cached = read_cached_report(stem)
        if cached is not None:
            return cached
    report = caption_metrics(predictions, references, metrics=list(metrics), seed=seed, tokenize=tokenize)
    if stem is not None:
        own_folder(stem.parent, then="the metrics were not cached: move it away")
        report.save(stem)
    return report


def read_cached_report(stem: Path) -> MetricReport | None:
    """A cache entry, when both its files are regular files (never read through a link planted in a
    folder from elsewhere) and whole; otherwise None, and the metrics are computed again."""
    import stat

    files = [stem.with_suffix(".json"), stem.with_suffix(".parquet")]
    try:
        if not all(stat.S_ISREG(os.lstat(f).st_mode) for f in files):
            log.warning("metrics cache %s is not two regular files: computed again", stem)
            return None
        return MetricReport.load(stem)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as err:  # a torn or edited entry: recompute, say so
        log.warning("metrics cache %s is unreadable (%s): computed again", stem, type(err).__name__)
        return None


_WARNED: set[str] = set()


def _spice_metrics(gts, res, ids, mean_metric, columns, spider: bool) -> dict[str, str]:
    """SPICE (and SPIDEr = (CIDEr + SPICE) / 2) when the CoreNLP jars are there; else the reasons."""
    reason = spice_missing_reason()
    if reason:
        if reason not in _WARNED:  # once per process, not once per stage and shard
            _WARNED.add(reason)
            log.warning("%s", reason)
        return {"SPICE": reason, **({"SPIDEr": "SPIDEr = (CIDEr + SPICE) / 2 needs SPICE: " + reason} if spider else {})}
    from pycocoevalcap.spice.spice import Spice

    mean_metric("SPICE", *_spice(Spice(), gts, res, ids))
    if spider:
        values = (columns["CIDEr"] + columns["SPICE"]) / 2
        mean_metric("SPIDEr", float(values.mean()), values)
    return {}


def _spice(metric, gts, res, ids):
    corpus, per_sample = metric.compute_score({i: gts[i] for i in ids}, {i: res[i] for i in ids})
    values = np.array([s["All"]["f"] for s in per_sample], float)
    return float(corpus), values


def format_table(report: MetricReport, scale: float = 100.0) -> str:
    """Human-readable: metric, value and 95% CI, x100 as papers print them."""
    lines = [f"{'metric':<8} {'value':>7}   95% CI"]
    for name, est in report.corpus.items():
        lines.append(f"{name:<8} {est.value * scale:7.1f}   [{est.low * scale:.1f}, {est.high * scale:.1f}]")
    for name, reason in report.unavailable.items():  # the first sentence: the whole reason is in the warning
        lines.append(f"{name:<8} {'n/a':>7}   {reason.split('. ')[0].split(', missing from')[0]}")
    return "\n".join(lines)


__all__ = ["ALL_METRICS", "MetricReport", "caption_metrics", "format_table", "ptb_tokenize", "spice_missing_reason"]
