"""A run whose bank is read through a vector index (bank.index hnsw): the config to the loop, the graph cached."""

from __future__ import annotations

import pytest

from flows.benchmark import run_benchmark
from mils.config.run_config import load_config


def test_a_run_with_an_indexed_bank_starts_where_the_whole_bank_would(flow_config, tmp_path):
    exact, raw = flow_config("exact.yaml", loop={"steps": 0, "keep": 4, "requested": 5, "seed": 5})
    indexed, _ = flow_config("indexed.yaml", loop={"steps": 0, "keep": 4, "requested": 5, "seed": 5},
                             bank={**raw["bank"], "index": "hnsw", "shortlist": 8})
    runs = [run_benchmark(load_config(p)) for p in (exact, indexed)]
    assert runs[0].results_dir != runs[1].results_dir  # the index is in the result key
    best = [{s.sample_id: s.initial_score for s in r.samples} for r in runs]
    assert best[1] == pytest.approx(best[0])
    assert len(list((tmp_path / "cache").rglob("bank-*.hnsw.faiss"))) == 1  # built once, beside the embeddings
