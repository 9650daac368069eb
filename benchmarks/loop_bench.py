"""Per-sample wall time of the MILS loop at paper-like settings on the offline profile.

Breaks the time down into sample embedding, bank scoring, LLM generation, candidate scoring
and everything else (prompt rendering, parsing, ranking). Target: everything else < 10%.

    make bench                      # defaults below
    .venv/bin/python benchmarks/loop_bench.py --steps 3 --max-new-tokens 1000
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
RELEASE_BANK = ROOT.parent / "shared" / "data" / "mils_release" / "image_descriptions_per_class.txt"
PHASES = ("sample_embedding", "bank_scoring", "generation", "candidate_scoring")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--bank", default=str(RELEASE_BANK), help="caption bank (default: the MILS release bank)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--keep", type=int, default=50)
    parser.add_argument("--requested", type=int, default=50)
    parser.add_argument("--max-new-tokens", type=int, default=800)
    parser.add_argument("--batch-sizes", default="1,8")
    parser.add_argument("--samples-batch-1", type=int, default=2, help="samples timed at batch size 1 (slow)")
    parser.add_argument("--out", default="outputs/bench/loop_bench.json")
    args = parser.parse_args()

    from evaluation.sample_set import export
    from mils.components import plan_run
    from mils.config import build_config
    from mils.protocols import Sample
    from mils.run import TaskRunner

    bank = {"path": args.bank, "builtin": None} if Path(args.bank).is_file() else {"builtin": "imagenet-templates"}
    if "path" not in bank:
        print(f"note: {args.bank} not found; using the built-in ImageNet template bank", file=sys.stderr)
    photos = export(ROOT / "outputs" / "bench" / "images")
    report: dict = {"settings": vars(args), "bank": bank, "runs": []}
    for batch_size in map(int, args.batch_sizes.split(",")):
        config = build_config("offline", {
            "bank": bank, "batch_size": batch_size,
            "loop": {"steps": args.steps, "keep": args.keep, "requested": args.requested},
            "generator": {"max_new_tokens": args.max_new_tokens},
        })
        start = time.perf_counter()
        runner = TaskRunner(plan_run(config))
        setup = time.perf_counter() - start
        n = args.samples_batch_1 if batch_size == 1 else max(batch_size, 1)
        samples = [Sample.from_path(p) for p in (photos * 2)[:n]]
        samples = [Sample(f"{s.id}#{i}", s.media) for i, s in enumerate(samples)]
        runner.timer.seconds.clear()
        run = runner.run(samples)
        t = run.timings
        total = t["loop_total"]
        row = {
            "batch_size": batch_size, "samples": n, "bank_size": len(run.bank),
            "setup_s (models + cached bank)": round(setup, 1),
            "per_sample_s": round(total / n, 2),
            **{f"{k}_s_per_sample": round(t.get(k, 0.0) / n, 3) for k in PHASES},
            "other_s_per_sample": round((total - sum(t.get(k, 0.0) for k in PHASES)) / n, 3),
            "other_share": round((total - sum(t.get(k, 0.0) for k in PHASES)) / total, 4),
            "new_candidates_per_step": round(
                sum(h.new_unique for r in run.results for h in r.history[1:]) / (n * max(args.steps, 1)), 1),
        }
        report["runs"].append(row)
        print(json.dumps(row, indent=2))
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    print(f"\n{'batch':>5} {'s/sample':>9} {'embed':>7} {'bank':>7} {'LLM':>8} {'cand':>7} {'other':>7} {'other%':>7}")
    for r in report["runs"]:
        print(f"{r['batch_size']:>5} {r['per_sample_s']:>9.2f} {r['sample_embedding_s_per_sample']:>7.3f} "
              f"{r['bank_scoring_s_per_sample']:>7.3f} {r['generation_s_per_sample']:>8.2f} "
              f"{r['candidate_scoring_s_per_sample']:>7.3f} {r['other_s_per_sample']:>7.3f} {r['other_share']:>7.2%}")
    print(f"written to {out}")


if __name__ == "__main__":
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    main()
