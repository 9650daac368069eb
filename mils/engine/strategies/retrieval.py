"""Retrieval only: step 0 alone, the best of the initial candidates (the caption bank's, or a memory's);
no LLM call."""

from __future__ import annotations

from mils.engine.strategy import Strategy
from mils.registry import register


@register("strategy", "retrieval")
class Retrieval(Strategy):
    title = "retrieval"

    def steps(self, steps: int) -> int:
        return 0
