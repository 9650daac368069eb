"""What annotators are asked: the two axes of the paper's AMT studies, JUICE-style.

Each question is forced choice (left or right), followed by ticking the reasons for the pick.
The prompt (or the image being captioned) is shown on the faithfulness axis only for
text-to-image; a caption's image is always shown, since faithfulness is judged against it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict, Field

RATER_NAME = re.compile(r"[\w .@-]{1,64}")  # a rater's name on the judging page and in invites (use fullmatch)


@dataclass(frozen=True)
class Axis:
    name: str
    question: str
    reasons: tuple[str, ...]
    show_prompt: bool


IMAGE_AXES = {
    "quality": Axis(
        "quality", "Which image has the better visual quality?",
        ("more detailed", "more realistic", "better composition", "fewer artefacts", "more aesthetic colours"),
        show_prompt=False,
    ),
    "faithfulness": Axis(
        "faithfulness", "Which image matches the text better?",
        ("shows the objects in the text", "correct counts", "correct colours or attributes",
         "correct spatial relations", "matches the style asked for"),
        show_prompt=True,
    ),
}

CAPTION_AXES = {
    "faithfulness": Axis(
        "faithfulness", "Which description matches the picture better?",
        ("names the right objects", "fewer invented details", "right colours or attributes", "right actions",
         "right setting"),
        show_prompt=True,
    ),
    "quality": Axis(
        "quality", "Which description is better written?",
        ("more fluent", "more specific", "more concise", "no repetition", "more natural"),
        show_prompt=True,
    ),
}

CHOICES = ("left", "right")


class BatchSettings(BaseModel):
    """The pipeline's judging stage: which outputs are compared and how the batch is built.

    ``against``: ``step0`` (the initial-bank retrieval baseline of the same run), or a results
    folder or a JSON file id -> text of another system (its final outputs).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    against: str = "step0"
    axes: tuple[str, ...] = ("faithfulness", "quality")
    names: tuple[str, str] = ("baseline", "mils")
    assignments: int = Field(3, ge=1)
    catch: float = Field(0.1, ge=0, lt=1)
    seed: int = 0
