"""The built-in MILS tasks, one module each: its spec (modality, initial candidates, what the offline
profile lacks), its meta-prompts (this suite's wording, and the official MILS code's prompt file byte for
byte: facebookresearch/MILS at 2843135, ``prompts/*.txt``, CC-BY-NC 4.0 like the MILS release), its
settings in the ``offline`` and ``paper`` profiles and, where it has one, its own CLI command. Importing
this package registers them (:func:`mils.config.get_task` does on first use). A plugin's task is the same
thing in the plugin's own file (examples/visual_qa.py)."""

from mils.config.tasks import (  # noqa: F401 (each module registers its task)
    audio_captioning,
    image_captioning,
    style_transfer,
    text_to_image,
    video_captioning,
)

BUILTIN = ("image_captioning", "video_captioning", "audio_captioning", "text_to_image", "style_transfer")
