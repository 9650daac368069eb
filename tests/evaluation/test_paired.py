import numpy as np
import pandas as pd
import pytest

from evaluation.bootstrap import Estimate
from evaluation.caption_metrics import MetricReport, caption_metrics
from evaluation.paired import gain_metrics, gain_table, paired_metrics, paired_scores

REFS = {"1": ["a cat sits on the mat"], "2": ["a dog runs in the park"], "3": ["two boats on a river"],
        "4": ["a red car in the street"]}


def _report(values: dict[str, float]) -> MetricReport:
    table = pd.DataFrame({"CIDEr": pd.Series(values)}).rename_axis("id")
    return MetricReport({"CIDEr": Estimate(float(np.mean(list(values.values()))), 0, 0)}, table)


def test_paired_delta_by_hand():
    a = _report({"1": 0.1, "2": 0.2, "3": 0.3})
    b = _report({"1": 0.3, "2": 0.4, "3": 0.5, "9": 9.0})  # "9" is not shared: ignored
    d = paired_metrics(a, b, resamples=200)["CIDEr"]
    assert d.n == 3 and d.a == pytest.approx(0.2) and d.b == pytest.approx(0.4)
    # every sample gains exactly 0.2: every resample's delta is 0.2, the interval has no width
    assert d.delta == pytest.approx(0.2) and d.low == pytest.approx(0.2) and d.high == pytest.approx(0.2)
    assert d.p_not_better == 0.0 and "B better (+20.0 [+20.0, +20.0], n=3)" in d.verdict("CIDEr")
    tiny = paired_metrics(a, _report({"1": 0.1004, "2": 0.2004, "3": 0.3004}), resamples=50)["CIDEr"]
    assert "B better (+0.04 [+0.04, +0.04], n=3)" in tiny.verdict("CIDEr")  # not "+0.0"


def test_no_difference_is_not_called_a_gain():
    a = _report({"1": 0.1, "2": 0.5, "3": 0.3, "4": 0.4})
    b = _report({"1": 0.5, "2": 0.1, "3": 0.3, "4": 0.4})  # as many losses as gains
    d = paired_metrics(a, b, resamples=500)["CIDEr"]
    assert d.delta == pytest.approx(0.0) and d.low < 0 < d.high and 0.3 < d.p_not_better < 0.9
    assert "no clear difference" in d.verdict("CIDEr")


def test_bleu_is_paired_on_corpus_statistics():
    a = caption_metrics({"1": "a cat", "2": "a dog", "3": "boats", "4": "a car"}, REFS, metrics=["BLEU", "CIDEr"],
                        resamples=10)
    b = caption_metrics({"1": "a cat sits on the mat", "2": "a dog runs in the park", "3": "two boats on a river",
                         "4": "a red car"}, REFS, metrics=["BLEU", "CIDEr"], resamples=10)
    deltas = paired_metrics(a, b, resamples=100)
    for k in range(1, 5):  # the full-data values are the reports' own corpus BLEU
        assert deltas[f"BLEU-{k}"].a == pytest.approx(a.corpus[f"BLEU-{k}"].value)
        assert deltas[f"BLEU-{k}"].b == pytest.approx(b.corpus[f"BLEU-{k}"].value)
    assert deltas["BLEU-1"].delta > 0 and deltas["CIDEr"].delta > 0


def test_scores_win_tie_loss_and_flat_metrics():
    scores = paired_scores({"1": 0.5, "2": 0.5, "3": 0.7}, {"1": 0.6, "2": 0.5, "3": 0.6})
    assert (scores.wins, scores.ties, scores.losses) == (1, 1, 1)
    lower = paired_scores({"1": 0.5}, {"1": 0.4}, higher_is_better=False)
    assert (lower.wins, lower.losses) == (1, 0)  # a distance that went down is a win
    flat = gain_metrics({"CIDEr": paired_metrics(_report({"1": 0.1}), _report({"1": 0.2}), resamples=10)["CIDEr"]},
                        scores)
    assert {"gain/CIDEr", "gain/CIDEr_ci_low", "gain/CIDEr_share_positive", "gain/score", "gain/wins"} <= set(flat)
    assert "1 wins, 1 ties, 1 losses" in gain_table({}, scores)


def test_compare_scores_both_sides_with_one_tokenisation(monkeypatch):
    from evaluation import compare as comparing
    from mils.config.run_config import build_config

    used = []
    monkeypatch.setattr(comparing, "cached_caption_metrics", lambda predictions, refs, metrics, seed, cache, tokenize:
                        used.append(tokenize) or _report({k: 0.5 for k in predictions}))
    predictions, refs = {"1": "a cat", "2": "a dog"}, {"1": ["a cat"], "2": ["a dog"]}
    raw = comparing.System("raw", predictions, config=build_config("offline", {"eval_tokenize": "raw"}))
    ptb = comparing.System("ptb", predictions, config=build_config("offline"))
    comparing.compare(raw, ptb, refs, ["CIDEr"], resamples=10)
    comparing.compare(ptb, comparing.System("json", predictions), refs, ["CIDEr"], resamples=10)
    assert used == ["raw", "raw", "ptb", "ptb"]  # before: raw for one side, ptb for the other


def test_the_gain_table_says_what_its_odds_are():
    """Before: P(Δ<=0)=1.000 beside "no clear difference" when every resample was a tie."""
    from evaluation.paired import PairedDelta, gain_table

    tie = PairedDelta(0.1, 0.1, 0.0, 0.0, 0.0, 1.0, 8, 0.0)
    table = gain_table({"METEOR": tie}, None, names=("step 0", "final"))
    assert "0.000 / 0.000" in table and "share of resamples with change > 0 / < 0" in table
    assert "no clear difference" in tie.verdict("METEOR")


def test_the_paired_meteor_is_the_corpus_meteor_of_each_side():
    """Issue 48, item 3: the gain's METEOR was the mean of sample scores beside the corpus METEOR of
    the tables; each side is now the Java scorer's aggregate, re-aggregated on every resample."""
    from evaluation.caption_metrics import caption_metrics
    from evaluation.paired import paired_metrics

    refs = {str(i): [f"a man riding a red bicycle down the street number {i}"] for i in range(12)}
    before = {str(i): ("a man" if i % 2 else "a man riding a bicycle down the street") for i in range(12)}
    after = {str(i): f"a man riding a red bicycle down the street number {i}" for i in range(12)}
    a = caption_metrics(before, refs, metrics=["METEOR"], resamples=50, tokenize="raw")
    b = caption_metrics(after, refs, metrics=["METEOR"], resamples=50, tokenize="raw")
    delta = paired_metrics(a, b, resamples=200)["METEOR"]
    assert delta.a == pytest.approx(a.corpus["METEOR"].value) and delta.b == pytest.approx(b.corpus["METEOR"].value)
    assert delta.a != pytest.approx(a.per_sample["METEOR"].mean())  # the mean is another number
    assert delta.low <= delta.delta <= delta.high
