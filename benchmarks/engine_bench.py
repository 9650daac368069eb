"""Can the suite keep a serving engine busy? The suite (openai backend, the real Optimiser and
parser) against the simulated H100 engine of ``sim_engine.py`` (time sped up), lockstep and async.

Per schedule: achieved generated tokens/s as a fraction of the engine's capacity, requests in
flight over time (``engine_bench.png``), the scorer's share of the wall time, COCO test projected
to real time, and the suite process's peak memory and CPU per 1,000 tok/s of engine throughput.
The scorer is a stand-in with a GPU-like cost per call (``score_call_ms`` + ``score_text_us`` per
text, in engine time) and hashed embeddings.

    .venv/bin/python benchmarks/engine_bench.py                       # 5,000 samples x 10 steps
    .venv/bin/python benchmarks/engine_bench.py --samples 1000 --steps 2
    .venv/bin/python benchmarks/engine_bench.py --tiny                # seconds; the tests run it
"""

from __future__ import annotations

import argparse
import hashlib
import json
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

COCO_SAMPLE_STEPS = 5000 * 10


class GpuLikeScorer:
    """Two-tower scorer protocol: hashed 64-d embeddings; each call sleeps what a GPU would take."""

    higher_is_better = True

    def __init__(self, speedup: float, call_ms: float, text_us: float) -> None:
        self.speedup, self.call_ms, self.text_us = speedup, call_ms, text_us
        self.seconds = 0.0

    def fingerprint(self) -> str:
        return "gpu-like"

    def _vectors(self, keys) -> np.ndarray:
        rows = [np.frombuffer(hashlib.blake2b(str(k).encode(), digest_size=64).digest(), np.uint8) for k in keys]
        out = np.asarray(rows, np.float32) - 127.5
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def _cost(self, n: int) -> None:
        wait = (self.call_ms / 1e3 + n * self.text_us / 1e6) / self.speedup
        self.seconds += wait
        time.sleep(wait)

    def embed_samples(self, samples) -> np.ndarray:
        return self._vectors(s.id for s in samples)

    def embed_texts(self, texts) -> np.ndarray:
        self._cost(len(texts))
        return self._vectors(texts)

    def similarity(self, sample_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        return sample_emb @ text_emb.T


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_engine(a) -> tuple[subprocess.Popen, str]:
    import httpx

    port = _free_port()
    process = subprocess.Popen([sys.executable, str(ROOT / "benchmarks" / "sim_engine.py"), "--port", str(port),
                                "--speedup", str(a.speedup), "--reply-tokens", str(a.reply_tokens),
                                "--lines", str(a.requested), "--max-running", str(a.max_running)])
    url = f"http://127.0.0.1:{port}/v1"
    for _ in range(100):
        try:
            httpx.get(url + "/stats", timeout=1)
            return process, url
        except httpx.HTTPError:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the simulated engine did not start")


def run_schedule(schedule: str, a, url: str) -> dict:
    import httpx

    from benchmarks.gpu_models import synthetic
    from mils.config import get_task
    from mils.engine import LoopOptions, Optimiser, SamplingOptions, run_async
    from mils.generators import OpenAIGenerator
    from mils.protocols import Sample

    generator = OpenAIGenerator(url, "sim", SamplingOptions(max_new_tokens=a.reply_tokens), max_concurrency=a.in_flight)
    scorer = GpuLikeScorer(a.speedup, a.score_call_ms, a.score_text_us)
    bank = synthetic(a.bank, 0)
    options = LoopOptions(steps=a.steps, keep=a.keep, requested=a.requested, seed=0)
    optimiser = Optimiser(generator, scorer, get_task("image_captioning").template, bank, scorer.embed_texts(bank), options)
    samples = [Sample(f"s{i}", None) for i in range(a.samples)]
    before = httpx.get(url + "/stats").json()
    scorer.seconds = 0.0
    cpu, start = time.process_time(), time.perf_counter()
    if schedule == "async":
        results = run_async(optimiser, samples, in_flight=a.in_flight)
    else:
        results = optimiser.run_batched(samples, a.lockstep_batch or len(samples))
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu
    after = httpx.get(url + "/stats").json()
    generator.close()
    tokens = after["generated"] - before["generated"]
    engine_seconds = wall * a.speedup
    rate = tokens / engine_seconds
    trace = [(t - before["wall"], r, w) for t, r, w in after["trace"] if t >= before["wall"]]
    sample_steps = sum(len(r.history) - 1 for r in results)
    return {"schedule": schedule, "samples": a.samples, "steps": a.steps, "in_flight": a.in_flight,
            "batch": (a.lockstep_batch or a.samples) if schedule == "lockstep" else None,
            "wall_s": wall, "engine_s": engine_seconds, "generated_tokens": tokens, "tokens_per_s": rate,
            "capacity_tokens_per_s": after["capacity"], "fraction_of_capacity": rate / after["capacity"],
            "scorer_share": scorer.seconds / wall, "mean_running": float(np.mean([r for _, r, _ in trace] or [0])),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "core_share_per_1k_tok_s": (cpu / engine_seconds) / (rate / 1000) if rate else float("nan"),
            "projected_coco_hours": engine_seconds * COCO_SAMPLE_STEPS / max(sample_steps, 1) / 3600,
            "ideal_coco_hours": COCO_SAMPLE_STEPS * a.reply_tokens / after["capacity"] / 3600,
            "trace": trace, "results": [(r.sample_id, r.history[-1].best, r.history[-1].best_score) for r in results]}


def plot(rows: list[dict], path: Path) -> None:
    """One panel per schedule: requests decoding over engine time (thin) and its one-minute mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(len(rows), 1, figsize=(8, 2.2 * len(rows) + 0.6), sharex=True, squeeze=False)
    for ax, row in zip(axes[:, 0], rows):
        t = np.array([x[0] * row["engine_s"] / row["wall_s"] / 60 for x in row["trace"]])
        running = np.array([x[1] for x in row["trace"]], float)
        ax.plot(t, running, lw=0.4, alpha=0.35, color="C0" if row["schedule"] == "async" else "C1")
        if len(t) > 1:
            per_minute = min(len(t), max(1, int(round(1 / max(np.median(np.diff(t)), 1e-9)))))
            ax.plot(t, np.convolve(running, np.ones(per_minute) / per_minute, mode="same"), lw=1.6,
                    color="C0" if row["schedule"] == "async" else "C1", label="one-minute mean")
        ax.axhline(row["in_flight"], color="grey", ls=":", lw=1, label=f"bound ({row['in_flight']} in flight)")
        label = row["schedule"] + (f", batches of {row['batch']}" if row.get("batch") else "")
        ax.set(ylabel="decoding", ylim=(0, row["in_flight"] * 1.1),
               title=f"{label}: {row['fraction_of_capacity']:.0%} of the engine's capacity")
        ax.title.set_fontsize(9)
        ax.legend(loc="lower right", fontsize=7)
    axes[-1, 0].set_xlabel("engine minutes (simulated H100)")
    fig.suptitle(f"{rows[0]['samples']} samples x {rows[0]['steps']} steps against the simulated engine", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true")
    p.add_argument("--samples", type=int, default=5000)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--keep", type=int, default=50)
    p.add_argument("--requested", type=int, default=50)
    p.add_argument("--reply-tokens", type=int, default=750)
    p.add_argument("--bank", type=int, default=2000)
    p.add_argument("--in-flight", type=int, default=256)
    p.add_argument("--max-running", type=int, default=256)
    p.add_argument("--speedup", type=float, default=20.0, help="engine seconds per wall second")
    p.add_argument("--score-call-ms", type=float, default=5.0, help="scorer cost per call (engine time)")
    p.add_argument("--score-text-us", type=float, default=20.0, help="scorer cost per text (engine time)")
    p.add_argument("--lockstep-batch", type=int, default=None,
                   help="samples per lockstep batch (default: all of them, lockstep's best case)")
    p.add_argument("--schedules", nargs="+", default=["async", "lockstep"], choices=["async", "lockstep"])
    p.add_argument("--out", default="outputs/bench/engine_bench")
    a = p.parse_args(argv)
    if a.tiny:
        a.samples, a.steps, a.keep, a.requested, a.bank, a.in_flight, a.max_running = 24, 2, 5, 5, 50, 8, 8
        a.reply_tokens, a.speedup = 40, 5.0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    process, url = start_engine(a)
    rows = []
    try:
        for schedule in a.schedules:
            rows.append(run_schedule(schedule, a, url))
            summary = {k: v for k, v in rows[-1].items() if k not in ("trace", "results")}
            print(json.dumps(summary), flush=True)
            (out / "engine_bench.json").write_text(json.dumps(rows, indent=1))
    finally:
        process.kill()
    plot(rows, out / "engine_bench.png")
    print(f"{out / 'engine_bench.json'}\n{out / 'engine_bench.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
