"""Generator backends, registered by name (``transformers``, ``vllm``)."""

from __future__ import annotations

from pathlib import Path

from mils.generators.transformers_llm import SamplingOptions, TransformersGenerator
from mils.registry import register


@register("generator", "transformers")
def transformers_generator(
    model: str, cache_dir: str | Path, temperature: float = 0.5, top_p: float = 0.9,
    max_new_tokens: int = 1024, device: str | None = None, dtype: str = "auto",
) -> TransformersGenerator:
    sampling = SamplingOptions(temperature, top_p, max_new_tokens)
    return TransformersGenerator.load(model, cache_dir, sampling, device=device, dtype=dtype)


@register("generator", "vllm")
def vllm_generator(
    model: str, cache_dir: str | Path, temperature: float = 0.5, top_p: float = 0.9,
    max_new_tokens: int = 1024, device: str | None = None, dtype: str = "auto", **engine_args,
):
    from mils.generators.vllm_llm import VLLMGenerator

    return VLLMGenerator(model, SamplingOptions(temperature, top_p, max_new_tokens), dtype=dtype, **engine_args)


__all__ = ["SamplingOptions", "TransformersGenerator", "transformers_generator", "vllm_generator"]
