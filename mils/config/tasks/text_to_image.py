"""Text-to-image prompt rewriting: the LLM rewrites a prompt, a diffusion model renders each rewrite and
PickScore rates the image against the prompt. A sample is a prompt: its own initial candidate, no bank."""

from __future__ import annotations

from typing import Any, Mapping

from mils.config.profiles import SMALL_LOOP
from mils.config.task_specs import CommandInput, TaskCommand, TaskSpec, register_task
from mils.errors import InputError

PROMPT = """You need to expand and rephrase the provided description for image generation to make the best image, by maximizing the image score:

The description is: {init_description}

Here are some example rephrases and the corresponding image scores:

{descriptions}

Generate additional {requested_number} descriptions that will maximize the score. Be concrete and come up with different descriptions with various guesses for the possible way to rephrase and expand it, in a way that will maximize the score.
You can introduce new elements to the descriptions, combine unique elements and phrasings from provided descriptions to form new ones, drop description parts, or simplify them.
Be creative and don't be afraid to come up with erroneous descriptions. Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and keep them short (less than 77 words).
"""

OFFICIAL = "\n".join([
    'You need to expand and rephrase the provided description for image generation to make the best image, by maximizing the image score:',
    '',
    'The description is: {init_description}',
    '',
    'Here are some example rephrases and the corresponding image scores: ',
    '',
    '{descriptions}',
    '',
    'Generate additional {requested_number} descriptions that will maximize the score. Be concrete and come up with different descriptions with various guesses for the possible way to rephrase and expand it, in a way that will maximize the score. ',
    'You can introduce new elements to the descriptions, combine unique elements and phrasings from provided descriptions to form new ones, drop description parts, or simplify them. ',
    'Be creative and don\'t be afraid to come up with erroneous descriptions. Put each instruction in a different line, with a counter at the beginning (e.g. "1. ..."), and keep them short (less than 77 words).',
    '',
])


def prompt_id(n: int) -> str:
    """The sample id of the ``n``-th prompt given (the ``prompts`` dataset's and `mils t2i`'s in-process run's)."""
    return f"prompt{n:03d}"


def given_prompts(inputs: Mapping[str, Any], configured: str) -> dict[str, Any] | None:
    """`mils t2i PROMPT...`: the prompts given, else the config's own prompts (DrawBench)."""
    if inputs["texts"]:
        return {"kind": "prompts", "args": {"prompts": list(inputs["texts"])}}
    if configured in ("drawbench", "prompts"):
        return None
    raise InputError("give prompts, or a --config whose dataset is drawbench (configs/paper/text_to_image.yaml)")


COMMAND = TaskCommand(
    "text-to-image prompt rewriting (LLM + diffusion + PickScore), as `mils run`",
    # not named 'prompts': that is --prompts, the meta-prompt choice every command takes
    (CommandInput("texts", "default: the prompts of the --config's drawbench dataset", many=True, optional=True,
                  metavar="PROMPT"),),
    given_prompts,
    flags={"pipeline": "diffusers pipeline id or local directory (paper: FLUX.1-schnell)",
           "reward": "PickScore model id or local directory",
           "reward_processor": "its processor (PickScore uses laion/CLIP-ViT-H-14-laion2B-s32B-b79K)"})

SPEC = register_task(TaskSpec(
    "text_to_image", "text", "t2i", "the prompt itself",
    offline_gap="diffusion and PickScore weights; give --pipeline DIR and --reward DIR",
    scorer_flags={"pipeline": "pipeline", "reward": "reward", "reward_processor": "reward_processor"},
    sample_slot="init_description", images=True, command=COMMAND,
    prompt=PROMPT, official=OFFICIAL, official_file="image_generation.txt",
    profiles={
        "offline": {"scorer": {"name": "pickscore_t2i", "options": {"pipeline": "black-forest-labs/FLUX.1-schnell"}},
                    "bank": {"builtin": "none"}, "loop": {**SMALL_LOOP, "max_words": None}, "metrics": []},
        # the official code's FLUX settings (bf16, 256 px, 256 text tokens, seed 2024, guidance 7 as
        # passed, which schnell ignores) and its plain PickScore cosine; T2I prompts have no word cap
        "paper": {"scorer": {"name": "pickscore_t2i", "options": {
                      "pipeline": "black-forest-labs/FLUX.1-schnell", "dtype": "bfloat16", "size": 256,
                      "max_sequence_length": 256, "seed": 2024, "guidance": 7.0, "scaled": False}},
                  "bank": {"builtin": "none"}, "loop": {"steps": 19, "keep": 20, "requested": 50, "max_words": None},
                  "metrics": []},  # no references: the images are the result (images/ of the results folder)
    }))
