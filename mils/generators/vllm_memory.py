"""How much memory a vLLM engine of this suite takes, decided from the run, never from what is free.

vLLM reserves its KV cache up front. Left alone, it sizes the context from the model (SmolLM2:
8,192 tokens, Llama-3.1: 131,072) and, on a CPU build, the cache from a fraction of the memory it
happens to see, so the same run starts on one machine and not on another. Here the context is the
longest prompt the loop can build plus the reply (capped at the model's own limit), and on a CPU
the cache is an explicit amount: that context for every prompt in flight at once. On a GPU
``gpu_memory_utilization`` stays the user's option; the context is still the run's.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mils.errors import InputError
from mils.protocols import Workload

GIB = 1024**3
TOKENS_PER_WORD = 2  # a budget, not an average: English runs at ~1.3 tokens a word with these tokenizers
LINE_OVERHEAD = 8  # the score prefix ("0.123: ") and the newline of one shown candidate
RUNTIME_GIB = 1.0  # the engine process beside weights and cache (Python, torch, the server)
_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


@dataclass(frozen=True)
class EnginePlan:
    """The engine's context length and, on a CPU, its KV-cache space; with what they were made of."""

    max_model_len: int
    model_limit: int
    kv_bytes_per_token: int
    in_flight: int
    kv_cache_bytes: int | None  # None on a GPU (gpu_memory_utilization decides there)
    weights_gib: float

    @property
    def kv_cache_gib(self) -> float | None:
        return None if self.kv_cache_bytes is None else self.kv_cache_bytes / GIB

    @property
    def needed_gib(self) -> float:
        return self.weights_gib + (self.kv_cache_gib or 0.0) + RUNTIME_GIB

    def describe(self) -> str:
        kv = f", KV cache {self.kv_cache_gib:.2f} GiB ({self.in_flight} x {self.max_model_len} tokens)" \
            if self.kv_cache_gib is not None else ""
        return f"context {self.max_model_len} tokens (model limit {self.model_limit}){kv}"


def kv_bytes_per_token(config: Any, dtype: str) -> int:
    """Keys and values of one token over every layer (a transformers model config)."""
    heads = config.num_attention_heads
    kv_heads = getattr(config, "num_key_value_heads", None) or heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // heads
    return 2 * config.num_hidden_layers * kv_heads * head_dim * _BYTES.get(dtype, 2)


def prompt_bound(workload: Workload, count_tokens, max_new_tokens: int) -> int:
    """Tokens of the longest prompt the loop can build: the frame (counted exactly, with the chat
    template) plus ``lines`` candidates at their longest (a reply's length when words are uncapped)."""
    line = LINE_OVERHEAD + (TOKENS_PER_WORD * workload.words if workload.words else max_new_tokens)
    return count_tokens(workload.frame) + workload.lines * line


def _weights_gib(model_dir: str) -> float:
    path = Path(model_dir)
    if not path.is_dir():
        return 0.0  # a hub id: the engine downloads it; its size is not known here
    return sum(f.stat().st_size for f in path.glob("*.safetensors")) / GIB


def plan(model_dir: str, workload: Workload | None, max_new_tokens: int, dtype: str, on_gpu: bool,
         engine_args: dict[str, Any]) -> EnginePlan:
    """The context and cache for a run (``engine_args`` may fix either: ``max_model_len``,
    ``kv_cache_gib``); a context the model cannot take is refused here, before anything starts."""
    from transformers import AutoConfig, AutoTokenizer

    config = AutoConfig.from_pretrained(model_dir)
    config = getattr(config, "text_config", None) or config
    limit = int(getattr(config, "max_position_embeddings", 0) or 0) or 131072
    if engine_args.get("max_model_len"):
        context = int(engine_args["max_model_len"])
    elif workload is None:
        context = limit
    else:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)

        def count(text: str) -> int:
            return len(tokenizer.apply_chat_template([{"role": "user", "content": text}], tokenize=True,
                                                     add_generation_prompt=True, return_dict=False))

        context = min(limit, prompt_bound(workload, count, max_new_tokens) + max_new_tokens)
    if context > limit:
        raise InputError(f"generator.options.max_model_len {context} is more than the model's limit ({limit} tokens)")
    per_token = kv_bytes_per_token(config, "float32" if dtype == "auto" and not on_gpu else dtype)
    in_flight = max(1, workload.in_flight if workload else 1)
    if on_gpu:
        kv_bytes = None
    elif engine_args.get("kv_cache_gib") is not None:
        kv_bytes = int(float(engine_args["kv_cache_gib"]) * GIB)
    else:  # every prompt in flight at its longest, and 10% for the rounding to whole blocks
        kv_bytes = math.ceil(1.1 * per_token * context * in_flight)
    return EnginePlan(context, limit, per_token, in_flight, kv_bytes, _weights_gib(model_dir))


