"""A vector index over a large bank or caption memory (``bank: {index: hnsw, shortlist: N}``).

Without one, step 0 scores every bank caption against each sample (one matrix product: right for the 30K
release bank, slow for a memory of millions: CC3M's 3.3M captions, SS1M). With one, each sample's step 0 asks
an HNSW graph (faiss, Meta's similarity-search library: ``faiss-cpu``) for its ``shortlist`` nearest captions
by inner product of the scorer's embeddings, and the scorer scores those exactly; the rest are never kept.
Every built-in two-tower scorer's similarity is a (scaled) inner product of its embeddings, so the shortlist
is what the full product would rank first, up to the graph's recall (approximate: ``efSearch`` is twice the
shortlist). The graph is built once per bank and scorer and cached beside the bank's embeddings.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from tqdm import tqdm

from mils.errors import require

log = logging.getLogger(__name__)
LINKS = 32  # HNSW's M: neighbours per node
BUILD_DEPTH = 80  # efConstruction
CHUNK = 50_000


class BankIndex:
    """``index(sample_embedding) -> rows``: the bank rows of a sample's shortlist, nearest first."""

    def __init__(self, graph, shortlist: int) -> None:
        self.graph, self.shortlist = graph, shortlist
        graph.hnsw.efSearch = max(2 * shortlist, 64)

    def __call__(self, sample_emb: np.ndarray) -> np.ndarray:
        _, rows = self.graph.search(np.ascontiguousarray(sample_emb, np.float32).reshape(1, -1), self.shortlist)
        return rows[0][rows[0] >= 0]


def build_index(emb: np.ndarray, shortlist: int, cache_file: Path | None) -> BankIndex:
    """The HNSW graph of ``emb`` (rows: the bank's text embeddings), from ``cache_file`` when it holds one of
    as many rows; built (with a progress bar) and cached there otherwise."""
    faiss = require("faiss", "bank.index hnsw", "pip install faiss-cpu")
    if cache_file is not None and cache_file.is_file():
        graph = faiss.read_index(str(cache_file))
        if graph.ntotal == len(emb) and graph.d == emb.shape[1]:
            return BankIndex(graph, shortlist)
        log.warning("ignoring stale bank index %s (%d rows, bank has %d)", cache_file, graph.ntotal, len(emb))
    graph = faiss.IndexHNSWFlat(emb.shape[1], LINKS, faiss.METRIC_INNER_PRODUCT)
    graph.hnsw.efConstruction = BUILD_DEPTH
    for start in tqdm(range(0, len(emb), CHUNK), desc="index bank", unit="chunk", leave=False):
        graph.add(np.ascontiguousarray(emb[start : start + CHUNK], np.float32))
    if cache_file is not None:
        tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
        faiss.write_index(graph, str(tmp))
        os.replace(tmp, cache_file)  # atomic: a killed run never leaves a half-written graph
    return BankIndex(graph, shortlist)
