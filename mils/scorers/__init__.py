"""Scorers, registered by name (``open_clip``, ``concept``)."""

from mils.scorers.concept import ConceptScorer, concept_scorer
from mils.scorers.open_clip_scorer import OpenClipScorer, open_clip_scorer

__all__ = ["ConceptScorer", "OpenClipScorer", "concept_scorer", "open_clip_scorer"]
