"""Video captioning: a clip's caption, from the image caption bank, scored on frames."""

from __future__ import annotations

from mils.config.profiles import SIGLIP
from mils.config.task_specs import TaskSpec, register_task
from mils.engine.prompts import captioning_prompt

OFFICIAL = "\n".join([
    'You need to provide a short video description. ',
    'I am providing to you a list of short video descriptions and scores. ',
    'Higher score means that the video description characterizes the video better: ',
    '',
    '{descriptions}',
    '',
    'Generate additional {requested_number} short video descriptions that you think that will maximize the score and fully capture the video. ',
    'Be concrete and try to find elements that are unique to this video. ',
    'You can introduce new elements to the descriptions, combine unique elements and objects from provided descriptions to form new descriptions, rephrase individual descriptions, drop elements, or simplify descriptions. ',
    'Be creative and don\'t be afraid to come up with erroneous descriptions. Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and try to keep them short up to 20-25 words.',
    '',
])

SPEC = register_task(TaskSpec(
    "video_captioning", "video", "caption", "the image caption bank",
    prompt=captioning_prompt("video", "short up to 20-25 words"),
    official=OFFICIAL, official_file="video_captioning_shorter.txt",
    profiles={
        "offline": {"scorer": {"name": "video_frames", "options": {"frames": 8, "image_scorer": {"name": "concept"}}}},
        # ViCLIP (the paper's video scorer) is in no library: SigLIP on 8 frames, averaged, instead
        "paper": {"scorer": {"name": "video_frames", "options": {"frames": 8, "frame_choice": "official",
                                                                 "image_scorer": SIGLIP}},
                  "loop": {"steps": 10, "keep": 50, "requested": 50}, "eval_tokenize": "raw"},
    }))
