"""One place lists the MILS tasks: each spec carries its modality, meta-prompt, initial candidates,
what the offline profile lacks for it, and how the CLI reaches it (the settings a task changes in a
profile live with the profile: :mod:`mils.config.profiles`).

Prompts, profiles, the config and the CLI all read this registry; an unknown task name gets the
registry's did-you-mean error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

from mils.engine.prompts import PromptTemplate, get_template
from mils.protocols import Sample
from mils.registry import get_factory, known, register


@dataclass(frozen=True)
class TaskSpec:
    """A task's whole definition. A plugin adds one with :func:`register_task` (examples/visual_qa.py)."""

    name: str
    modality: str  # what a sample is: image, video, audio, text (a prompt) or image pair
    verb: str  # the CLI command that runs it
    initial: str  # where the initial candidates come from
    offline_gap: str | None = None  # what the offline profile lacks (None: runs as is)
    scorer_flags: dict[str, str] = field(default_factory=dict)  # CLI flag -> scorer option
    # a task whose sample is a text to rewrite: the sample is its own (only) initial candidate and
    # fills this slot of the meta-prompt (no initial bank)
    sample_slot: str | None = None
    # a task's own meta-prompt ({descriptions}, {requested_number} and its slots), registered under its name
    prompt: str | None = None
    slots: Callable[[Sample], dict[str, str]] | None = None  # meta-prompt slots a sample fills (its fields)
    candidates: Callable[[Sample], Sequence[str]] | None = None  # a sample's own initial candidates, beside the bank
    defaults: dict[str, Any] = field(default_factory=dict)  # its settings in a profile that does not list it
    bank: bool = True  # False: a sample's own candidates are all its initial candidates (no bank is read)
    images: bool = False  # its candidates become images (rendered, edited): each step's best is kept in images/

    @property
    def template(self) -> PromptTemplate:
        return get_template(self.name)

    @property
    def uses_bank(self) -> bool:
        """False for a task whose samples bring all their initial candidates (text-to-image: itself)."""
        return self.bank and self.sample_slot is None

    def sample_slots(self, sample: Sample) -> dict[str, str]:
        own = {self.sample_slot: sample.media} if self.sample_slot else {}
        return {**own, **(self.slots(sample) if self.slots else {})}

    def own_candidates(self, sample: Sample) -> list[str]:
        own = [sample.media] if self.sample_slot else []
        return own + list(self.candidates(sample) if self.candidates else [])


def register_task(spec: TaskSpec) -> TaskSpec:
    """Make ``spec`` a task configs can name (``task: NAME``), with its own meta-prompt when it has one."""
    register("task", spec.name)(lambda: spec)
    if spec.prompt is not None:
        register("prompt", spec.name)(lambda: PromptTemplate(spec.name, spec.prompt))
    return spec


TASKS = (
    TaskSpec("image_captioning", "image", "caption", "the image caption bank"),
    TaskSpec("video_captioning", "video", "caption", "the image caption bank"),
    TaskSpec("audio_captioning", "audio", "caption", "the audio caption bank (audio_descriptions_per_class_405_v2.txt)",
             offline_gap="an audio-text model (CLAP); give one with --scorer-model DIR (a saved ClapModel)",
             scorer_flags={"scorer_model": "model"}),
    TaskSpec("text_to_image", "text", "t2i", "the prompt itself",
             offline_gap="diffusion and PickScore weights; give --pipeline DIR and --reward DIR",
             scorer_flags={"pipeline": "pipeline", "reward": "reward", "reward_processor": "reward_processor"},
             sample_slot="init_description", images=True),
    TaskSpec("style_transfer", "image pair", "style", "the edit-instruction bank (pix2pix_descriptions.txt)",
             offline_gap="an InstructPix2Pix pipeline; give --editor DIR",
             scorer_flags={"editor": "editor"}, images=True),
)

for _spec in TASKS:
    register_task(_spec)


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name`` (an unknown name lists the known ones and the closest match)."""
    return get_factory("task", name)()


def task_names() -> list[str]:
    return known("task")


def captioning_task(modality: str) -> TaskSpec:
    """The captioning task for a sample modality (image, video or audio)."""
    return get_task(f"{modality}_captioning")
