"""The loop phases: the official MILS code's pattern, this suite's Optimiser on the transformers
backend (at the rows its sizing function gives), and on vLLM's engine; each row projects COCO test."""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.gpu_models import LLAMA_31_8B, BenchScorer, SyntheticReplies, chat_batch, hf_generate, sync, synthetic

COCO_TEST = 5000


def official_pattern(model, tok, scorer, a, bank: list[str], device: str) -> dict:
    """The MILS code's loop: per sample the whole bank is encoded again; replies in lockstep chunks
    of 16 through ``generate``; every step re-scores the whole pool (kept + new)."""
    from mils.config import get_task

    n = a.official_samples
    template = get_task("image_captioning").template
    llm = step_scoring = 0.0
    tokens = 0
    t = time.perf_counter()
    sample_emb = scorer.embed_samples(list(range(n)))
    timed = min(n, 2)  # the official code encodes the bank again for every image: timed on two (the same
    for _ in range(timed):  # work each time), that embedding reused for the rest
        bank_emb = scorer.embed_texts(bank)
    sync(device)
    once = (time.perf_counter() - t) * n / timed
    scorer.texts_encoded += (n - timed) * len(bank)
    kept = []
    for i in range(n):
        sims = sample_emb[i] @ bank_emb.T
        order = np.argsort(-sims)[: a.keep]
        kept.append([(bank[j], float(sims[j])) for j in order])
    for step in range(1, a.steps + 1):
        prompts = [template.render(k, a.requested) for k in kept]
        t = time.perf_counter()
        for c in range(0, n, 16):
            enc = chat_batch(tok, prompts[c: c + 16], device)
            out = hf_generate(model, tok, enc, a.new_tokens)
            tokens += (out.shape[1] - enc.input_ids.shape[1]) * out.shape[0]
        sync(device)
        llm += time.perf_counter() - t
        t = time.perf_counter()
        for i in range(n):
            pool = [text for text, _ in kept[i]] + synthetic(a.requested, 1000 * step + i)
            sims = sample_emb[i] @ scorer.embed_texts(pool).T  # the whole pool, every step
            order = np.argsort(-sims, kind="stable")[: a.keep]
            kept[i] = [(pool[j], float(sims[j])) for j in order]
        sync(device)
        step_scoring += time.perf_counter() - t
    return loop_row("official pattern (generate, chunks of 16; bank per sample)", n, a.steps, once_per_sample=once / n,
                    llm=llm, scoring=step_scoring, other=0.0, tokens=tokens, texts=scorer.texts_encoded)


def loop_rows(model, prompt_tokens: int, a) -> tuple[int, int]:
    """Rows our loop decodes at once at the loop's shapes: the decode loop's own sizing function
    (KV slots, activations, the device's total memory less the weights and what the scorer beside
    it takes), capped at the largest decode batch measured. Returns (rows used, rows that fit)."""
    from mils.generators import SCORER_GIB, DecodeOptions, rows_that_fit

    fit = rows_that_fit(model, prompt_tokens, a.new_tokens, DecodeOptions(reserved_gib=SCORER_GIB))
    return min(fit, max(a.batches)), fit


def our_loop(generator, scorer, a, bank: list[str], device: str, name: str, samples: int) -> dict:
    from mils.config import get_task
    from mils.engine import LoopOptions, Optimiser
    from mils.protocols import Sample

    wrapped = SyntheticReplies(generator, a.requested, device)
    start = time.perf_counter()
    bank_emb = scorer.embed_texts(bank)  # once per (scorer, bank): the suite caches it on disk
    sync(device)
    bank_seconds = time.perf_counter() - start
    options = LoopOptions(steps=a.steps, keep=a.keep, requested=a.requested, max_words=None, seed=0)
    optimiser = Optimiser(wrapped, scorer, get_task("image_captioning").template, bank, bank_emb, options)
    optimiser.run([Sample(f"s{i}", None) for i in range(samples)])
    sync(device)
    wall = time.perf_counter() - start - bank_seconds
    seconds = optimiser.timer.seconds
    once = seconds["sample_embedding"] + seconds["bank_scoring"]
    scoring = seconds["candidate_scoring"]
    other = max(wall - once - wrapped.llm_seconds - scoring, 0.0)
    return loop_row(name, samples, a.steps, once_per_sample=once / samples, llm=wrapped.llm_seconds, scoring=scoring,
                    other=other, tokens=wrapped.tokens, texts=scorer.texts_encoded, run_once=bank_seconds)


