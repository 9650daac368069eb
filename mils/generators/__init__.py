"""Generator backends, registered by name (``transformers``, ``vllm``)."""

from __future__ import annotations

from pathlib import Path

from mils.generators.transformers_llm import TransformersGenerator
from mils.registry import register
from mils.sampling import SamplingOptions

_SAMPLING = set(SamplingOptions.model_fields)


@register("generator", "transformers")
def transformers_generator(model: str, cache_dir: str | Path, device: str | None = None, dtype: str = "auto",
                           **sampling) -> TransformersGenerator:
    """``sampling``: temperature, top_p, max_new_tokens (SamplingOptions' defaults otherwise)."""
    return TransformersGenerator.load(model, cache_dir, SamplingOptions(**sampling), device=device, dtype=dtype)


@register("generator", "vllm")
def vllm_generator(model: str, cache_dir: str | Path, device: str | None = None, dtype: str = "auto", **options):
    """``options``: the sampling settings, and anything else goes to vLLM's engine."""
    from mils.generators.vllm_llm import VLLMGenerator

    sampling = SamplingOptions(**{k: v for k, v in options.items() if k in _SAMPLING})
    engine_args = {k: v for k, v in options.items() if k not in _SAMPLING}
    return VLLMGenerator(model, sampling, cache_dir, dtype=dtype, **engine_args)


__all__ = ["SamplingOptions", "TransformersGenerator", "transformers_generator", "vllm_generator"]
