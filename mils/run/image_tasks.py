"""Tasks whose candidates become images: text-to-image prompt rewriting and style transfer.

Both use the same loop as captioning with a CandidateScorer that renders (or edits) each
candidate; rendered images are cached by text, so after the run the best image of every step
is written out without rendering anything again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from mils.components.build import build_bank, build_generator, build_scorer
from mils.config.run_config import RunConfig
from mils.engine.loop import Optimiser, SampleResult
from mils.engine.prompts import template_for
from mils.errors import InputError
from mils.files import write_atomic, written
from mils.protocols import Generator, ImageMaker, Sample
from mils.storage.results import result_to_dict


def _save_steps(result: SampleResult, image_of: Callable[[str], Image.Image], folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for record in result.history:
        path = folder / f"step{record.step:02d}.png"
        written(path, lambda buffer, r=record: image_of(r.best).save(buffer, "PNG"))
        paths.append(str(path))
    return paths


def _image_scorer(config: RunConfig, scorer):
    """The run's scorer, which must make the images it scores (:class:`ImageMaker`)."""
    scorer = scorer or build_scorer(config.scorer)
    if not isinstance(scorer, ImageMaker):
        raise InputError(f"scorer {config.scorer.name!r} makes no images, so this task cannot write them out: "
                         f"use one that renders or edits (pickscore_t2i, style_transfer)")
    return scorer


def _write(folder: Path, payload: dict) -> None:
    write_atomic(folder / "result.json", json.dumps(payload, indent=2, ensure_ascii=False))


def run_text_to_image(config: RunConfig, prompts: Sequence[str], out_dir: str | Path,
                      generator: Generator | None = None, scorer=None, progress: bool = True,
                      ids: Sequence[str] | None = None) -> list[dict]:
    """Rewrite each prompt with MILS; ``out_dir/<id>/`` (default ids ``prompt000``...) gets the best
    image of every step."""
    scorer = _image_scorer(config, scorer)
    generator = generator or build_generator(config.generator, config.cache_path())
    samples = [Sample(i, p) for i, p in zip(ids or [f"prompt{n:03d}" for n in range(len(prompts))], prompts)]
    optimiser = Optimiser(generator, scorer, template_for("text_to_image", config.prompts), [], None, config.loop,
                          initial_texts=lambda s: [s.media], prompt_extra=lambda s: {"init_description": s.media})
    out = Path(out_dir)
    payloads = []
    for result, sample in zip(optimiser.run_batched(samples, config.batch_size), samples):
        folder = out / sample.id
        images = _save_steps(result, lambda text, s=sample: scorer.image_of(s, text), folder)
        payload = {"prompt": sample.media, "best_prompt": result.caption, "images": images,
                   **result_to_dict(result)}
        _write(folder, payload)
        payloads.append(payload)
    return payloads


def run_style_transfer(config: RunConfig, content: str | Path, style: str | Path, out_dir: str | Path,
                       generator: Generator | None = None, scorer=None) -> dict:
    """Find the edit instruction that moves ``content`` towards ``style``'s look."""
    scorer = _image_scorer(config, scorer)
    generator = generator or build_generator(config.generator, config.cache_path())
    bank = build_bank(config, generator)
    sample = Sample(f"{Path(content).stem}+{Path(style).stem}", {"content": str(content), "style": str(style)})
    optimiser = Optimiser(generator, scorer, template_for("style_transfer", config.prompts), bank.texts, None, config.loop)
    result = optimiser.run([sample])[0]
    folder = Path(out_dir)
    images = _save_steps(result, lambda text: scorer.image_of(sample, text), folder)
    payload = {"content": str(content), "style": str(style), "best_instruction": result.caption,
               "images": images, "edits_rendered": scorer.images_made, **result_to_dict(result)}
    _write(folder, payload)
    return payload
