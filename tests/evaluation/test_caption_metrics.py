import math

import numpy as np
import pytest

from evaluation.caption_metrics import (
    caption_metrics,
    format_table,
    spice_missing_reason,
)

REFS = {
    "1": ["A black cat sits on a red sofa.", "a cat resting on a couch", "A cat on the sofa in a living room."],
    "2": ["Two dogs play with a ball on the grass.", "dogs running in a park", "Two puppies chase a ball."],
    "3": ["A cup of coffee on a wooden table.", "coffee in a white mug", "A mug of hot coffee next to a spoon."],
    "4": ["A rocket stands on the launch pad.", "a space shuttle before launch", "A rocket ready for take off."],
}
PREDS = {"1": "a cat sitting on a sofa", "2": "two dogs playing in a park", "3": "a cup of coffee on a table",
         "4": "a rocket on the launch pad"}


def test_hand_checked_bleu():
    report = caption_metrics({"x": "the cat sat on the mat"}, {"x": ["the cat is on the mat"]},
                             metrics=["BLEU"], resamples=50)
    # unigrams 5/6 correct, bigrams 3/5, equal lengths (no brevity penalty)
    assert math.isclose(report.corpus["BLEU-1"].value, 5 / 6, rel_tol=1e-6)
    assert math.isclose(report.corpus["BLEU-2"].value, math.sqrt(5 / 6 * 3 / 5), rel_tol=1e-6)
    # trigrams: "the cat sat","cat sat on","sat on the","on the mat" -> only "on the mat" matches
    assert math.isclose(report.corpus["BLEU-3"].value, (5 / 6 * 3 / 5 * 1 / 4) ** (1 / 3), rel_tol=1e-6)


def test_hand_checked_cider_for_identical_corpus():
    # a prediction equal to its only reference, and unrelated other samples: CIDEr-D of the
    # match is 10 (its maximum: cosine 1 on each n-gram order, x10, no length penalty)
    refs = {"a": ["a red bus on a street"], "b": ["two birds in the sky"], "c": ["a plate of pasta"]}
    preds = {"a": "a red bus on a street", "b": "a plate of rice", "c": "two birds"}
    report = caption_metrics(preds, refs, metrics=["CIDEr"], resamples=50)
    assert math.isclose(report.per_sample.loc["a", "CIDEr"], 10.0, rel_tol=1e-6)


def test_matches_pycocoevalcap_cocoevalcap_exactly(monkeypatch):
    """Our wrapper gives what pycocoevalcap's own COCOEvalCap gives on the same data."""
    import pycocoevalcap.eval as coco_eval
    from pycocotools.coco import COCO

    class NoSpice:  # COCOEvalCap always runs SPICE, which downloads CoreNLP: stub it out
        def compute_score(self, gts, res):
            return 0.0, [0.0] * len(gts)

        def method(self):
            return "SPICE"

    monkeypatch.setattr(coco_eval, "Spice", NoSpice)
    coco = COCO()
    coco.dataset = {
        "images": [{"id": int(i)} for i in REFS],
        "annotations": [{"image_id": int(i), "id": n, "caption": c}
                        for n, (i, c) in enumerate((i, c) for i in REFS for c in REFS[i])],
    }
    coco.createIndex()
    results = coco.loadRes([{"image_id": int(i), "caption": c} for i, c in PREDS.items()])
    official = coco_eval.COCOEvalCap(coco, results)
    official.evaluate()

    ours = caption_metrics(PREDS, REFS, metrics=["BLEU", "METEOR", "ROUGE_L", "CIDEr"], resamples=100)
    for name in ["BLEU-1", "BLEU-2", "BLEU-3", "BLEU-4", "METEOR", "CIDEr"]:
        key = name.replace("BLEU-", "Bleu_")
        assert ours.corpus[name].value == pytest.approx(official.eval[key], abs=1e-9), name
    assert ours.corpus["ROUGE_L"].value == pytest.approx(official.eval["ROUGE_L"], abs=1e-9)


def test_tokenisation_makes_case_and_punctuation_irrelevant():
    a = caption_metrics({"1": "A dog."}, {"1": ["a dog runs", "A DOG!"]}, metrics=["BLEU", "ROUGE_L"], resamples=20)
    b = caption_metrics({"1": "a dog"}, {"1": ["a dog runs", "a dog"]}, metrics=["BLEU", "ROUGE_L"], resamples=20)
    for name in a.corpus:
        assert a.corpus[name].value == b.corpus[name].value


def test_confidence_intervals_are_seeded_and_bracket_the_value():
    a = caption_metrics(PREDS, REFS, metrics=["BLEU", "CIDEr"], resamples=200, seed=3)
    b = caption_metrics(PREDS, REFS, metrics=["BLEU", "CIDEr"], resamples=200, seed=3)
    for name, est in a.corpus.items():
        assert est == b.corpus[name]
        assert est.low <= est.high
    cider = a.corpus["CIDEr"]
    assert cider.low <= a.per_sample["CIDEr"].mean() <= cider.high
    assert list(a.per_sample.columns[:2]) == ["prediction", "BLEU-1"]
    assert np.isclose(a.per_sample["CIDEr"].mean(), cider.value)


