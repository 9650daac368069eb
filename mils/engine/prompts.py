"""The MILS meta-prompts.

Each template carries the same instructions as the prompts released with the paper
(Ashutosh et al., 2025, ``prompts/*.txt``): what to produce, the scored examples best-first,
how many new candidates to write, the freedom to recombine and to be wrong, one numbered
candidate per line, and a length limit. Scores are written with 3 decimals, ``0.123: text``;
tasks with two scores (style transfer) write ``0.123, 0.456: text``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from mils.engine.records import Value
from mils.errors import InputError, MissingInputError
from mils.registry import get_factory, register

_CAPTIONING = """You need to provide a short {medium} description.
I am providing to you a list of short {medium} descriptions and scores.
Higher score means that the {medium} description characterizes the {medium} better:

{{descriptions}}

Generate additional {{requested_number}} short {medium} descriptions that you think that will maximize the score and fully capture the {medium}.
Be concrete and try to find elements that are unique to this {medium}.
You can introduce new elements to the descriptions, combine unique elements and objects from provided descriptions to form new descriptions, rephrase individual descriptions, drop elements, or simplify descriptions.
Be creative and don't be afraid to come up with erroneous descriptions. Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and try to keep them {length}.
"""

_TEXT_TO_IMAGE = """You need to expand and rephrase the provided description for image generation to make the best image, by maximizing the image score:

The description is: {init_description}

Here are some example rephrases and the corresponding image scores:

{descriptions}

Generate additional {requested_number} descriptions that will maximize the score. Be concrete and come up with different descriptions with various guesses for the possible way to rephrase and expand it, in a way that will maximize the score.
You can introduce new elements to the descriptions, combine unique elements and phrasings from provided descriptions to form new ones, drop description parts, or simplify them.
Be creative and don't be afraid to come up with erroneous descriptions. Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and keep them short (less than 77 words).
"""

_STYLE_TRANSFER = """You need to generate instructions for image editing that minimize a pair of scores:

I am providing you a list of example editing instructions and their pairs of scores.

{descriptions}

Generate additional {requested_number} editing instructions. Be concrete and come up with different instructions with various guesses for the possible edits that will minimize both of the scores.
You can introduce new styles to the instructions, combine unique styles and textures from provided instructions to form new instructions, rephrase individual instructions, drop instruction parts, or simplify them.
Be creative and don't be afraid to come up with erroneous editing instructions. Put each instruction in a different line, with a counter at the beginning (e.g. "1. ..."), and keep them short (less than 50 words).
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
        self, scored: Sequence[tuple[str, Value]], requested: int, **extra: str
    ) -> str:
        """Fill the template; ``scored`` is ordered best-first by the caller. An official
        template is filled the MILS code's way: every example line ends in a newline and the
        slots are replaced as plain text (so other braces in a prompt file are left alone)."""
        if self.official:
            lines = "".join(f"{format_score(score)}: {text}\n" for text, score in scored)
            out = self.text.replace("{descriptions}", lines).replace("{requested_number}", str(requested))
            for key, value in extra.items():
                out = out.replace("{" + key + "}", value)
            return out
        lines = "\n".join(f"{format_score(score)}: {text}" for text, score in scored)
        return self.text.format(descriptions=lines, requested_number=requested, **extra)


def format_score(score: Value) -> str:
    if isinstance(score, tuple):
        return ", ".join(f"{float(s):.3f}" for s in score)
    return f"{float(score):.3f}"


def _captioning(medium: str, length: str) -> str:
    return _CAPTIONING.format(medium=medium, length=length)


TEMPLATES = {
    "image_captioning": PromptTemplate(
        "image_captioning", _captioning("image", "very short (up to 10 words)")
    ),
    "video_captioning": PromptTemplate(
        "video_captioning", _captioning("video", "short up to 20-25 words")
    ),
    "audio_captioning": PromptTemplate(
        "audio_captioning", _captioning("audio", "short (under 20 words)")
    ),
    "text_to_image": PromptTemplate("text_to_image", _TEXT_TO_IMAGE),
    "style_transfer": PromptTemplate("style_transfer", _STYLE_TRANSFER),
}

for _name, _template in TEMPLATES.items():
    register("prompt", _name)(lambda _t=_template: _t)

COMBINE_PROMPT = _COMBINE
"""The cross-modal arithmetic prompt: ``{image_description}`` and ``{audio_description}``."""


def get_template(name: str) -> PromptTemplate:
    """The template registered as ``name`` (unknown names list the known ones)."""
    return get_factory("prompt", name)()


def prompt_text(task: str, prompts: str = "suite") -> str | None:
    """The text ``prompts`` gives ``task``: None for this suite's own template (``suite``), the
    official MILS prompt (``official``), or the official file name read from a folder (a path)."""
    from mils.engine.official_prompts import OFFICIAL_FILES, OFFICIAL_PROMPTS

    if prompts == "suite":
        return None
    if task not in OFFICIAL_FILES:
        raise InputError(f"no official prompt for task {task!r}; it has: {', '.join(OFFICIAL_FILES)}")
    if prompts == "official":
        return OFFICIAL_PROMPTS[task]
    path = Path(prompts).expanduser() / OFFICIAL_FILES[task]
    if not path.is_file():
        raise MissingInputError(f"prompt file for {task} not found: {path} (a --prompts folder holds files named as "
                                f"in the MILS repository: {', '.join(OFFICIAL_FILES.values())})")
    return path.read_text(encoding="utf-8")


def template_for(task: str, prompts: str = "suite") -> PromptTemplate:
    """The meta-prompt a run uses for ``task`` (``prompts``: see :func:`prompt_text`)."""
    base = get_template(task)
    text = prompt_text(task, prompts)
    return base if text is None else PromptTemplate(task, text, official=True)
