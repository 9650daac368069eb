"""GEPA-style reflective evolution (Agrawal et al., 2025, "GEPA: Reflective Prompt Evolution Can Outperform
Reinforcement Learning"; ``dspy.GEPA``) in this loop. A sample keeps a Pareto pool: among its ``pool`` best
candidates by the scorer, those no other beats on every objective (the scorer's best always first, then the
rest of the top by score up to ``loop.keep``). The objectives are the scorer's score (each of a pair-valued
scorer's two) and, with ``brevity``, a candidate's length in words, fewer being better: the captioning
prompts' own second ask. Each step the LLM sees the pool with every objective's value, reflects in one line
on what the best attempts share and what the others miss, then writes new candidates (a line that starts
with the reflection is never a candidate). ``reflect: false`` drops the reflection ask: SmolLM2-135M answers
it with reflections alone (every reply on 3 bundled photos had no candidate), a larger LLM is needed for it.

Not GEPA's own (said in the README's strategy table): GEPA's objectives are per-example task scores over a
training set, for one prompt that serves many examples; here the candidates are one sample's texts and the
objectives that sample's scores. A held-out judge as an objective needs a second scorer in the loop: not yet."""

from __future__ import annotations

import re
from typing import Callable

import numpy as np

from mils.engine.prompts import PromptTemplate, format_score
from mils.engine.records import Value
from mils.engine.strategy import PromptView, Scored, Strategy, medium_of
from mils.registry import register

PROMPT = """You are improving short {medium} descriptions. Each attempt below is scored on {objectives}; none of them is best on everything at once:

{attempts}

{reflect}Write {requested} new descriptions that keep what works and fix what does not. Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and keep them short (up to 15 words).
"""


REFLECTION = re.compile(r"^\W*(\d+\W+)?reflections?\b", re.IGNORECASE)  # "Reflection:", "1. Reflections: ..."


REFLECT = ('First write one line that starts with "Reflection:" and says what the best-scoring attempts share and what '
           'the others miss. Then: ')


def dominates(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    """``a`` is at least as good as ``b`` on every objective and better on one (larger is better)."""
    return all(x >= y for x, y in zip(a, b)) and any(x > y for x, y in zip(a, b))


@register("strategy", "gepa")
class Gepa(Strategy):
    title = "GEPA-style"

    def __init__(self, pool: int = 50, brevity: bool = True, reflect: bool = True) -> None:
        self.pool, self.brevity, self.reflect = pool, brevity, reflect

    def objectives(self, text: str, value: Value, higher_is_better: bool) -> tuple[float, ...]:
        """A candidate's objectives, each turned so that larger is better."""
        sign = 1.0 if higher_is_better else -1.0
        scores = tuple(sign * float(v) for v in (value if isinstance(value, tuple) else (value,)))
        return scores + ((-float(len(text.split())),) if self.brevity else ())

    def kept(self, pool: Callable[[int], tuple[str, Value]], scores: np.ndarray, keep: int,
             higher_is_better: bool, first: Scored | None = None) -> list[int]:
        order = np.argsort(-scores if higher_is_better else scores, kind="stable").tolist()
        top = order[: self.pool]
        points = {i: self.objectives(*pool(i), higher_is_better) for i in top}
        front = [i for i in top if not any(dominates(points[j], points[i]) for j in top)]
        chosen = list(dict.fromkeys([order[0], *front]))  # the scorer's best leads: the run's caption
        return (chosen + [i for i in order if i not in set(chosen)])[:keep]

    def reply(self, text: str) -> str:
        """The reflection is not a candidate: every line that starts with it is dropped (a small LLM writes several)."""
        return "\n".join(line for line in text.splitlines() if not REFLECTION.match(line))

    def prompt(self, view: PromptView, template: PromptTemplate, requested: int, extra: dict[str, str]) -> str:
        medium = medium_of(template)
        direction = "higher" if view.higher_is_better else "lower"
        objectives = f"its score for the {medium} ({direction} is better)" + (
            " and its length in words (fewer is better)" if self.brevity else "")
        attempts = "\n".join(f"score {format_score(value)}, {len(text.split())} words: {text}" for text, value in view.kept)
        return PROMPT.format(medium=medium, objectives=objectives, attempts=attempts, requested=requested,
                             reflect=REFLECT if self.reflect else "")
