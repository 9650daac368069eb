"""Best-of-N: every step asks again from the first prompt (the initial candidates' top-K, no feedback), seeded
per step; the best of everything asked is kept. At MILS's budget it is N = steps x requested candidates."""

from __future__ import annotations

from mils.engine.strategy import Listing, PromptView, Strategy
from mils.registry import register


@register("strategy", "best_of_n")
class BestOfN(Strategy):
    title = "best-of-N"

    def listing(self, view: PromptView) -> Listing:
        return Listing(view.first)
