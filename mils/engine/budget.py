"""What one sample may spend on its steps, and what it has spent (its cost ledger)."""

from __future__ import annotations

from typing import Sequence

from pydantic import BaseModel, ConfigDict, Field, model_validator

from mils.engine.records import StepCost


class Budget(BaseModel):
    """What one sample may spend on steps 1.. (the bank's step 0 is free to every strategy): exactly one
    of generated tokens, LLM seconds or scorer calls (candidates scored). A sample stops after the
    step that reaches it, so every strategy stops at the same spend, within one request."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    generated_tokens: int | None = Field(None, ge=1)
    llm_seconds: float | None = Field(None, gt=0)
    scorer_calls: int | None = Field(None, ge=1)

    @model_validator(mode="after")
    def _one(self) -> "Budget":
        if sum(v is not None for v in (self.generated_tokens, self.llm_seconds, self.scorer_calls)) != 1:
            raise ValueError("a budget is exactly one of generated_tokens, llm_seconds, scorer_calls")
        return self

    @property
    def kind(self) -> str:
        return next(k for k in ("generated_tokens", "llm_seconds", "scorer_calls") if getattr(self, k) is not None)

    @property
    def limit(self) -> float:
        return float(getattr(self, self.kind))


def spent(cost: Sequence[StepCost], kind: str) -> float:
    """A sample's spend of ``kind`` on steps 1.. (its ledger)."""
    field_name = {"generated_tokens": "generated_tokens", "llm_seconds": "llm_seconds",
                  "scorer_calls": "candidates_scored"}[kind]
    return float(sum(getattr(c, field_name) or 0 for c in cost if c.step > 0))
