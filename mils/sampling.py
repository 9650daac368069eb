"""LLM sampling settings: defined and validated once (the config's generator section extends them)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class SamplingOptions(BaseModel):
    """How replies are sampled (the paper's defaults). The one definition and validation: the run
    config's ``generator`` section extends this model."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(0.5, gt=0)  # > 0: greedy decoding repeats itself
    top_p: float = Field(0.9, gt=0, le=1)
    max_new_tokens: int = Field(1024, ge=1)
