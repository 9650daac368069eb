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
from mils.errors import InputError
from mils.files import write_atomic
from mils.protocols import Generator, Sample, whole_lines
from mils.run.image_tasks import run_text_to_image
from mils.run.runner import TaskRunner

TRIES = 3


def combine(generator: Generator, image_text: str, audio_text: str, seed: int) -> str:
    """One combined prompt from the LLM; a reply with no usable line is retried with new seeds."""
    prompt = COMBINE_PROMPT.format(image_description=image_text, audio_description=audio_text)
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
                   generator: Generator | None = None, scorers: dict | None = None) -> dict:
    """``scorers`` may hold prebuilt {'image', 'audio', 't2i'} scorers (tests, or to reuse models)."""
    scorers = scorers or {}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    generator = generator or build_generator(plan_run(t2i_config).generator)
    steps = {}
    for name, config, path in (("image", image_config, image), ("audio", audio_config, audio)):
        run = TaskRunner(config, generator=generator, scorer=scorers.get(name)).run([Sample.from_path(path)],
                                                                                       progress=False)
        if run.failed:
            raise InputError(f"cannot caption the {name} input: {next(iter(run.failed.values()))}")
        steps[name] = run.results[0]
        write_atomic(out / f"{name}_caption.txt", run.results[0].caption + "\n")
    combined = combine(generator, steps["image"].caption, steps["audio"].caption, t2i_config.loop.seed)
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
