"""Tasks whose candidates become images, run in-process on given inputs: text-to-image prompt
rewriting and style transfer (cross-modal arithmetic's last stage; `mils t2i` and `mils style` run
them through the benchmark flow instead).

Both run through :func:`mils.run.runner.run_into_folder`, as every task does, into a normal results
folder under ``out_dir`` (named by the config and its inputs, so a rerun resumes): each sample's
result in ``samples/``, the best image of every step in ``images/`` (the scorer renders or edits each
candidate and caches the image by text, so nothing is made again to write them out).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from mils.components.build import build_scorer
from mils.components.plan import plan_run
from mils.config.run_config import DatasetConfig, RunConfig
from mils.config.tasks.style_transfer import pair_id
from mils.config.tasks.text_to_image import prompt_id
from mils.errors import ComponentError, InputError
from mils.files import write_atomic
from mils.protocols import Generator, ImageMaker, Sample
from mils.run.runner import RunnerOutput, TaskRunner, run_into_folder
from mils.storage.results import ResultStore, result_to_dict
from mils.storage.run_folder import RunFolder


def _run(config: RunConfig, task: str, dataset: DatasetConfig, samples: list[Sample], out_dir: str | Path,
         generator: Generator | None, scorer, progress: bool) -> tuple[TaskRunner, list[dict[str, Any]]]:
    """Run ``samples`` (``dataset``'s, which names them in the results folder's key) into the
    results folder under ``out_dir``; each result as a dict with its step images."""
    if config.task != task:
        raise InputError(f"this runs {task}, but the config is for {config.task!r}: build it with task={task!r} "
                         "(its scorer and meta-prompt are the task's)")
    plan = plan_run(config.model_copy(update={"dataset": dataset, "output_dir": str(out_dir)}))
    scorer = scorer or build_scorer(plan.scorer)
    if not isinstance(scorer, ImageMaker):
        raise InputError(f"scorer {plan.scorer.name!r} makes no images, so this task cannot write them out: "
                         f"use one that renders or edits (pickscore_t2i, style_transfer)")
    runner = TaskRunner(plan, generator=generator, scorer=scorer)
    folder = RunFolder(plan.results_dir)
    folder.root.mkdir(parents=True, exist_ok=True)
    write_atomic(folder.config, plan.config.model_dump_json(indent=2))
    _failed(run_into_folder(runner, samples, progress=progress))
    results = ResultStore(folder.root).results([s.id for s in samples])
    return runner, [{**result_to_dict(r), "results_dir": str(folder.root),
                     "images": [str(folder.step_images(r.sample_id) / RunFolder.step_image(h.step)) for h in r.history]}
                    for r in results]


def _failed(run: RunnerOutput) -> None:
    """What finished is written already; a sample that failed (out of memory even alone) is one error."""
    if run.failed:
        sample_id, error = next(iter(run.failed.items()))
        raise ComponentError(f"{len(run.failed)} of {len(run.failed) + len(run.results)} samples failed (the others "
                             f"are written): {sample_id}: {error}")


def run_text_to_image(config: RunConfig, prompts: Sequence[str], out_dir: str | Path,
                      generator: Generator | None = None, scorer=None, progress: bool = True) -> list[dict]:
    """Rewrite each prompt with MILS (samples ``prompt000``...); a dict per prompt with ``prompt``,
    ``best_prompt`` and the best image of every step (``images``)."""
    dataset = DatasetConfig(kind="prompts", args={"prompts": list(prompts)})
    samples = [Sample(prompt_id(n), p) for n, p in enumerate(prompts)]
    _, results = _run(config, "text_to_image", dataset, samples, out_dir, generator, scorer, progress)
    return [{"prompt": s.media, "best_prompt": r["caption"], **r} for s, r in zip(samples, results)]


def run_style_transfer(config: RunConfig, content: str | Path, style: str | Path, out_dir: str | Path,
                       generator: Generator | None = None, scorer=None, progress: bool = True) -> dict:
    """Find the edit instruction that moves ``content`` towards ``style``'s look."""
    content, style = Path(content), Path(style)
    dataset = DatasetConfig(kind="style_pairs", args={"content": str(content), "style": str(style)})
    samples = [Sample(pair_id(content, style), {"content": content, "style": style})]
    runner, results = _run(config, "style_transfer", dataset, samples, out_dir, generator, scorer, progress)
    return {"content": str(content), "style": str(style), "best_instruction": results[0]["caption"],
            "edits_rendered": runner.scorer.images_made, **results[0]}
