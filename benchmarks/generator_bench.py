"""Our decoding loop (one torch.Generator per row, so a reply never depends on its batch mates)
against transformers' ``generate`` (one random stream for the whole batch), same model, same
prompts, same sampling settings, same number of new tokens (EOS suppressed in both).

    make bench
    .venv/bin/python benchmarks/generator_bench.py --batches 1 8 32 --new-tokens 64
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def prompts(n: int) -> list[str]:
    from mils.config import get_task

    template = get_task("image_captioning").template
    kept = [(f"a photo of a {w}.", 0.5 - i / 100) for i, w in enumerate("cat dog boat tree car bird".split())]
    return [template.render(kept[: 3 + i % 4], 10) for i in range(n)]


def ours(generator, batch: list[str], new_tokens: int) -> tuple[float, int]:
    generator.eos_ids = [-1]  # never stop early: every row decodes exactly new_tokens
    start = time.perf_counter()
    replies = generator.generate(batch, list(range(len(batch))))
    return time.perf_counter() - start, sum(r.usage.generated for r in replies)


def theirs(generator, batch: list[str], new_tokens: int) -> tuple[float, int]:
    import torch

    tok = generator.tokenizer
    chats = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in batch]
    enc = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False)
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.inference_mode():
        out = generator.model.generate(**enc, do_sample=True, temperature=generator.sampling.temperature,
                                       top_p=generator.sampling.top_p, max_new_tokens=new_tokens,
                                       min_new_tokens=new_tokens, pad_token_id=tok.pad_token_id)
    return time.perf_counter() - start, int((out.shape[1] - enc.input_ids.shape[1]) * len(batch))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--new-tokens", type=int, default=64)
    parser.add_argument("--out", default="outputs/bench/generator_bench.json")
    parser.add_argument("--ours-only", action="store_true", help="skip transformers' generate (vllm_bench.py)")
    args = parser.parse_args()
    from mils.components import build_generator, plan_run
    from mils.config import build_config

    config = build_config("offline", {"generator": {"max_new_tokens": args.new_tokens}})
    generator = build_generator(plan_run(config).generator)
    eos = list(generator.eos_ids)
    rows = []
    for size in args.batches:
        batch = prompts(size)
        ours(generator, batch[:1], 4)  # warm-up
        generator.eos_ids = eos
        seconds, tokens = ours(generator, batch, args.new_tokens)
        generator.eos_ids = eos
        rows.append({"batch": size, "new_tokens": args.new_tokens, "ours_s": seconds, "ours_tokens": tokens,
                     "ours_tokens_per_s": tokens / seconds, "ours_steps_per_s": args.new_tokens / seconds})
        if not args.ours_only:
            their_seconds, their_tokens = theirs(generator, batch, args.new_tokens)
            rows[-1].update({"generate_tokens_per_s": their_tokens / their_seconds,
                             "generate_steps_per_s": args.new_tokens / their_seconds})
        print(json.dumps(rows[-1]), flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, indent=2))
    if args.ours_only:
        return
    print(f"\n{'batch':>5}  {'ours tok/s':>10}  {'generate tok/s':>14}  {'ours/generate':>13}")
    for r in rows:
        print(f"{r['batch']:>5}  {r['ours_tokens_per_s']:>10.1f}  {r['generate_tokens_per_s']:>14.1f}  "
              f"{r['ours_tokens_per_s'] / r['generate_tokens_per_s']:>13.2f}")


if __name__ == "__main__":
    main()
