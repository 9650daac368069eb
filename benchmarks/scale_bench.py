"""The suite at scale, simulated: N samples through the real benchmark flow, result store and
MLflow, with fake models of realistic latency (5 ms of LLM time per prompt, 1 ms per scoring of a
sample), then the same config again (the resume of a finished run). Each run is its own process,
so its peak RSS is its own. Reports wall time, the suite's overhead per sample (wall time minus
the simulated model time), peak RSS, the results folder's size and MLflow logging time.

    make bench
    .venv/bin/python benchmarks/scale_bench.py --sizes 500 5000 50000
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LLM_SECONDS_PER_PROMPT, SCORER_SECONDS_PER_SAMPLE = 0.005, 0.001


def write_config(n: int, folder: Path) -> Path:
    from tests.fakes import WORDS

    folder.mkdir(parents=True, exist_ok=True)
    bank = folder / "bank.txt"
    bank.write_text("\n".join(f"{a} {b}" for a in WORDS for b in WORDS if a != b))
    raw = {"profile": "offline", "name": f"scale{n}", "plugins": ["tests.fakes"],
           "generator": {"backend": "fake", "model": "fake",
                         "options": {"per_reply": 10, "delay_per_prompt": LLM_SECONDS_PER_PROMPT}},
           "scorer": {"name": "fake_bow", "options": {"delay_per_sample": SCORER_SECONDS_PER_SAMPLE}},
           "bank": {"path": str(bank), "builtin": None},
           "loop": {"steps": 2, "keep": 10, "requested": 10, "seed": 0},
           "dataset": {"kind": "fake_text_sized", "args": {"n": n}},
           "metrics": ["BLEU", "CIDEr"], "batch_size": 16, "executor": {"shard_size": 1000},
           "tracking": {"uri": f"sqlite:///{folder / 'mlruns.db'}", "experiment": "scale"},
           "output_dir": str(folder / "runs"), "cache_dir": str(folder / "cache")}
    path = folder / f"scale{n}.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


def run_once(config_path: Path) -> dict:
    """One benchmark run in this process (call in a fresh process)."""
    import flows.benchmark as benchmark
    from mils.config import load_config
    from tests import fakes

    logged = {"seconds": 0.0}
    log_config_run = benchmark.log_config_run

    def timed(*args, **kwargs):
        start = time.perf_counter()
        log_config_run(*args, **kwargs)
        logged["seconds"] += time.perf_counter() - start

    benchmark.log_config_run = timed
    config = load_config(config_path)
    start = time.perf_counter()
    out = benchmark.run_benchmark(config)
    wall = time.perf_counter() - start
    size = sum(p.stat().st_size for p in Path(out["results_dir"]).rglob("*") if p.is_file())
    return {"wall_s": wall, "simulated_model_s": fakes.SIMULATED["seconds"], "mlflow_s": logged["seconds"],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, "results_mb": size / 1e6,
            "done": out["done"], "computed": out["shards"]["computed"]}


def measure(n: int, folder: Path) -> dict:
    config = write_config(n, folder)
    row = {"samples": n}
    for phase in ("fresh", "resume"):
        proc = subprocess.run([sys.executable, __file__, "--one", str(config)], capture_output=True, text=True,
                              cwd=ROOT)
        if proc.returncode:
            raise SystemExit(f"{phase} run of {n} samples failed:\n{proc.stderr[-3000:]}")
        row[phase] = json.loads(proc.stdout.strip().splitlines()[-1])
    fresh = row["fresh"]
    row["overhead_ms_per_sample"] = 1000 * (fresh["wall_s"] - fresh["simulated_model_s"]) / n
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[500, 5000, 50000])
    parser.add_argument("--one", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_once(Path(args.one))))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.sizes:
            rows.append(measure(n, Path(tmp) / str(n)))
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n{'samples':>8} {'wall s':>8} {'model s':>8} {'overhead ms/sample':>19} {'peak RSS MB':>12} "
          f"{'results MB':>11} {'MLflow s':>9} {'resume s':>9} {'resume RSS MB':>14}")
    for r in rows:
        f, again = r["fresh"], r["resume"]
        print(f"{r['samples']:>8} {f['wall_s']:>8.1f} {f['simulated_model_s']:>8.1f} {r['overhead_ms_per_sample']:>19.2f} "
              f"{f['peak_rss_mb']:>12.0f} {f['results_mb']:>11.1f} {f['mlflow_s']:>9.1f} {again['wall_s']:>9.1f} "
              f"{again['peak_rss_mb']:>14.0f}")
    out = ROOT / "outputs" / "bench" / "scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
