"""Step 0 over a large caption memory: every row scored (one matrix product per sample) against the HNSW index's
shortlist (bank.index hnsw, mils/components/bank_index.py). Synthetic unit embeddings of the scorer's width stand
in for a memory's (CC3M: 3.3M captions; SigLIP-SO400M: 1152-d; ``--rank``: their intrinsic dimension); reports the index's build seconds and size, each way's
seconds per sample, and the shortlist's recall of the exact top-K (what step 0 keeps).

    make bench                                   # 300K rows x 1152
    .venv/bin/python benchmarks/index_bench.py --rows 3300000 --dim 1152 --samples 50
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def embeddings(rows: int, dim: int, rank: int | None, rng: np.random.Generator) -> np.ndarray:
    """Unit rows: of intrinsic dimension ``rank`` (a random map of ``rank``-d points plus 10% noise: text
    embeddings are far from filling their space), or, with None, uniform on the sphere (the worst case: in 1152-d
    every pair is nearly orthogonal, and beyond the first the "nearest" are close to a random pick)."""
    mix = rng.standard_normal((rank, dim), dtype=np.float32) if rank else None
    memory = np.empty((rows, dim), np.float32)
    for start in range(0, rows, 100_000):  # made in blocks: a float64 draw of 3.3M x 1152 would not fit
        n = min(100_000, rows - start)
        block = rng.standard_normal((n, dim), dtype=np.float32)
        if mix is not None:
            block = rng.standard_normal((n, rank), dtype=np.float32) @ mix + 0.1 * rank**0.5 * block
        memory[start : start + n] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return memory


def measure(rows: int, dim: int, samples: int, shortlist: int, keep: int, rank: int | None, seed: int = 0) -> dict:
    from mils.components import build_index

    rng = np.random.default_rng(seed)
    memory = embeddings(rows, dim, rank, rng)
    # samples near some memory rows (a photo whose captions exist), as a real memory's best matches are
    queries = memory[rng.integers(0, rows, samples)] + 0.5 * rng.standard_normal((samples, dim), dtype=np.float32) / dim**0.5
    start = time.perf_counter()
    index = build_index(memory, shortlist, cache_file=None)
    built = time.perf_counter() - start
    start = time.perf_counter()
    exact = [set(np.argpartition(-(memory @ q), keep)[:keep]) for q in queries]
    full_s = (time.perf_counter() - start) / samples
    start = time.perf_counter()
    found = [set(index(q)) for q in queries]
    index_s = (time.perf_counter() - start) / samples
    recall = float(np.mean([len(top & got) / keep for top, got in zip(exact, found)]))
    return {"rows": rows, "dim": dim, "intrinsic_dim": rank or dim, "samples": samples, "shortlist": shortlist, "keep": keep,
            "build_seconds": round(built, 2), "memory_mb": round(memory.nbytes / 2**20),
            "full_product_s_per_sample": round(full_s, 5), "index_s_per_sample": round(index_s, 5),
            "speedup": round(full_s / index_s, 1), f"recall_of_top{keep}": round(recall, 4)}


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--dim", type=int, default=1152)
    parser.add_argument("--samples", type=int, default=50)
    parser.add_argument("--shortlist", type=int, default=1000)
    parser.add_argument("--keep", type=int, default=50)
    parser.add_argument("--rank", type=int, default=48, help="the embeddings' intrinsic dimension; 0: uniform rows")
    parser.add_argument("--tiny", action="store_true", help="a dry run in seconds (the tests run it)")
    args = parser.parse_args(argv)
    if args.tiny:
        args.rows, args.dim, args.samples, args.shortlist, args.keep, args.rank = 5_000, 32, 5, 50, 5, 8
    result = measure(args.rows, args.dim, args.samples, args.shortlist, args.keep, args.rank or None)
    print(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    main()
