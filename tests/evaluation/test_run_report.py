"""Issue 48, item 4: one static HTML report per run (evaluation/run_report.py)."""

from __future__ import annotations

import pytest

from tests.conftest import paired, write_run_record
from tests.human_eval.test_viewer import run_dir  # noqa: F401  (the fixture: photos as media, sealed)


def test_the_report_is_one_static_page_with_the_headline_the_curves_and_the_extremes(run_dir, tmp_path):  # noqa: F811
    from evaluation.run_report import SHOWN, write_run_report

    folder, results = run_dir
    write_run_record(folder, score_gain={"wins": 4, "ties": 1, "losses": 1, **paired(0.7, 0.741, 0.0, 0.122)},
                     gain={"CIDEr": paired(0.20, 0.25, -0.01, 0.11, p_not_better=0.2)},
                     cost={"generated_tokens": 3412.0, "samples": 8.0})
    best = max(results, key=lambda r: r.score - r.initial.best_score).sample_id  # shown among the most improved
    page = write_run_report(folder, references={best: ["a <b>bold</b> reference"]}).read_text()
    assert "raised the optimised score on 4 of 6 samples (mean change +0.041, 95% interval [+0.000, +0.122])" in page
    assert "CIDEr went from 20.0 to 25.0 (+5.0 [-1.0, +11.0])" in page and "426 generated tokens per sample" in page
    assert "<td>80%</td>" in page  # the share of resamples with a positive change
    assert "<td>optimised score</td><td>0.700</td><td>0.741</td><td>+0.041 [+0.000, +0.122]</td><td>90%</td>" in page
    assert page.count("data:image/png;base64,") == 1  # the curves, inline
    assert "<script" not in page and "http://" not in page and "https://" not in page  # nothing fetched
    gains = sorted(r.score - r.initial.best_score for r in results)
    assert page.count('class="sample"') == sum(g > 0 for g in gains[-SHOWN:]) + sum(g < 0 for g in gains[:SHOWN])
    assert "<li>a &lt;b&gt;bold&lt;/b&gt; reference</li>" in page  # the references, escaped
    assert "data:image/jpeg;base64," in page  # the photos of the samples shown, inline


def test_a_folder_without_a_record_still_gets_a_report(run_dir):  # noqa: F811
    from evaluation.run_report import run_report_html

    folder, _ = run_dir
    page = run_report_html(folder)
    assert "no run record" in page and "best score by step" in page


@pytest.mark.parametrize("strategy, who", [("mils", "MILS"), ("opro", "OPRO"), ("best_of_n", "best-of-N"),
                                           ("a_plugins_own", "a_plugins_own")])
def test_the_headline_names_the_strategy_that_ran(strategy, who):
    from evaluation.run_report import headline_sentence

    record = {"score_gain": {"wins": 2, "ties": 1, "losses": 0, "delta": 0.01, "low": 0.0, "high": 0.02},
              "config": {"loop": {"strategy": strategy}}}
    assert headline_sentence(record).startswith(f"{who} raised the optimised score on 2 of 3 samples")