def available_gib() -> float | None:
    """MemAvailable of this machine (None where /proc/meminfo is not there)."""
    try:
        text = Path("/proc/meminfo").read_text()
    except OSError:
        return None
    found = re.search(r"^MemAvailable:\s+(\d+) kB", text, re.M)
    return int(found.group(1)) * 1024 / GIB if found else None


def check_fits(engine: EnginePlan, available: float | None) -> None:
    """Refuse, in one line, a CPU engine that this machine cannot hold now (checked, not sized, from
    the free memory: the sizes come from the run)."""
    if engine.kv_cache_bytes is None:
        return
    one = 1.1 * engine.kv_bytes_per_token * engine.max_model_len / GIB
    if engine.kv_cache_gib < one:
        raise InputError(f"vLLM's KV cache of {engine.kv_cache_gib:.2f} GiB cannot hold one prompt of "
                         f"{engine.max_model_len} tokens ({one:.2f} GiB): raise generator.options.kv_cache_gib "
                         "or lower generator.options.max_model_len")
    if available is not None and engine.needed_gib > available:
        raise InputError(
            f"vLLM needs {engine.needed_gib:.1f} GiB ({engine.describe()}, weights {engine.weights_gib:.1f} GiB, "
            f"~{RUNTIME_GIB:g} GiB for the engine) and this machine has {available:.1f} GiB available: lower "
            "batch_size (prompts in flight), generator.options.max_model_len or generator.options.kv_cache_gib, "
            "or free memory")


def engine_error(log_text: str) -> str | None:
    """The one line that explains an engine that would not start, from its log (None: not known)."""
    if found := re.search(r"Available memory on node \d+ \(([\d.]+)/[\d.]+ GiB\) on kv cache allocation is less "
                          r"than requested memory for kv \(([\d.]+) GiB\)", log_text):
        return (f"vLLM's KV cache of {found.group(2)} GiB does not fit in the {found.group(1)} GiB this machine has "
                "available: lower batch_size, generator.options.max_model_len or generator.options.kv_cache_gib, "
                "or free memory")
    if found := re.search(r"\(([\d.]+) GiB KV cache is needed, which is larger than the available KV cache "
                          r"memory \(([\d.]+) GiB\)", log_text):
        return (f"vLLM's KV cache holds {found.group(2)} GiB, one prompt at the engine's context needs "
                f"{found.group(1)} GiB: raise generator.options.kv_cache_gib or lower generator.options.max_model_len")
    errors = re.findall(r"^\S*(?:Error|Exception): (.+)$", log_text, re.M)
    return errors[-1].strip()[:300] if errors else None


def sized(engine_args: dict[str, Any], engine: EnginePlan) -> dict[str, Any]:
    """The engine's keyword arguments with the planned context and, on a CPU, the planned cache
    (``kv_cache_memory_bytes``, which the CPU build takes instead of a share of the free memory)."""
    args = {k: v for k, v in engine_args.items() if k != "kv_cache_gib"}
    args["max_model_len"] = engine.max_model_len
    if engine.kv_cache_bytes is not None:
        args.pop("gpu_memory_utilization", None)
        args["kv_cache_memory_bytes"] = engine.kv_cache_bytes
    return args
