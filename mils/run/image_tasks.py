"""Tasks whose candidates become images: text-to-image prompt rewriting and style transfer.

Both run through the TaskRunner, as captioning does, with a CandidateScorer that renders (or edits)
each candidate (the task's spec says where a sample's initial candidates come from); rendered images
are cached by text, so the best image of every step is written out without rendering anything again.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Sequence

from PIL import Image

from mils.components.build import build_scorer
from mils.components.plan import plan_run
from mils.config.run_config import RunConfig
from mils.engine.records import SampleResult
from mils.errors import ComponentError, InputError
from mils.files import write_atomic, written
from mils.protocols import Generator, ImageMaker, Sample
from mils.run.runner import RunnerOutput, TaskRunner
from mils.storage.results import result_to_dict


def _save_steps(result: SampleResult, image_of: Callable[[str], Image.Image], folder: Path) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for record in result.history:
        path = folder / f"step{record.step:02d}.png"
        written(path, lambda buffer, r=record: image_of(r.best).save(buffer, "PNG"))
        paths.append(str(path))
    return paths


def _runner(config: RunConfig, task: str, generator: Generator | None, scorer) -> TaskRunner:
    """The TaskRunner of an image task's config; its scorer must make the images it scores (:class:`ImageMaker`)."""
    if config.task != task:
        raise InputError(f"this runs {task}, but the config is for {config.task!r}: build it with task={task!r} "
                         "(its scorer and meta-prompt are the task's)")
    plan = plan_run(config)
    scorer = scorer or build_scorer(plan.scorer)
    if not isinstance(scorer, ImageMaker):
        raise InputError(f"scorer {plan.scorer.name!r} makes no images, so this task cannot write them out: "
                         f"use one that renders or edits (pickscore_t2i, style_transfer)")
    return TaskRunner(plan, generator=generator, scorer=scorer)


def _failed(run: RunnerOutput) -> None:
    """What finished is written already; a sample that failed (out of memory even alone) is one error."""
    if run.failed:
        sample_id, error = next(iter(run.failed.items()))
        raise ComponentError(f"{len(run.failed)} of {len(run.failed) + len(run.results)} samples failed (the others "
                             f"are written): {sample_id}: {error}")


def _write(folder: Path, payload: dict) -> None:
    write_atomic(folder / "result.json", json.dumps(payload, indent=2, ensure_ascii=False))


def run_text_to_image(config: RunConfig, prompts: Sequence[str], out_dir: str | Path,
                      generator: Generator | None = None, scorer=None, progress: bool = True,
                      ids: Sequence[str] | None = None) -> list[dict]:
    """Rewrite each prompt with MILS; ``out_dir/<id>/`` (default ids ``prompt000``...) gets the best
    image of every step, as soon as its prompt is done."""
    runner = _runner(config, "text_to_image", generator, scorer)
    samples = [Sample(i, p) for i, p in zip(ids or [f"prompt{n:03d}" for n in range(len(prompts))], prompts)]
    out, payloads, by_id = Path(out_dir), {}, {s.id: s for s in samples}

    def write(result: SampleResult) -> None:
        sample = by_id[result.sample_id]
        images = _save_steps(result, lambda text: runner.scorer.image_of(sample, text), out / sample.id)
        payloads[sample.id] = {"prompt": sample.media, "best_prompt": result.caption, "images": images,
                               **result_to_dict(result)}
        _write(out / sample.id, payloads[sample.id])

    _failed(runner.run(samples, progress, on_done=write))
    return [payloads[s.id] for s in samples]


def run_style_transfer(config: RunConfig, content: str | Path, style: str | Path, out_dir: str | Path,
                       generator: Generator | None = None, scorer=None, progress: bool = True) -> dict:
    """Find the edit instruction that moves ``content`` towards ``style``'s look."""
    runner = _runner(config, "style_transfer", generator, scorer)
    sample = Sample(f"{Path(content).stem}+{Path(style).stem}", {"content": str(content), "style": str(style)})
    run = runner.run([sample], progress)
    _failed(run)
    result, folder = run.results[0], Path(out_dir)
    images = _save_steps(result, lambda text: runner.scorer.image_of(sample, text), folder)
    payload = {"content": str(content), "style": str(style), "best_instruction": result.caption,
               "images": images, "edits_rendered": runner.scorer.images_made, **result_to_dict(result)}
    _write(folder, payload)
    return payload
