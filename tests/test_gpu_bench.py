"""`benchmarks/gpu_bench.py --tiny`: the GPU benchmark's every phase on the CPU (so it cannot rot
unseen before a GPU is lent). It checks the patterns do what they claim, not their speed."""

import json

import pytest


@pytest.mark.slow
def test_the_gpu_benchmark_runs_every_phase_tiny_and_measures_what_it_says(tmp_path):
    from benchmarks import gpu_bench as bench

    assert bench.main(["--tiny", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu_bench.json").read_text())
    s = result["settings"]
    phases = [r["phase"] for r in result["rows"]]
    assert phases == ["setup", *["decode"] * len(s["batches"]), "loop", "loop"]
    for row, batch in zip(result["rows"][1:], s["batches"]):
        assert row["batch"] == batch and row["ours_tokens_per_s"] > 0 and row["generate_tokens_per_s"] > 0
    official, ours = result["rows"][-2:]
    n, steps, keep, requested, bank = (official["samples"], s["steps"], s["keep"], s["requested"], s["bank"])
    # the official pattern encodes the bank for every sample and re-scores the whole pool each step ...
    assert official["texts_encoded"] == n * bank + steps * n * (keep + requested)
    # ... ours encodes the bank once and scores only the new candidates (those the parser and dedup keep)
    assert bank < ours["texts_encoded"] <= bank + steps * ours["samples"] * requested
    # every reply is forced to its length (random weights never write the end token)
    assert official["generated_tokens"] == n * steps * s["new_tokens"]
    assert ours["generated_tokens"] == ours["samples"] * steps * s["new_tokens"]
    # ours ran at the decode phase's best batch
    best = max(result["rows"][1:-2], key=lambda r: r["ours_tokens_per_s"])["batch"]
    assert ours["samples"] == best and f"batch {best}" in ours["pattern"]
    assert "| batch |" in bench.table(result)


def test_a_phase_chosen_alone_runs_alone(tmp_path):
    from benchmarks import gpu_bench as bench

    assert bench.main(["--tiny", "--phases", "ours", "--samples", "3", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "gpu_bench.json").read_text())["rows"]
    assert [r["phase"] for r in rows] == ["setup", "loop"] and rows[1]["samples"] == 3


def test_the_projection_is_once_per_run_plus_once_per_sample_plus_ten_steps():
    from benchmarks.gpu_bench import loop_row, projected_hours

    row = loop_row("x", samples=4, steps=2, once_per_sample=3.93, llm=8.0, scoring=0.8, other=0.0, tokens=6000,
                   texts=0, run_once=36.0)
    assert row["step_s_per_sample"] == pytest.approx(1.1)  # (8.0 + 0.8) / (4 samples x 2 steps)
    # 36 s once + 5,000 x (3.93 + 10 x 1.1) s
    assert projected_hours(row) == pytest.approx((36.0 + 5000 * (3.93 + 11.0)) / 3600)
    assert row["projected_hours_coco_test"] == projected_hours(row)
    assert row["scoring_share"] == pytest.approx(0.8 / 8.8)
