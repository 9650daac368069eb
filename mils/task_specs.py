"""One place lists the tasks: each spec carries its modality, meta-prompt, initial candidates,
the settings it changes in each profile, and how the CLI reaches it.

Prompts, profiles, the config and the CLI all read this registry; an unknown task name gets the
registry's did-you-mean error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from mils.prompts import PromptTemplate, get_template
from mils.registry import get_factory, known, register

_SIGLIP = {"name": "open_clip", "options": {"model": "ViT-SO400M-14-SigLIP", "pretrained": "webli"}}
_SMALL_LOOP = {"loop": {"steps": 3, "keep": 5, "requested": 5}}


@dataclass(frozen=True)
class TaskSpec:
    name: str
    modality: str  # what a sample is: image, video, audio, text (a prompt) or image pair
    verb: str  # the CLI command that runs it
    initial: str  # where the initial candidates come from
    paper: dict[str, Any] = field(default_factory=dict)  # what it changes in the paper profile
    offline: dict[str, Any] = field(default_factory=dict)  # ... in the offline profile
    offline_gap: str | None = None  # what the offline profile lacks (None: runs as is)
    scorer_flags: dict[str, str] = field(default_factory=dict)  # CLI flag -> scorer option

    @property
    def template(self) -> PromptTemplate:
        return get_template(self.name)

    def defaults(self, profile: str) -> dict[str, Any]:
        """The overrides this task applies to ``profile`` (the paper's per-task settings)."""
        return self.paper if profile == "paper" else self.offline


TASKS = (
    TaskSpec("image_captioning", "image", "caption", "the image caption bank"),
    TaskSpec("video_captioning", "video", "caption", "the image caption bank",
             # ViCLIP (the paper's video scorer) is in no library: SigLIP on 8 frames, averaged, instead
             paper={"scorer": {"name": "video_frames", "options": {"frames": 8, "image_scorer": _SIGLIP}},
                    "loop": {"steps": 10, "keep": 50, "requested": 50}, "eval_tokenize": "raw"},
             offline={"scorer": {"name": "video_frames", "options": {"frames": 8, "image_scorer": {"name": "concept"}}}}),
    TaskSpec("audio_captioning", "audio", "caption", "the audio caption bank (audio_descriptions_per_class_405_v2.txt)",
             # ImageBind (the paper's) needs torch 1.13 and torchaudio: CLAP, reading and scoring audio as ImageBind
             # does (three 2 s clips spread over the file, averaged; scores x 20 in the prompt)
             paper={"scorer": {"name": "clap", "options": {"model": "laion/clap-htsat-unfused", "windows": 3,
                                                           "window_seconds": 2.0, "scale": 20.0}},
                    "loop": {"steps": 19, "keep": 10, "requested": 50}, "eval_tokenize": "raw",
                    # the official audio evaluation's metrics, SPIDEr = (CIDEr + SPICE) / 2 among them
                    "metrics": ["BLEU", "METEOR", "ROUGE_L", "CIDEr", "SPICE", "SPIDEr"]},
             offline={"scorer": {"name": "clap", "options": {"model": "laion/clap-htsat-unfused"}}, **_SMALL_LOOP},
             offline_gap="an audio-text model (CLAP); give one with --scorer-model DIR (a saved ClapModel)",
             scorer_flags={"scorer_model": "model"}),
    TaskSpec("text_to_image", "text", "t2i", "the prompt itself",
             # the official code's FLUX settings (bf16, 256 px, 256 text tokens, seed 2024, guidance 7 as
             # passed, which schnell ignores) and its plain PickScore cosine; T2I prompts have no word cap
             paper={"scorer": {"name": "pickscore_t2i", "options": {
                        "pipeline": "black-forest-labs/FLUX.1-schnell", "dtype": "bfloat16", "size": 256,
                        "max_sequence_length": 256, "seed": 2024, "guidance": 7.0, "scaled": False}},
                    "bank": {"builtin": "none"}, "loop": {"steps": 19, "keep": 20, "requested": 50, "max_words": None}},
             offline={"scorer": {"name": "pickscore_t2i", "options": {"pipeline": "black-forest-labs/FLUX.1-schnell"}},
                      "bank": {"builtin": "none"}, "loop": {**_SMALL_LOOP["loop"], "max_words": None}},
             offline_gap="diffusion and PickScore weights; give --pipeline DIR and --reward DIR",
             scorer_flags={"pipeline": "pipeline", "reward": "reward", "reward_processor": "reward_processor"}),
    TaskSpec("style_transfer", "image pair", "style", "the edit-instruction bank (pix2pix_descriptions.txt)",
             # the official code's score (pre-ReLU conv1_1..conv3_1 Gram MSE x 1000 + conv2_2 content MSE,
             # torchvision VGG19) and editor settings (100 Euler-ancestral steps, seed 2024, 256 px crop)
             paper={"scorer": {"name": "style_transfer", "options": {
                        "editor": "timbrooks/instruct-pix2pix", "loss": "official", "vgg_weights": "torchvision",
                        "style_weight": 1000.0, "steps": 100, "seed": 2024, "size": 256, "crop": True,
                        "scheduler": "EulerAncestralDiscreteScheduler"}},
                    "loop": {"steps": 20, "keep": 100, "requested": 1000}},
             offline={"scorer": {"name": "style_transfer", "options": {"editor": "timbrooks/instruct-pix2pix"}},
                      **_SMALL_LOOP},
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
