"""Scorers, registered by name: open_clip, concept, video_frames, xclip, clap, imagebind,
pickscore_t2i, style_transfer."""

from mils.scorers.audio import ClapScorer, clap_scorer
from mils.scorers.concept import ConceptScorer, concept_scorer
from mils.scorers.open_clip_scorer import OpenClipScorer, open_clip_scorer
from mils.scorers.video import FrameAveragingScorer, XClipScorer, video_frames_scorer, xclip_scorer

__all__ = [
    "ClapScorer", "ConceptScorer", "FrameAveragingScorer", "OpenClipScorer", "XClipScorer", "clap_scorer",
    "concept_scorer", "open_clip_scorer", "video_frames_scorer", "xclip_scorer",
]
