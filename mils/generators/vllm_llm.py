"""Optional vLLM generator for GPU users (``pip install vllm``); same contract as transformers.

vLLM takes a seed per request, so replies are batch-independent without extra work.
"""

from __future__ import annotations

from typing import Sequence

from mils.errors import require
from mils.protocols import TokenUsage
from mils.sampling import SamplingOptions


class VLLMGenerator:
    def __init__(self, model: str, sampling: SamplingOptions | None = None, **engine_args) -> None:
        vllm = require("vllm", "the 'vllm' generator", "pip install vllm (GPU only), or pip install -e '.[vllm]'")
        self.llm = vllm.LLM(model=model, **engine_args)
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
        return [o.outputs[0].text for o in outputs]