def loop_row(name: str, samples: int, steps: int, once_per_sample: float, llm: float, scoring: float, other: float,
             tokens: int, texts: int, run_once: float = 0.0) -> dict:
    """A loop's measurements, per sample and per step, with the COCO test projection."""
    per = samples * steps
    row = {"phase": "loop", "pattern": name, "samples": samples, "steps": steps, "run_once_s": run_once,
           "once_per_sample_s": once_per_sample, "llm_s_per_sample_step": llm / per,
           "scoring_s_per_sample_step": scoring / per, "other_s_per_sample_step": other / per,
           "generated_tokens": tokens, "generated_tokens_per_s": tokens / llm if llm else float("nan"),
           "texts_encoded": texts}
    row["step_s_per_sample"] = row["llm_s_per_sample_step"] + row["scoring_s_per_sample_step"] + row[
        "other_s_per_sample_step"]
    row["scoring_share"] = row["scoring_s_per_sample_step"] / row["step_s_per_sample"] if row["step_s_per_sample"] else 0
    row["projected_hours_coco_test"] = projected_hours(row)
    return row


def projected_hours(row: dict, images: int = COCO_TEST, steps: int = 10) -> float:
    """COCO test at the paper's 10 steps: work done once per run, plus per image the work done
    once per sample and ``steps`` times the work of one step."""
    return (row["run_once_s"] + images * (row["once_per_sample_s"] + steps * row["step_s_per_sample"])) / 3600


class VLLMForced:
    """vLLM's engine with ``ignore_eos``: every reply exactly ``new_tokens`` tokens."""

    def __init__(self, model_dir: str, new_tokens: int, device_kw: dict) -> None:
        from vllm import LLM

        self.engine = LLM(model=model_dir, load_format="dummy", dtype="bfloat16", enforce_eager=False, **device_kw)
        self.new_tokens = new_tokens

    def generate(self, prompts, seeds):
        from vllm import SamplingParams

        from mils.protocols import Reply, TokenUsage

        params = [SamplingParams(temperature=0.5, top_p=0.9, top_k=50, max_tokens=self.new_tokens, ignore_eos=True,
                                 seed=int(s)) for s in seeds]
        outs = self.engine.chat([[{"role": "user", "content": p}] for p in prompts], params, use_tqdm=False)
        return [Reply(o.outputs[0].text, TokenUsage(len(o.prompt_token_ids), len(o.outputs[0].token_ids))) for o in outs]


def vllm_row(a, tok, clip, bank, device, samples: int) -> dict | None:
    """Only where vLLM is importable and a GPU is there (its CPU build runs no dummy 8B here); run
    last, after the transformers model is freed."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("vLLM is not importable here: the vllm phase is skipped", file=sys.stderr)
        return None
    if device != "cuda":
        return None
    from transformers import LlamaConfig

    folder = Path(tempfile.mkdtemp(prefix="llama31-dummy-"))
    LlamaConfig(**LLAMA_31_8B, torch_dtype="bfloat16").save_pretrained(folder)
    tok.save_pretrained(folder)
    engine = VLLMForced(str(folder), a.new_tokens, {"gpu_memory_utilization": 0.45, "max_model_len": 8192})
    return our_loop(engine, BenchScorer(clip, tok, device), a, bank, device, "ours, vLLM (all samples per step)",
                    samples)
