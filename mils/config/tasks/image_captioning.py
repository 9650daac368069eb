"""Image captioning: a photo's caption, from the image caption bank. The task the suite's demo runs;
both profiles run it on their base settings."""

from __future__ import annotations

from mils.config.task_specs import TaskSpec, register_task
from mils.engine.prompts import captioning_prompt

OFFICIAL = "\n".join([
    'You need to provide a short image description. ',
    'I am providing to you a list of short image descriptions and scores. ',
    'Higher score means that the image description characterizes the image better: ',
    '',
    '{descriptions}',
    '',
    'Generate additional {requested_number} short image descriptions that you think that will maximize the score and fully capture the image. ',
    'Be concrete and try to find elements that are unique to this image. ',
    'You can introduce new elements to the descriptions, combine unique elements and objects from provided descriptions to form new descriptions, rephrase individual descriptions, drop elements, or simplify descriptions. ',
    'Be creative and don\'t be afraid to come up with erroneous descriptions. Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and try to keep them very short (up to 10 words).',
    '',
])

SPEC = register_task(TaskSpec(
    "image_captioning", "image", "caption", "the image caption bank",
    prompt=captioning_prompt("image", "very short (up to 10 words)"),
    official=OFFICIAL, official_file="image_captioning_shorter.txt"))
