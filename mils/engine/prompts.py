"""The MILS meta-prompts: how one is filled (:class:`PromptTemplate`), the captioning wording the three
captioning tasks share, the cross-modal combine prompt. A task's own prompt lives in its module
(:mod:`mils.config.tasks`) and is registered under the task's name.

Each template carries the same instructions as the prompts released with the paper
(Ashutosh et al., 2025, ``prompts/*.txt``): what to produce, the scored examples best-first,
how many new candidates to write, the freedom to recombine and to be wrong, one numbered
candidate per line, and a length limit. Scores are written with 3 decimals, ``0.123: text``;
tasks with two scores (style transfer) write ``0.123, 0.456: text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

from mils.engine.records import Value
from mils.registry import get_factory

_CAPTIONING = """You need to provide a short {medium} description.
I am providing to you a list of short {medium} descriptions and scores.
Higher score means that the {medium} description characterizes the {medium} better:

{{descriptions}}

Generate additional {{requested_number}} short {medium} descriptions that you think that will maximize the score and fully capture the {medium}.
Be concrete and try to find elements that are unique to this {medium}.
You can introduce new elements to the descriptions, combine unique elements and objects from provided descriptions to form new descriptions, rephrase individual descriptions, drop elements, or simplify descriptions.
Be creative and don't be afraid to come up with erroneous descriptions. Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and try to keep them {length}.
"""

_COMBINE = """You are given a description of an image and a description of a sound.

Image: {image_description}
Sound: {audio_description}

Write one prompt for an image generation model that combines both: the scene of the image, changed so that it also shows the source or the setting of the sound. Reply with the prompt alone, on one line, in less than 77 words.
"""


@dataclass(frozen=True)
class PromptTemplate:
    """A meta-prompt with ``{descriptions}`` and ``{requested_number}`` slots (and task extras)."""

    name: str
    text: str
    official: bool = False  # filled as the MILS code fills its prompt files (see render)

    def render(
        self, scored: Sequence[tuple[str, Value]], requested: int,
        score_text: Callable[[Value], str] | None = None, **extra: str
    ) -> str:
        """Fill the template; ``scored`` is in the order written (best first, unless the strategy says
        otherwise), each score written by ``score_text`` (default: 3 decimals). An official template is
        filled the MILS code's way: every example line ends in a newline and the slots are replaced as
        plain text (so other braces in a prompt file are left alone)."""
        write = score_text or format_score
        if self.official:
            lines = "".join(f"{write(score)}: {text}\n" for text, score in scored)
            out = self.text.replace("{descriptions}", lines).replace("{requested_number}", str(requested))
            for key, value in extra.items():
                out = out.replace("{" + key + "}", value)
            return out
        lines = "\n".join(f"{write(score)}: {text}" for text, score in scored)
        return self.text.format(descriptions=lines, requested_number=requested, **extra)


def format_score(score: Value) -> str:
    if isinstance(score, tuple):
        return ", ".join(f"{float(s):.3f}" for s in score)
    return f"{float(score):.3f}"


def captioning_prompt(medium: str, length: str) -> str:
    """The captioning meta-prompt for a ``medium`` (image, video, audio), its captions kept ``length``."""
    return _CAPTIONING.format(medium=medium, length=length)


COMBINE_PROMPT = _COMBINE
"""The cross-modal arithmetic prompt: ``{image_description}`` and ``{audio_description}``."""


def get_template(name: str) -> PromptTemplate:
    """The template registered as ``name`` (unknown names list the known ones)."""
    return get_factory("prompt", name)()
