"""Scorers, registered by name: open_clip, concept, video_frames, xclip, clap, imagebind,
pickscore_t2i, style_transfer, with_judge (a scorer and a judge as two objectives)."""

from mils.scorers.audio import ClapScorer, clap_scorer
from mils.scorers.concept import ConceptScorer, concept_scorer
from mils.scorers.open_clip_scorer import OpenClipScorer, open_clip_scorer
from mils.scorers.style import StyleTransferScorer, style_transfer_scorer
from mils.scorers.text_to_image import TextToImageScorer, pickscore_t2i_scorer
from mils.scorers.video import (
    FrameAveragingScorer,
    XClipScorer,
    video_frames_scorer,
    xclip_scorer,
)
from mils.scorers.with_judge import WithJudge, with_judge_scorer

__all__ = [
    "ClapScorer", "ConceptScorer", "FrameAveragingScorer", "OpenClipScorer", "XClipScorer", "clap_scorer",
    "StyleTransferScorer", "TextToImageScorer", "concept_scorer", "open_clip_scorer", "pickscore_t2i_scorer",
    "style_transfer_scorer", "video_frames_scorer", "xclip_scorer", "WithJudge", "with_judge_scorer",
]

from mils.exports import lazy

__getattr__, __dir__, __all__ = lazy(__name__, {  # the public names, by module
    "mils.scorers.weights": "unit_rows",
})
