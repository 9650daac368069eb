"""Scorer-guided decoding (the ZeroCap / ZerAuCap family: Tewel et al., CVPR 2022; Salewski et al., 2023): the
scorer steers the LLM's token choices during each decode instead of only ranking whole candidates afterwards.
MILS's loop and prompt otherwise: every step's replies are decoded under the sample's scorer (``width``
continuations scored per token, ``weight`` on the standardised scores; mils/generators/guided.py), then parsed,
scored and kept as in MILS. Needs an in-process backend (transformers), a two-tower scorer (a text is scored
without rendering anything) and the lockstep schedule: refused when the config is read otherwise.

Not ZeroCap's own: it edits the LM's hidden state by gradient steps toward CLIP; this re-weights the top
``width`` next tokens (the lighter variant of its family, as in MAGIC's decoding)."""

from __future__ import annotations

from typing import Sequence

from mils.engine.strategy import Strategy
from mils.errors import ComponentError
from mils.protocols import Generator, Guide, GuidedGenerator
from mils.registry import register


@register("strategy", "guided")
class Guided(Strategy):
    title = "scorer-guided decoding"
    needs = frozenset({"lockstep", "transformers", "two-tower scorer"})

    def __init__(self, width: int = 5, weight: float = 1.0) -> None:
        self.width, self.weight = width, weight

    def generate(self, generator: Generator, prompts: Sequence[str], seeds: Sequence[int],
                 guides: Sequence[Guide]) -> list[str]:
        if not isinstance(generator, GuidedGenerator):
            raise ComponentError(f"loop.strategy guided steers an in-process decode: {type(generator).__name__} "
                                 "has none (generator.backend: transformers)")
        return generator.generate_guided(prompts, seeds, guides, self.width, self.weight)
