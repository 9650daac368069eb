"""The decode phase: our decoding loop against transformers' ``generate`` on the same prompts, with
prefill and decode timed apart after a warm-up, and what a padded batch spends on work it throws
away (graph steps over the whole reserved length, rows that finished before their batch)."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.gpu_models import chat_batch, hf_generate, ours_generator, paper_prompts, reset_peak, sync


def _timed(device: str, fn) -> float:
    sync(device)
    start = time.perf_counter()
    fn()
    sync(device)
    return time.perf_counter() - start


def _runners(model, tok, a, device: str, batch: int):
    """name -> (prefill + first token, whole reply) callables over the same ``batch`` prompts."""
    prompts, seeds = paper_prompts(batch, a.keep, a.requested), list(range(batch))
    first = ours_generator(model, tok, 1, max_batch=batch)
    whole = ours_generator(model, tok, a.decode_tokens, max_batch=batch)
    enc = chat_batch(tok, prompts, device)
    return {"ours": (lambda: first.generate(prompts, seeds), lambda: whole.generate(prompts, seeds)),
            "generate": (lambda: hf_generate(model, tok, enc, 1), lambda: hf_generate(model, tok, enc, a.decode_tokens))}


def warm_up(model, tok, a, device: str) -> None:
    """Kernels, allocator and graph pools warmed on the smallest batch: the first timed run pays no start-up."""
    for prefill, whole in _runners(model, tok, a, device, min(a.batches)).values():
        prefill()
        whole()
    sync(device)


def decode_rows(model, tok, a, device: str):
    """Per batch size and per method: seconds to prefill (and draw the first token), ms per decode
    step and decode-only tok/s over the other ``decode_tokens - 1`` tokens, peak GiB."""
    import torch

    warm_up(model, tok, a, device)
    steps = a.decode_tokens - 1
    for batch in a.batches:
        row = {"phase": "decode", "batch": batch, "new_tokens": a.decode_tokens}
        for name, (prefill, whole) in _runners(model, tok, a, device, batch).items():
            reset_peak(device)
            try:
                first = _timed(device, prefill)
                total = _timed(device, whole)
            except torch.OutOfMemoryError as err:
                row[f"{name}_error"] = f"out of memory: {str(err).splitlines()[0][:120]}"
                continue
            decode = max(total - first, 1e-9)
            row.update({f"{name}_prefill_s": first, f"{name}_ms_per_step": 1000 * decode / steps,
                        f"{name}_decode_tokens_per_s": batch * steps / decode, f"{name}_seconds": total})
            if device.startswith("cuda"):
                row[f"{name}_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        yield row


def padded_work(prompt_tokens: int, new_tokens: int, rows: int, shortest: int, longest: int, seed: int = 0) -> dict:
    """What a padded batch decodes for nothing, at these shapes (the 'speed work' row):

    - ``graph_extra_kv_read``: a captured step attends over prompt + the whole reply length, an eager
      step over what is filled; the extra KV read over a reply, as a share of what is needed;
    - ``finished_rows_share``: a batch decodes until its longest reply ends; the share of row-steps
      spent on rows already finished, for reply lengths uniform in [shortest, longest] (real
      Llama-3.1 replies of 50 captions: ~600-900 tokens), averaged over 200 batches of ``rows``."""
    filled = np.arange(1, new_tokens + 1) + prompt_tokens
    graph_extra = (prompt_tokens + new_tokens) * new_tokens / filled.sum() - 1
    rng = np.random.default_rng(seed)
    lengths = rng.integers(shortest, longest + 1, size=(200, rows))
    finished = 1 - lengths.mean(1) / lengths.max(1)
    return {"phase": "padding", "prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "rows": rows,
            "reply_lengths": [shortest, longest], "graph_extra_kv_read": float(graph_extra),
            "finished_rows_share": float(finished.mean())}
