"""OPRO (Yang et al., "Large Language Models as Optimizers", ICLR 2024) in this loop: MILS's loop shape with
OPRO's meta-prompt choices. The scored history is written in ascending order (the best last, nearest the
instruction), at most ``shown`` of it, each score bucketed to a whole number 0-100 over the scores listed
(``buckets`` levels; the direction stays the scorer's: a lower-is-better score's best is 0). OPRO asks for
few candidates per step over many steps (8 per step in the paper): set ``loop.requested`` and ``loop.steps``
(or a budget) for that, e.g. ``loop: {strategy: opro, requested: 8, steps: 60, budget: {match: RUN}}``."""

from __future__ import annotations

from typing import Sequence

from mils.engine.records import Value
from mils.engine.strategy import Listing, PromptView, Strategy
from mils.errors import InputError
from mils.registry import register


@register("strategy", "opro")
class Opro(Strategy):
    title = "OPRO"

    def __init__(self, order: str = "ascending", buckets: int = 100, shown: int = 20) -> None:
        if order not in ("ascending", "descending"):
            raise InputError(f"loop.strategy_options.order: 'ascending' (OPRO's: the best last) or 'descending', "
                             f"not {order!r}")
        if buckets < 1 or buckets > 100 or shown < 1:
            raise InputError(f"loop.strategy_options: buckets is 1 to 100 and shown at least 1 (got {buckets}, {shown})")
        self.order, self.buckets, self.shown = order, buckets, shown

    def listing(self, view: PromptView) -> Listing:
        best = view.kept[: self.shown]  # the kept set is best first
        return Listing(best[::-1] if self.order == "ascending" else best, self._bucketed([v for _, v in best]))

    def _bucketed(self, values: Sequence[Value]):
        """Writes a score as its bucket, a whole number 0-100 (each of a pair's scores on its own)."""
        columns = list(zip(*[v if isinstance(v, tuple) else (v,) for v in values]))
        ranges = [(min(map(float, c)), max(map(float, c))) for c in columns]

        def level(x: float, lo: float, hi: float) -> int:
            fraction = (x - lo) / (hi - lo) if hi > lo else 1.0
            return round(round(fraction * self.buckets) * 100 / self.buckets)

        def text(value: Value) -> str:
            parts = value if isinstance(value, tuple) else (value,)
            return ", ".join(str(level(float(x), lo, hi)) for x, (lo, hi) in zip(parts, ranges))

        return text
