"""One place lists the MILS tasks: each spec carries its modality, meta-prompt, initial candidates,
what the offline profile lacks for it, and how the CLI reaches it (the settings a task changes in a
profile live with the profile: :mod:`mils.config.profiles`).

Prompts, profiles, the config and the CLI all read this registry; an unknown task name gets the
registry's did-you-mean error.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mils.engine.prompts import PromptTemplate, get_template
from mils.registry import get_factory, known, register


@dataclass(frozen=True)
class TaskSpec:
    name: str
    modality: str  # what a sample is: image, video, audio, text (a prompt) or image pair
    verb: str  # the CLI command that runs it
    initial: str  # where the initial candidates come from
    offline_gap: str | None = None  # what the offline profile lacks (None: runs as is)
    scorer_flags: dict[str, str] = field(default_factory=dict)  # CLI flag -> scorer option
    # a task whose sample is a text to rewrite: the sample is its own (only) initial candidate and
    # fills this slot of the meta-prompt (no initial bank)
    sample_slot: str | None = None

    @property
    def template(self) -> PromptTemplate:
        return get_template(self.name)


TASKS = (
    TaskSpec("image_captioning", "image", "caption", "the image caption bank"),
    TaskSpec("video_captioning", "video", "caption", "the image caption bank"),
    TaskSpec("audio_captioning", "audio", "caption", "the audio caption bank (audio_descriptions_per_class_405_v2.txt)",
             offline_gap="an audio-text model (CLAP); give one with --scorer-model DIR (a saved ClapModel)",
             scorer_flags={"scorer_model": "model"}),
    TaskSpec("text_to_image", "text", "t2i", "the prompt itself",
             offline_gap="diffusion and PickScore weights; give --pipeline DIR and --reward DIR",
             scorer_flags={"pipeline": "pipeline", "reward": "reward", "reward_processor": "reward_processor"},
             sample_slot="init_description"),
    TaskSpec("style_transfer", "image pair", "style", "the edit-instruction bank (pix2pix_descriptions.txt)",
             offline_gap="an InstructPix2Pix pipeline; give --editor DIR",
             scorer_flags={"editor": "editor"}),
)

for _spec in TASKS:
    register("task", _spec.name)(lambda _s=_spec: _s)


def get_task(name: str) -> TaskSpec:
    """The spec of task ``name`` (an unknown name lists the known ones and the closest match)."""
    return get_factory("task", name)()


def task_names() -> list[str]:
    return known("task")


def captioning_task(modality: str) -> TaskSpec:
    """The captioning task for a sample modality (image, video or audio)."""
    return get_task(f"{modality}_captioning")
