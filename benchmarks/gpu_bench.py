"""MILS at the paper's scale on one GPU, in phases that each write their rows as soon as measured.

Speed does not depend on weight values, so the models are built from their real configurations
with random weights (benchmarks/gpu_models.py): Llama-3.1-8B-Instruct's published config in bf16,
open_clip's ``ViT-SO400M-14-SigLIP`` (``pretrained=None``; images at the model's own size),
SmolLM2's tokenizer for realistic prompt lengths. Random weights never write the end token, so
every reply is forced to its length (loops: ``--new-tokens``, default 750: real Llama-3.1 replies of
50 captions take ~600-900); the candidates each reply "contains" are synthetic captions. Sampling
as the paper profile: temperature 0.5, top-p 0.9, top-k 50, ``rng: counter``.

Phases (``--phases``, default all, in this order):
    decode    our decoding loop against transformers' ``generate``, same prompts (the paper's
              1,083-token image prompt), after a warm-up; prefill and decode timed apart (ms per
              decode step, decode-only tok/s) at each ``--batches`` size (benchmarks/gpu_decode.py)
    padding   what a padded batch decodes for nothing at the loop's shapes: graph steps over the
              whole reserved length, rows finished before their batch (computed, no model)
    official  the MILS code's pattern: the bank re-encoded for every sample, ``generate`` in
              lockstep chunks of 16, the whole pool (kept + new) re-scored every step
    ours      this suite's Optimiser (bank encoded once, only new candidates scored) at the rows
              the decode loop's sizing function gives for 750-token replies beside the scorer
    vllm      the Optimiser on vLLM's engine, where vLLM is importable (all samples per step)

Each loop row splits its time into work done once per sample (the official pattern re-encodes
the bank per sample; ours embeds the sample) and work per step, and projects COCO test
(5,000 images) at 10 steps as ``once + 10 x per step``; the bank, encoded once per run, is added
whole to ours. A phase that runs out of memory writes its error as its row and the next phase runs.

    python benchmarks/gpu_selfcheck.py && python benchmarks/gpu_bench.py --out outputs/gpu_bench   # a GPU
    .venv/bin/python benchmarks/gpu_bench.py --tiny              # the same code, CPU, seconds
    bash benchmarks/gpu_check.sh                                 # a bare GPU machine (self-check first)
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import gpu_loops  # noqa: E402
from benchmarks import gpu_models as models  # noqa: E402
from benchmarks.gpu_decode import decode_rows, padded_work  # noqa: E402

PHASES = ["decode", "padding", "official", "ours", "vllm"]


def arguments(argv) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="small configs on the CPU: proves the code path in seconds")
    p.add_argument("--phases", nargs="+", default=PHASES, choices=PHASES)
    p.add_argument("--batches", type=int, nargs="+", default=[16, 64, 128, 256], help="decode phase batch sizes")
    p.add_argument("--decode-tokens", type=int, default=128, help="decode phase: new tokens per reply")
    p.add_argument("--samples", type=int, default=0, help="our loop's samples (0: the rows that fit, at most "
                   "the largest decode batch)")
    p.add_argument("--official-samples", type=int, default=16, help="the official pattern's samples (one chunk)")
    p.add_argument("--steps", type=int, default=1, help="loop steps measured (projections are to 10)")
    p.add_argument("--keep", type=int, default=50)
    p.add_argument("--requested", type=int, default=50)
    p.add_argument("--new-tokens", type=int, default=750, help="loop replies' length (real replies: ~600-900)")
    p.add_argument("--bank", type=int, default=28768, help="bank size (the MILS image bank: 28,768 lines)")
    p.add_argument("--tokenizer", help="a saved tokenizer folder (gpu_prepare.sh writes SmolLM2's)")
    p.add_argument("--word-tokenizer", action="store_true", help="a word-level tokenizer (prompts ~25%% shorter)")
    p.add_argument("--out", default="outputs/gpu_bench")
    a = p.parse_args(argv)
    if a.tiny:
        a.batches, a.decode_tokens, a.official_samples, a.keep, a.requested = [2, 4], 6, 2, 5, 5
        a.new_tokens, a.bank, a.steps = 8, 40, 1
    return a


class Bench:
    """The models, the inputs and the result file every phase appends its rows to."""

    def __init__(self, a: argparse.Namespace, device: str, dtype, out: Path) -> None:
        import torch

        self.a, self.device, self.out = a, device, out
        self.result = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "tiny": a.tiny,
                       "torch": torch.__version__, "settings": {k: getattr(a, k) for k in (
                           "batches", "decode_tokens", "official_samples", "steps", "keep", "requested",
                           "new_tokens", "bank")}, "rows": []}
        t = time.perf_counter()
        try:
            self.tok = models.tokenizer(a.tokenizer, a.word_tokenizer)
        except models.NoTokenizer as err:
            if not a.tiny:
                raise
            models.log(f"{err}; --tiny: a word-level tokenizer instead")
            self.tok = models.word_tokenizer()
        self.model, _ = models.llm(a.tiny, device, dtype)
        self.clip = models.siglip(a.tiny, device, dtype)
        self.bank = models.synthetic(a.bank, 0)
        prompt = models.paper_prompts(1, a.keep, a.requested)
        self.prompt_tokens = len(models.chat_batch(self.tok, prompt, "cpu").input_ids[0])
        self.record({"phase": "setup", "seconds": time.perf_counter() - t, "prompt_tokens": self.prompt_tokens,
                     "tokenizer": self.tok.name_or_path or "word-level"})

    def record(self, row: dict) -> None:
        """Every row reaches the JSON as soon as it is measured."""
        import torch

        if self.device == "cuda":
            row.setdefault("peak_gib", torch.cuda.max_memory_allocated() / 2**30)
        self.result["rows"].append(row)
        (self.out / "gpu_bench.json").write_text(json.dumps(self.result, indent=2))
        print(json.dumps(row), flush=True)

    def rows(self) -> tuple[int, int]:
        """(rows our loop decodes at once, rows that fit), from the sizing function, computed once."""
        if not hasattr(self, "_rows"):
            self._rows = gpu_loops.loop_rows(self.model, self.prompt_tokens, self.a)
        return self._rows

    def scorer(self) -> models.BenchScorer:
        return models.BenchScorer(self.clip, self.tok, self.device)

    def decode(self) -> None:
        for row in decode_rows(self.model, self.tok, self.a, self.device):
            self.record(row)

    def padding(self) -> None:
        rows, _ = self.rows()
        self.record(padded_work(self.prompt_tokens, self.a.new_tokens, rows, self.a.new_tokens * 4 // 5, self.a.new_tokens * 6 // 5))

    def official(self) -> None:
        self.record(gpu_loops.official_pattern(self.model, self.tok, self.scorer(), self.a, self.bank, self.device))

    def ours(self) -> None:
        rows, fit = self.rows()
        rows = self.a.samples or rows
        gen = models.ours_generator(self.model, self.tok, self.a.new_tokens, max_batch=rows)
        row = gpu_loops.our_loop(gen, self.scorer(), self.a, self.bank, self.device,
                                 f"ours, transformers backend (batch {rows})", rows)
        self.record({**row, "rows_that_fit": fit})

    def vllm(self) -> None:
        samples = self.a.samples or self.rows()[0]
        self.model = None  # vLLM needs the memory: this phase runs last
        gc.collect()
        models.reset_peak(self.device)
        row = gpu_loops.vllm_row(self.a, self.tok, self.clip, self.bank, self.device,
                                 samples)
        if row:
            self.record(row)


def main(argv=None) -> int:
    import torch

    a = arguments(argv)
    device = "cuda" if torch.cuda.is_available() and not a.tiny else "cpu"
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    try:
        bench = Bench(a, device, torch.bfloat16 if device == "cuda" else torch.float32, out)
    except models.NoTokenizer as err:
        models.log(f"gpu_bench: {err}")
        return 2
    for phase in [p for p in PHASES if p in a.phases]:
        models.reset_peak(device)
        try:
            getattr(bench, phase)()
        except torch.OutOfMemoryError as err:  # the next phase still runs; this one says what happened
            bench.record({"phase": phase, "error": f"out of memory: {str(err).splitlines()[0][:200]}"})
    print(table(bench.result))
    print(f"\n{out / 'gpu_bench.json'}")
    return 0


def table(result: dict) -> str:
    """The README's tables: the decode comparison per batch, then the loops with their projection
    and the ratio to the official pattern."""
    lines = [f"{result['device']} (torch {result['torch']}), settings {result['settings']}", "",
             "| batch | ours ms/step | generate ms/step | ours decode tok/s | generate decode tok/s | ours / generate "
             "| ours prefill s | generate prefill s | ours peak GiB | generate peak GiB |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        if r["phase"] == "decode":
            ours, theirs = r.get("ours_decode_tokens_per_s"), r.get("generate_decode_tokens_per_s")
            ratio = f"{ours / theirs:.1f}x" if ours and theirs else "-"
            lines.append(f"| {r['batch']} | {_num(r.get('ours_ms_per_step'), 1)} | {_num(r.get('generate_ms_per_step'), 1)} "
                         f"| {_num(ours)} | {_num(theirs)} | {ratio} | {_num(r.get('ours_prefill_s'), 2)} | "
                         f"{_num(r.get('generate_prefill_s'), 2)} | {_num(r.get('ours_peak_gib'), 1)} | "
                         f"{_num(r.get('generate_peak_gib'), 1)} |")
    loops = [r for r in result["rows"] if r["phase"] == "loop"]
    official = next((r for r in loops if r["pattern"].startswith("official")), None)
    lines += ["", "| pattern | once/sample s | LLM s | scoring s | other s | (per sample-step) | tok/s | scoring share "
              "| peak GiB | COCO test h | vs official |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in loops:
        ratio = (f"{official['projected_hours_coco_test'] / r['projected_hours_coco_test']:.1f}x"
                 if official and r["projected_hours_coco_test"] else "-")
        lines.append(f"| {r['pattern']} | {r['once_per_sample_s']:.3f} | {r['llm_s_per_sample_step']:.3f} | "
                     f"{r['scoring_s_per_sample_step']:.3f} | {r['other_s_per_sample_step']:.3f} | "
                     f"{r['step_s_per_sample']:.3f} | {r['generated_tokens_per_s']:.0f} | {r['scoring_share']:.1%} | "
                     f"{_num(r.get('peak_gib'), 1)} | {r['projected_hours_coco_test']:.2f} | {ratio} |")
    lines += [f"\n{r['phase']} failed: {r['error']}" for r in result["rows"] if "error" in r]
    return "\n".join(lines)


def _num(value, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


if __name__ == "__main__":
    sys.exit(main())
