"""Cross-modal arithmetic: invert an image and an audio clip to text with MILS captioning,
combine the two texts with the LLM (with this suite's own combine prompt, ``mils.engine.prompts.COMBINE_PROMPT``:
the official code does not include one and its README points to the paper), then generate an image from the
combined prompt with MILS text-to-image rewriting. Every intermediate lands in one folder.
"""

from __future__ import annotations

import json
from pathlib import Path

from mils.components.build import build_generator
from mils.components.plan import plan_run
from mils.config.run_config import RunConfig
from mils.engine.parsing import parse_candidates
from mils.engine.prompts import COMBINE_PROMPT
from mils.engine.seeding import derive_seed
from mils.errors import InputError, MissingInputError
from mils.files import write_atomic
from mils.protocols import Generator, Sample, whole_lines
from mils.run.image_tasks import run_text_to_image
from mils.run.runner import TaskRunner

TRIES = 3


def combine_template(path: str | Path | None) -> str:
    """The combine prompt: this suite's (``COMBINE_PROMPT``), or a text file's with the paper's slots
    ``{image_caption}`` and ``{audio_caption}`` (Appendix B of the paper prints its prompt with those
    slots; paste it into a file to run the paper's method). Checked before any model loads."""
    if path is None:
        return COMBINE_PROMPT
    file = Path(path)
    if not file.is_file():
        raise MissingInputError(f"combine prompt file not found: {file}")
    text = file.read_text(encoding="utf-8")
    missing = [slot for slot in ("{image_caption}", "{audio_caption}") if slot not in text]
    if missing:
        raise InputError(f"combine prompt {file} has no {' or '.join(missing)} slot: the image's and the audio's "
                         "captions go there")
    return text


def combine(generator: Generator, image_text: str, audio_text: str, seed: int, template: str = COMBINE_PROMPT) -> str:
    """One combined prompt from the LLM; a reply with no usable line is retried with new seeds.
    ``template`` takes the captions as ``{image_caption}``/``{audio_caption}`` (the paper's names)
    or ``{image_description}``/``{audio_description}`` (this suite's prompt); no other braces are read."""
    prompt = template
    for slots, text in ((("{image_caption}", "{image_description}"), image_text),
                        (("{audio_caption}", "{audio_description}"), audio_text)):
        for slot in slots:
            prompt = prompt.replace(slot, text)
    replies = []
    for attempt in range(TRIES):
        reply = generator.generate([prompt], [derive_seed(seed, "combine", attempt)])[0]
        replies.append(reply)
        found = parse_candidates(whole_lines(reply))
        if found:
            return found[0]
    raise InputError(f"the LLM gave no usable combined prompt in {TRIES} tries; last reply: {replies[-1][:300]!r}")


def run_arithmetic(image_config: RunConfig, audio_config: RunConfig, t2i_config: RunConfig,
                   image: str | Path, audio: str | Path, out_dir: str | Path,
                   generator: Generator | None = None, scorers: dict | None = None,
                   combine_prompt: str | Path | None = None) -> dict:
    """``scorers`` may hold prebuilt {'image', 'audio', 't2i'} scorers (tests, or to reuse models).
    ``combine_prompt``: a file with the combine prompt (:func:`combine_template`)."""
    template = combine_template(combine_prompt)
    scorers = scorers or {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = generator or build_generator(plan_run(t2i_config).generator)
    steps = {}
    for name, config, path in (("image", image_config, image), ("audio", audio_config, audio)):
        run = TaskRunner(plan_run(config), generator=generator, scorer=scorers.get(name)).run([Sample.from_path(path)],
                                                                                       progress=False)
        if run.failed:
            raise InputError(f"cannot caption the {name} input: {next(iter(run.failed.values()))}")
        steps[name] = run.results[0]
        write_atomic(out / f"{name}_caption.txt", run.results[0].caption + "\n")
    combined = combine(generator, steps["image"].caption, steps["audio"].caption, t2i_config.loop.seed, template)
    write_atomic(out / "combined_prompt.txt", combined + "\n")
    t2i = run_text_to_image(t2i_config, [combined], out / "text_to_image", generator, scorers.get("t2i"))[0]
    summary = {
        "image": str(image), "audio": str(audio),
        "image_caption": steps["image"].caption, "audio_caption": steps["audio"].caption,
        "combined_prompt": combined, "final_prompt": t2i["best_prompt"], "final_image": t2i["images"][-1],
        "image_history": [h.__dict__ for h in steps["image"].history],
        "audio_history": [h.__dict__ for h in steps["audio"].history],
    }
    write_atomic(out / "arithmetic.json", json.dumps(summary, indent=2, ensure_ascii=False))
    return summary
