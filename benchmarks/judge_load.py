"""The judging page under load: many raters answering at once against a real `mils judge serve`
process on loopback, killed (SIGKILL) and restarted half-way. Checks that no answer is lost or
stored twice and reports latency. Ends by itself (every rater has a fixed number of answers).

    make bench
    .venv/bin/python benchmarks/judge_load.py --raters 50 --answers 200
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def synthetic_batch(folder: Path, pairs: int) -> list[str]:
    """A text-only caption batch with ``pairs`` pairs; returns their ids in page order."""
    from human_eval.export import Entry, export_batch

    a = {f"s{n}": Entry(f"s{n}", text=f"a photo of thing {n}") for n in range(pairs)}
    b = {f"s{n}": Entry(f"s{n}", text=f"a detailed photo of object {n}") for n in range(pairs)}
    export_batch(a, b, folder, axes=["quality"], catch_fraction=0.0, seed=0)
    return [p["pair_id"] for p in json.loads((folder / "pairs.json").read_text())]


class Server:
    """`mils judge serve`'s app in its own process (so it can be SIGKILLed like a crashed server)."""

    def __init__(self, batch: Path) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.batch, self.proc = batch, None

    def start(self) -> None:
        code = f"from human_eval.server import serve; serve({str(self.batch)!r}, '127.0.0.1', {self.port})"
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-c", code], env=env, start_new_session=True,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        import httpx

        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(f"{self.url}/api/next", params={"rater": "probe"}, timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the judging server did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


def run_load(raters: int, answers: int, restart: bool = True, folder: Path | None = None) -> dict:
    import httpx

    batch = Path(folder or tempfile.mkdtemp(prefix="mils-judge-load-")) / "batch"
    order = synthetic_batch(batch, answers)
    server = Server(batch)
    server.start()
    latencies: list[float] = []
    sent = [0]
    lock = threading.Lock()
    restarted = threading.Event()

    def rater(n: int) -> None:
        with httpx.Client(timeout=30) as client:
            for k, pid in enumerate(order):
                body = {"rater": f"r{n:03d}", "pair_id": pid, "choice": "left" if (n + k) % 2 else "right"}
                while True:  # a killed server: try again until it is back (bounded by the restart)
                    try:
                        start = time.perf_counter()
                        client.post(f"{server.url}/api/answer", json=body).raise_for_status()
                        break
                    except httpx.TransportError:
                        time.sleep(0.05)
                with lock:
                    latencies.append(time.perf_counter() - start)
                    sent[0] += 1
                    due = restart and not restarted.is_set() and sent[0] >= raters * answers // 2
                    if due:
                        restarted.set()
                if due:
                    server.kill()
                    server.start()

    begin = time.perf_counter()
    try:
        with ThreadPoolExecutor(max_workers=raters) as pool:
            list(pool.map(rater, range(raters)))
        seconds = time.perf_counter() - begin
        rows = httpx.get(f"{server.url}/api/export", timeout=60).text.strip().splitlines()[1:]
    finally:
        server.kill()
    keys = [tuple(r.split(",")[:3:2]) for r in rows]  # (pair id, rater)
    expected = raters * answers
    return {"raters": raters, "answers_each": answers, "stored": len(rows), "expected": expected,
            "duplicates": len(keys) - len(set(keys)), "lost": expected - len(set(keys)),
            "restarted": restarted.is_set(), "seconds": round(seconds, 1),
            "answers_per_second": round(expected / seconds, 1),
            "p50_ms": round(1000 * float(np.percentile(latencies, 50)), 1),
            "p95_ms": round(1000 * float(np.percentile(latencies, 95)), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raters", type=int, default=50)
    parser.add_argument("--answers", type=int, default=200)
    parser.add_argument("--out", default="outputs/bench/judge_load.json")
    args = parser.parse_args()
    result = run_load(args.raters, args.answers)
    print(json.dumps(result))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
