"""Load time of `mils view` on a large run: synthetic results at paper-like sizes (10 steps, the
kept top-K trace capped at 20, 50 new candidates and a ~1.5 kB raw reply per step), then the
time to build the index (first open, and later opens with its row cache), to answer the first page (sorted by gain) and to open one sample.

    make bench
    .venv/bin/python benchmarks/viewer_bench.py --samples 5000
"""

from __future__ import annotations

import argparse
import json
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_result(n: int, steps: int, rng: random.Random):
    from mils.engine import SampleResult, StepCost, StepRecord, StepTrace

    words = "a photo of cat dog boat tree red blue small large on the sofa in park river with man".split()

    def text() -> str:
        return " ".join(rng.choice(words) for _ in range(rng.randint(6, 14)))

    kept = sorted(((text(), rng.random()) for _ in range(50)), key=lambda p: -p[1])
    history, trace, replies, cost = [], [], [], []
    for step in range(steps + 1):
        new = [(text(), rng.random()) for _ in range(50)] if step else []
        kept = sorted(kept + new, key=lambda p: -p[1])[:50]
        history.append(StepRecord(step, kept[0][0], kept[0][1], sum(v for _, v in kept) / 50, len(new)))
        trace.append(StepTrace(kept[:20], new))
        if step:
            replies.append("Here are new descriptions:\n" + "\n".join(f"{i + 1}. {t}" for i, (t, _) in enumerate(new)))
        cost.append(StepCost(step, 900 if step else None, 600 if step else None, 1.0, len(new) or 30000, 0.1))
    return SampleResult(f"img{n:05d}", history, kept, None, replies, f"/data/coco/{n:012d}.jpg", cost, trace)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--samples", type=int, default=5000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--out", default="outputs/bench/viewer_bench.json")
    args = parser.parse_args()
    from fastapi.testclient import TestClient

    from human_eval.viewer import RunIndex, create_app
    from mils.storage import ResultStore

    folder = Path(tempfile.mkdtemp(prefix="mils-viewer-bench-"))
    try:
        store, rng = ResultStore(folder), random.Random(0)
        for n in range(args.samples):
            store.write(synthetic_result(n, args.steps, rng))
        size_mb = sum(p.stat().st_size for p in (folder / "samples").glob("*.json")) / 2**20
        start = time.perf_counter()
        RunIndex(folder)
        first_s = time.perf_counter() - start
        start = time.perf_counter()
        index = RunIndex(folder)  # the row cache in place: what every later open costs
        index_s = time.perf_counter() - start
        client = TestClient(create_app(index), base_url="http://127.0.0.1")
        start = time.perf_counter()
        page = client.get("/api/samples", params={"sort": "gain", "desc": True, "limit": 50}).json()
        page_s = time.perf_counter() - start
        start = time.perf_counter()
        client.get("/api/sample", params={"id": page["rows"][0]["sample_id"]}).raise_for_status()
        sample_s = time.perf_counter() - start
    finally:
        shutil.rmtree(folder)
    row = {"samples": args.samples, "steps": args.steps, "results_mb": round(size_mb, 1),
           "first_open_seconds": round(first_s, 2), "later_open_seconds": round(index_s, 2), "first_page_seconds": round(page_s, 3),
           "open_sample_seconds": round(sample_s, 3)}
    print(json.dumps(row))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(row, indent=2))


if __name__ == "__main__":
    main()
