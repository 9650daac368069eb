"""`benchmarks/gpu_bench.py --tiny`: the GPU benchmark's code path on the CPU (so it cannot rot
unseen before a GPU is lent). It checks the two patterns do what they claim, not their speed."""

import json

import pytest

pytestmark = pytest.mark.slow


def test_the_gpu_benchmark_runs_tiny_and_measures_what_it_says(tmp_path):
    from benchmarks import gpu_bench as bench

    assert bench.main(["--tiny", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu_bench.json").read_text())
    official, ours = result["rows"][:2]
    n, steps, keep, requested, new_tokens, bank = (result["settings"][k] for k in
                                                   ("samples", "steps", "keep", "requested", "new_tokens", "bank"))
    # the official pattern encodes the bank for every sample and re-scores the whole pool each step ...
    assert official["texts_encoded"] == n * bank + steps * n * (keep + requested)
    # ... ours encodes the bank once and scores only the new candidates (those the parser and dedup keep)
    assert bank < ours["texts_encoded"] <= bank + steps * n * requested
    # every reply is forced to its length (random weights never write the end token)
    assert official["generated_tokens"] == ours["generated_tokens"] == n * steps * new_tokens
    for row in (official, ours):
        assert row["seconds_per_sample"] >= row["llm_s_per_sample"] > 0 and row["projected_hours_coco_test"] > 0
