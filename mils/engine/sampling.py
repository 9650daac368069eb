"""LLM sampling settings: defined and validated once (the config's generator section extends them)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class SamplingOptions(BaseModel):
    """How replies are sampled (the paper's defaults). The one definition and validation: the run
    config's ``generator`` section extends this model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.5, gt=0, allow_inf_nan=False)  # > 0: greedy decoding repeats itself
    top_p: float = Field(0.9, gt=0, le=1)
    max_new_tokens: int = Field(1024, ge=1)
    # top-k before top-p (None: none). The official code's HF generate applied transformers' default 50
    top_k: int | None = Field(None, ge=1)
    # when a reply ends: model (every end token of the model's generation config and tokenizer) or
    # official (the MILS code's [tokenizer.eos_token_id, <|eot_id|>], which replaces the config's list)
    stop_tokens: Literal["model", "official"] = "model"
    # the transformers backend's per-row random draws (engines draw their own): torch (one
    # torch.Generator per row, the draws of every run made before 'counter') or counter (a hash of
    # (row seed, position) on the device: the same draws on a CPU and a GPU, no host wait, CUDA graphs)
    rng: Literal["torch", "counter"] = "torch"


ADDED_LATER = {"top_k": None, "stop_tokens": "model", "rng": "torch"}  # options added after runs, banks and plugins existed


def without_later_defaults(options: dict) -> dict:
    """``options`` without the settings added later that are at their defaults: a bank generated
    before keeps its cache name, and a plugin's generator factory that does not take them works."""
    return {k: v for k, v in options.items() if not (k in ADDED_LATER and v == ADDED_LATER[k])}
