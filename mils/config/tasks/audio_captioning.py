"""Audio captioning: a sound's caption, from the audio caption bank, scored by an audio-text model (CLAP)."""

from __future__ import annotations

from mils.config.metrics import CAPTION_METRICS
from mils.config.profiles import SMALL_LOOP
from mils.config.task_specs import TaskSpec, register_task
from mils.engine.prompts import captioning_prompt

OFFICIAL = "\n".join([
    'You need to provide a short audio description. ',
    'I am providing to you a list of audio descriptions and scores. ',
    'Higher score means that the audio description characterizes the audio better: ',
    '',
    '{descriptions}',
    '',
    'Generate additional {requested_number} short audio descriptions that you think that will maximize the score and fully capture the audio. ',
    'Be concrete and try to find elements that are unique to this audio. ',
    'You can introduce new elements to the descriptions, combine unique elements and objects from provided descriptions to form new descriptions, rephrase individual descriptions, drop elements, or simplify descriptions. ',
    'Be creative and don\'t be afraid to come up with erroneous descriptions. Put each description in a different line, with a counter at the beginning (e.g. "1. ..."), and try to keep them short (under 20 words).',
    '',
])

SPEC = register_task(TaskSpec(
    "audio_captioning", "audio", "caption", "the audio caption bank (audio_descriptions_per_class_405_v2.txt)",
    offline_gap="an audio-text model (CLAP); give one with --scorer-model DIR (a saved ClapModel)",
    scorer_flags={"scorer_model": "model"},
    prompt=captioning_prompt("audio", "short (under 20 words)"),
    official=OFFICIAL, official_file="audio_captioning_shorter.txt",
    profiles={
        "offline": {"scorer": {"name": "clap", "options": {"model": "laion/clap-htsat-unfused"}}, "loop": SMALL_LOOP},
        # ImageBind (the paper's) needs torch 1.13 and torchaudio: CLAP, reading and scoring audio as ImageBind
        # does (three 2 s clips spread over the file, averaged; scores x 20 in the prompt)
        "paper": {"scorer": {"name": "clap", "options": {"model": "laion/clap-htsat-unfused", "windows": 3,
                                                         "window_seconds": 2.0, "scale": 20.0}},
                  "loop": {"steps": 19, "keep": 10, "requested": 50}, "eval_tokenize": "raw",
                  # the official audio evaluation's metrics, SPIDEr = (CIDEr + SPICE) / 2 among them
                  "metrics": list(CAPTION_METRICS)},
    }))
