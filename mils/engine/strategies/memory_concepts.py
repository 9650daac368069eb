"""MeaCap-style memory prompting (Zeng et al., "MeaCap: Memory-Augmented Zero-shot Image Captioning", CVPR
2024; its training-free variant MeaCap_TF). The initial candidates are a caption memory (``bank: {path:
MEMORY}``: step 0 retrieves each sample's top-K by the scorer's image-text similarity, as for any bank; `mils
memory` builds one from a caption corpus). Each step the LLM is not shown scored captions: it is given the key
concepts of the top ``retrieved`` captions kept so far (their content words, weighted by rank: ``concepts`` of
them) and writes sentences that use them; the scorer ranks those as in MILS, and the concepts of the next step
come from the new top. With ``loop.steps: 1`` this is MeaCap's single pass.

Not MeaCap's own parts (said in the README's strategy table): its scene-graph concept parser (content words
here), its concept filter by image-text similarity, its keyword-to-sentence model (CBART; the LLM here) and its
final fusion of image-text and text-text similarity (the scorer alone ranks here)."""

from __future__ import annotations

import re
from collections import defaultdict

from mils.engine.prompts import PromptTemplate
from mils.engine.strategy import PromptView, Strategy, medium_of
from mils.registry import register

PROMPT = """You need to provide a short {medium} description.
Descriptions of similar {medium}s, retrieved from a large caption memory, share these key concepts: {concepts}.

Generate {requested} short {medium} descriptions that use the concepts that fit together (you may drop some and add details). Be concrete. Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and keep them short (up to 15 words).
"""

# words every caption memory repeats and that name no content of the sample
GENERIC = frozenset("""a an the and or of in on at to for with without by from into onto over under near its it is are
was were be being been this that these those there here some many several one two three four five other another
very while as up down out off close close-up image images photo photos picture pictures view shot showing shows shown
depicting depicts featuring features scene background foreground against front side top left right""".split())


def key_concepts(texts: list[str], count: int) -> list[str]:
    """The ``count`` content words of ``texts`` (best first) with the most weight: a word gets 1/rank from each
    text it appears in, so the best caption's words lead and a word many captions share rises."""
    weight: dict[str, float] = defaultdict(float)
    first: dict[str, int] = {}
    for rank, text in enumerate(texts, start=1):
        for word in dict.fromkeys(re.findall(r"[a-z][a-z'-]+", text.lower())):
            if word not in GENERIC and len(word) > 2:
                weight[word] += 1.0 / rank
                first.setdefault(word, len(first))
    return sorted(weight, key=lambda w: (-weight[w], first[w]))[:count]


@register("strategy", "memory_concepts")
class MemoryConcepts(Strategy):
    title = "MeaCap-style memory"

    def __init__(self, retrieved: int = 5, concepts: int = 6) -> None:
        self.retrieved, self.concepts = retrieved, concepts

    def prompt(self, view: PromptView, template: PromptTemplate, requested: int, extra: dict[str, str]) -> str:
        top = [text for text, _ in view.kept[: self.retrieved]]  # the kept set is best first
        return PROMPT.format(medium=medium_of(template), concepts=", ".join(key_concepts(top, self.concepts)), requested=requested)