def test_spice_is_reported_unavailable_with_instructions_when_jars_are_missing():
    reason = spice_missing_reason()
    if reason is None:
        pytest.skip("SPICE jars are installed here; the unavailable path cannot be exercised")
    report = caption_metrics(PREDS, REFS, metrics=["CIDEr", "SPICE", "SPIDEr"], resamples=20)
    assert "stanford-corenlp-3.6.0" in report.unavailable["SPICE"]
    assert "SPICE" in report.unavailable["SPIDEr"]
    assert "CIDEr" in report.corpus  # the rest is still computed
    assert "n/a" in format_table(report)


@pytest.mark.parametrize("preds, refs, message", [
    ({"1": "x"}, {}, "no references"),
    ({}, {"1": ["x"]}, "no prediction"),
    ({"1": "x"}, {"1": ["", "  "]}, "no non-empty reference"),
])
def test_bad_inputs_name_the_ids(preds, refs, message):
    with pytest.raises(ValueError, match=message):
        caption_metrics(preds, refs, metrics=["BLEU"])


def test_unknown_metric_lists_the_known_ones():
    with pytest.raises(ValueError, match="CIDEr"):
        caption_metrics(PREDS, REFS, metrics=["CIDER-X"])


def test_the_metric_registry_names_exactly_what_evaluation_reports():
    """mils/config/metrics.py is the one list: each metric's reported columns are what caption_metrics
    computes for it, every headline and verdict name is reported by some metric."""
    from mils.config.metrics import HEADLINE, METRICS, VERDICTS, headline, primary_metric

    preds, refs = {"a": "a cat on a mat", "b": "a dog"}, {"a": ["a cat sits on the mat"], "b": ["a brown dog"]}
    for metric in ("BLEU", "METEOR", "ROUGE_L", "CIDEr"):
        assert tuple(caption_metrics(preds, refs, metrics=[metric], resamples=10).corpus) == METRICS[metric].reports
    reported = {column for m in METRICS.values() for column in m.reports}
    assert set(HEADLINE) <= reported and set(VERDICTS) <= reported
    assert headline(["BLEU-1", "METEOR", "CIDEr"]) == ["CIDEr", "METEOR", "BLEU-1"]
    assert primary_metric(["BLEU-4", "ROUGE_L"]) == "BLEU-4" and primary_metric([]) is None


def test_the_meteor_interval_is_of_the_corpus_meteor_printed_beside_it():
    """Issue 48, item 3: the corpus METEOR (the Java scorer's aggregate, what the official script
    reports) was printed with an interval of the per-sample mean. Long captions matched, short ones
    missed: the aggregate (0.84) lies far outside the mean's interval (0.36-0.68)."""
    from evaluation.bootstrap import bootstrap_mean
    from evaluation.caption_metrics import _meteor_stats, meteor_from_stats

    long = "a man in a blue shirt is riding a red bicycle down a busy city street next to a bus"
    preds = {**{f"l{i}": long for i in range(20)}, **{f"s{i}": "zebra" for i in range(20)}}
    refs = {**{f"l{i}": [long] for i in range(20)}, **{f"s{i}": ["a cat on a sofa"] for i in range(20)}}
    report = caption_metrics(preds, refs, metrics=["METEOR"], resamples=300, tokenize="raw")
    meteor = report.corpus["METEOR"]
    mean_interval = bootstrap_mean(report.per_sample["METEOR"].to_numpy(), 300, 0)
    assert not mean_interval.low <= meteor.value <= mean_interval.high  # the old pairing excluded its own value
    assert meteor.low <= meteor.value <= meteor.high and meteor.high - meteor.low > 0.05

    # the re-aggregation is the Java scorer's own, on real statistics lines
    from pycocoevalcap.meteor.meteor import Meteor

    scorer = Meteor()
    lines = [scorer._stat(p, refs[k]) for k, p in sorted(preds.items())][::3]
    with scorer.lock:
        scorer.meteor_p.stdin.write(("EVAL ||| " + " ||| ".join(lines) + "\n").encode())
        scorer.meteor_p.stdin.flush()
        singles = [float(scorer.meteor_p.stdout.readline()) for _ in lines]
        aggregate = float(scorer.meteor_p.stdout.readline())
    stats = _meteor_stats(lines)
    assert meteor_from_stats(stats.sum(0)) == pytest.approx(aggregate, abs=1e-12)
    assert meteor_from_stats(stats) == pytest.approx(singles, abs=1e-12)


def test_the_ptb_tokenizer_prints_nothing_on_the_console(capfd):
    """Issue 48, item 5: every metric call printed 'PTBTokenizer tokenized N tokens at ...'."""
    report = caption_metrics(PREDS, REFS, metrics=["BLEU", "CIDEr"], resamples=10)
    assert report.corpus["CIDEr"].value > 0
    assert "PTBTokenizer" not in capfd.readouterr().err
