"""How the loop spends a sample's steps: the strategy extension point (``loop.strategy``).

The loop (mils/engine/loop.py) does the work every strategy shares: step 0 over the initial candidates,
one request per active sample per step, parsing, scoring, the kept set, the ledger and the budget stop. A
:class:`Strategy` decides what differs between the training-free methods compared here: how many steps a
sample takes, what it keeps (the top-K, or e.g. a Pareto pool), what each step's prompt says (which scored
candidates it lists, in what order, their scores written how; or a wording of its own), how a step's replies
are made (a strategy may steer the decoding) and how a reply is cleaned before parsing. MILS is the base class;
each other strategy is one module of :mod:`mils.engine.strategies`, registered by name, and a plugin adds one
the same way (``@register("strategy", NAME)``). A strategy's options are ``loop.strategy_options``, checked
against its constructor when the config is read, before any model loads.
"""

from __future__ import annotations

import importlib
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from mils.engine.prompts import PromptTemplate
from mils.engine.records import Value
from mils.protocols import Generator, Guide
from mils.registry import checked_options, create, get_factory, known, register

Scored = list[tuple[str, Value]]


class ScorerGuide:
    """A sample's scores of partial texts, larger better (what a guided decode steers by), counted: the
    texts it scored and the seconds it took are the step's scorer forwards, not LLM time, in the ledger."""

    def __init__(self, score: Callable[[Sequence[str]], list[float]]) -> None:
        self._score, self.texts, self.seconds = score, 0, 0.0

    def __call__(self, texts: Sequence[str]) -> list[float]:
        start = time.perf_counter()
        values = self._score(texts)
        self.seconds += time.perf_counter() - start
        self.texts += len(texts)
        return values


def standardised(values: np.ndarray) -> np.ndarray:
    """``values`` as z-scores (all zeros where they do not vary): how a strategy weighs two criteria."""
    spread = float(np.std(values))
    return (values - np.mean(values)) / spread if spread > 0 else np.zeros_like(values, dtype=float)


@dataclass(frozen=True)
class PromptView:
    """What a sample's next prompt may list: ``kept`` (its top-K, best first), ``shown`` (the explored set the
    official exploration shows instead, or None), ``first`` (what step 1's prompt listed)."""

    kept: Scored
    shown: Scored | None
    first: Scored
    higher_is_better: bool


@dataclass(frozen=True)
class Listing:
    """A prompt's scored examples in the order written, and how a score is written (None: 3 decimals)."""

    scored: Scored
    score_text: Callable[[Value], str] | None = None


@register("strategy", "mils")
class Strategy:
    """MILS (Ashutosh et al., 2025): every step's prompt lists the sample's kept set (or the explored set the
    official exploration shows), best first, scores with 3 decimals; the LLM's new candidates join the pool."""

    title = "MILS"  # how a report names it
    needs: frozenset[str] = frozenset()  # what it runs on only: "lockstep", "transformers", "two-tower scorer"

    def steps(self, steps: int) -> int:
        """How many generation steps a sample takes when ``loop.steps`` is ``steps`` (a budget may stop it sooner)."""
        return steps

    def listing(self, view: PromptView) -> Listing:
        return Listing(view.shown or view.kept)

    def kept(self, pool: Callable[[int], tuple[str, Value]], scores: np.ndarray, keep: int,
             higher_is_better: bool, first: Scored | None = None) -> list[int] | None:
        """The candidates a sample keeps, best first, as indices of ``pool`` (``scores``: each one's aggregate
        score; ``first``: what the sample's step 1 listed, its initial top-K: None at step 0); None: the loop's
        top-K (with its exploration)."""
        return None

    def generate(self, generator: Generator, prompts: Sequence[str], seeds: Sequence[int],
                 guides: Sequence[Guide]) -> list[str]:
        """A step's replies (``guides[i]``: prompt i's sample's scores of partial lines, for a strategy that
        steers the decoding itself)."""
        return generator.generate(prompts, seeds)

    def reply(self, text: str) -> str:
        """A reply as the parser gets it (a strategy whose prompt asks for more than candidates drops that here)."""
        return text

    def prompt(self, view: PromptView, template: PromptTemplate, requested: int, extra: dict[str, str]) -> str:
        """A step's prompt: the task's meta-prompt filled with :meth:`listing` (a strategy with its own
        wording, e.g. a concept prompt, writes it here)."""
        listing = self.listing(view)
        return template.render(listing.scored, requested, listing.score_text, **extra)


def medium_of(template: PromptTemplate) -> str:
    """What a captioning task's samples are (image, video, audio), for a strategy's own wording; else "sample"."""
    return template.name.split("_")[0] if template.name.endswith("_captioning") else "sample"


def strategy_title(name: str) -> str:
    """How a report names strategy ``name`` (its own name where this process does not know it: a plugin's)."""
    importlib.import_module("mils.engine.strategies")
    return getattr(get_factory("strategy", name), "title", name) if name in known("strategy") else name


def get_strategy(name: str, options: dict[str, Any] | None = None) -> Strategy:
    """The strategy ``name`` built with its options (an unknown name or option is an InputError)."""
    importlib.import_module("mils.engine.strategies")  # the built-in strategies register on first use
    return create("strategy", name, **checked_options("strategy", name, dict(options or {}), "loop.strategy_options"))
