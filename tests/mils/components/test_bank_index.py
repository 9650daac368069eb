"""A vector index over a large memory: each sample's step 0 scores its shortlist, which holds the exact top."""

from __future__ import annotations

import logging

import numpy as np
import pytest

from mils.components.bank_index import build_index
from mils.config.run_config import build_config
from mils.errors import InputError
from tests.mils.engine.test_loop import make_optimiser


def unit_rows(n: int, d: int, seed: int) -> np.ndarray:
    rows = np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_the_shortlist_holds_the_exact_top_of_a_large_memory():
    memory, queries = unit_rows(20_000, 32, 0), unit_rows(20, 32, 1)
    index = build_index(memory, shortlist=100, cache_file=None)
    found = [set(index(q)[:100]) for q in queries]
    exact = [set(np.argsort(-(memory @ q))[:10]) for q in queries]
    recall = np.mean([len(top & got) / 10 for top, got in zip(exact, found)])
    assert recall >= 0.95, recall
    assert all(len(index(q)) == 100 for q in queries[:3])


def test_step_zero_from_the_index_keeps_what_the_whole_bank_would(fake_generator, fake_scorer, fake_bank, text_samples):
    exact = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=0, keep=4, requested=5).run(text_samples)
    emb = fake_scorer.embed_texts(fake_bank)
    indexed = make_optimiser(fake_generator, fake_scorer, fake_bank, steps=0, keep=4, requested=5)
    indexed.bank_index = build_index(np.asarray(emb, np.float32), shortlist=12, cache_file=None)
    shortlisted = indexed.run(text_samples)
    assert [r.history[0].best_score for r in shortlisted] == pytest.approx([r.history[0].best_score for r in exact])
    indexed.bank_index = build_index(np.asarray(emb, np.float32), shortlist=1, cache_file=None)
    assert all(len(r.kept) == 1 for r in indexed.run(text_samples))  # only the shortlist is scored
    # the same kept scores (the fake scorer ties often: which of two equal captions is kept may differ)
    assert [v for r in shortlisted for _, v in r.kept] == pytest.approx([v for r in exact for _, v in r.kept])


def test_the_graph_is_cached_and_a_stale_one_is_rebuilt(tmp_path, monkeypatch, caplog):
    import faiss

    cache = tmp_path / "bank-x.hnsw.faiss"
    memory = unit_rows(2_000, 16, 2)
    first = build_index(memory, shortlist=5, cache_file=cache)
    assert cache.is_file() and not list(tmp_path.glob("*.tmp"))
    with monkeypatch.context() as patched:  # read back, never built again
        patched.setattr(faiss, "IndexHNSWFlat", lambda *a: pytest.fail("rebuilt a cached graph"))
        again = build_index(memory, shortlist=5, cache_file=cache)
    assert list(again(memory[7])) == list(first(memory[7])) and again(memory[7])[0] == 7
    with caplog.at_level(logging.WARNING):
        grown = build_index(unit_rows(2_100, 16, 3), shortlist=5, cache_file=cache)
    assert "stale bank index" in caplog.text and grown.graph.ntotal == 2_100


def test_the_index_is_a_bank_setting_checked_when_the_config_is_read():
    plain = build_config("offline", {})
    indexed = build_config("offline", {"bank": {"builtin": "imagenet-templates", "index": "hnsw", "shortlist": 200}})
    assert indexed.bank.index == "hnsw" and indexed.result_key() != plain.result_key()
    with pytest.raises(InputError, match="index"):
        build_config("offline", {"bank": {"builtin": "imagenet-templates", "index": "faiss"}})


def test_the_index_benchmark_runs_tiny_and_reports_what_it_measures():
    from benchmarks import index_bench

    result = index_bench.main(["--tiny"])
    assert result["rows"] == 5_000 and result["recall_of_top5"] >= 0.9 and result["index_s_per_sample"] > 0
