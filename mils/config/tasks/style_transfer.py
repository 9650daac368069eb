"""Style transfer: the LLM writes edit instructions, InstructPix2Pix applies each to the content image, and
a VGG19 score (style Gram distance to the style image, content distance to the content image) rates it. A
sample is a (content, style) pair."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

from mils.config.profiles import SMALL_LOOP
from mils.config.task_specs import CommandInput, TaskCommand, TaskSpec, register_task

PROMPT = """You need to generate instructions for image editing that minimize a pair of scores:

I am providing you a list of example editing instructions and their pairs of scores.

{descriptions}

Generate additional {requested_number} editing instructions. Be concrete and come up with different instructions with various guesses for the possible edits that will minimize both of the scores.
You can introduce new styles to the instructions, combine unique styles and textures from provided instructions to form new instructions, rephrase individual instructions, drop instruction parts, or simplify them.
Be creative and don't be afraid to come up with erroneous editing instructions. Put each instruction in a different line, with a counter at the beginning (e.g. "1. ..."), and keep them short (less than 50 words).
"""

OFFICIAL = "\n".join([
    'You need to generate instructions for image editing that minimize a pair of scores:',
    '',
    'I am providing you a list of example editing instructions and their pairs of scores. ',
    '',
    '{descriptions}',
    '',
    'Generate additional {requested_number} editing instructions. Be concrete and come up with different instructions with various guesses for the possible edits that will minimize both of the scores. ',
    'You can introduce new styles to the instructions, combine unique styles and textures from provided instructions to form new instructions, rephrase individual instructions, drop instruction parts, or simplify them. ',
    'Be creative and don\'t be afraid to come up with erroneous editing instructions. Put each instruction in a different line, with a counter at the beginning (e.g. "1. ..."), and keep them short (less than 50 words).',
    '',
])


def pair_id(content: Path, style: Path) -> str:
    """The sample id of a (content, style) pair (the ``style_pairs`` dataset's and the in-process run's)."""
    return f"{content.stem}+{style.stem}"


def given_pair(inputs: Mapping[str, Any], configured: str) -> dict[str, Any]:
    """`mils style CONTENT STYLE`: every (content, style) pair of the files or folders given."""
    return {"kind": "style_pairs", "args": {"content": inputs["content"], "style": inputs["style"]}}


COMMAND = TaskCommand(
    "style transfer: find the edit instruction (InstructPix2Pix + VGG), as `mils run`",
    (CommandInput("content", "the content image (or a folder of them: every pair is a sample)"),
     CommandInput("style", "the style image (or a folder of them)")),
    given_pair, flags={"editor": "InstructPix2Pix pipeline id or local directory"})

SPEC = register_task(TaskSpec(
    "style_transfer", "image pair", "style", "the edit-instruction bank (pix2pix_descriptions.txt)",
    offline_gap="an InstructPix2Pix pipeline; give --editor DIR", scorer_flags={"editor": "editor"},
    images=True, command=COMMAND, prompt=PROMPT, official=OFFICIAL, official_file="style_transfer.txt",
    profiles={
        "offline": {"scorer": {"name": "style_transfer", "options": {"editor": "timbrooks/instruct-pix2pix"}},
                    "loop": SMALL_LOOP, "metrics": []},
        # the official code's score (pre-ReLU conv1_1..conv3_1 Gram MSE x 1000 + conv2_2 content MSE,
        # torchvision VGG19) and editor settings (100 Euler-ancestral steps, seed 2024, 256 px crop)
        "paper": {"scorer": {"name": "style_transfer", "options": {
                      "editor": "timbrooks/instruct-pix2pix", "loss": "official", "vgg_weights": "torchvision",
                      "style_weight": 1000.0, "steps": 100, "seed": 2024, "size": 256, "crop": True,
                      "scheduler": "EulerAncestralDiscreteScheduler"}},
                  "loop": {"steps": 20, "keep": 100, "requested": 1000}, "metrics": []},
    }))
