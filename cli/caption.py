"""`mils caption | arithmetic`: run MILS directly on files (no Prefect, no MLflow). A task's own verb (`mils
t2i`, `mils style`) comes from its spec: cli/task_verbs.py."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import time
from pathlib import Path
from typing import Any

from cli.common import add_run_options, make_config, print_table
from cli.task_verbs import add_model_flags
from mils.components import plan_run
from mils.config import captioning_task, get_task
from mils.errors import InputError
from mils.protocols import Closable, Sample
from mils.storage import RunFolder


def _result_json(path: str, result) -> dict[str, Any]:
    return {
        "input": path,
        "caption": result.caption,
        "score": result.score,
        "history": [
            {"step": h.step, "best": h.best, "best_score": h.best_score, "mean_topk": h.mean_topk,
             "new_unique": h.new_unique, "empty_reply": h.empty_reply}
            for h in result.history
        ],
        "cost": [dataclasses.asdict(c) for c in result.cost],  # per step: tokens, LLM and scorer seconds
    }


def cmd_caption(args: argparse.Namespace) -> int:
    from mils.media import MediaError, modality_of
    from mils.run import TaskRunner, loop_overhead

    paths = list(args.paths)
    modalities = {args.modality} if args.modality else set()
    for path in paths if not args.modality else []:
        with contextlib.suppress(MediaError):  # a folder or a name without an extension fails as its own input
            modalities.add(modality_of(path))
    if not modalities:
        raise InputError(f"cannot tell the modality of {', '.join(paths[:3])} from the extension: pass media files "
                         "(photo.jpg, clip.mp4, sound.wav), not folders, or --modality image|video|audio")
    if len(modalities) > 1:
        raise InputError(f"inputs mix modalities {sorted(modalities)}; caption one modality per call")
    config = make_config(args, task=captioning_task(modalities.pop()).name)
    # third-party loaders print to stdout; keep stdout for our results (JSON lines stay parseable)
    with contextlib.redirect_stdout(sys.stderr):
        runner = TaskRunner(plan_run(config))
        try:
            run = runner.run([Sample.from_path(p) for p in paths], progress=not args.json)
        finally:  # a vLLM server started for this run stops now, not at exit
            if isinstance(runner.generator, Closable):
                runner.generator.close()
    out = _write_results(args.out, runner.plan, run)
    by_id = {r.sample_id: r for r in run.results}
    if args.json:
        for path in paths:
            sample_id = str(Path(path))
            if sample_id in run.failed:
                print(json.dumps({"input": path, "error": run.failed[sample_id]}))
            else:
                print(json.dumps(_result_json(path, by_id[sample_id])))
    else:
        rows = [(Path(r.sample_id).name, r.history[0].best, r.history[0].best_score, r.caption, r.score)
                for r in run.results]
        print_table(rows)
        for sample_id, error in run.failed.items():
            print(f"FAILED {sample_id}: {error}", file=sys.stderr)
        t = run.timings
        print(f"\nprofile={config.profile} steps={config.loop.steps} keep={config.loop.keep} "
              f"requested={config.loop.requested} bank={len(run.bank)} captions; "
              f"loop {t.get('loop_total', 0):.1f}s (LLM {t.get('generation', 0):.1f}s"
              f"{' summed over concurrent requests' if config.schedule == 'async' else ''}, "
              f"non-model share {loop_overhead(t):.1%})")
        print(f"results: {out} (the files `mils run` writes: `mils view {out}`, `mils compare`, judging export)")
    return 1 if run.failed else 0


def _write_results(out: str | None, plan, run) -> Path:
    """The run as `mils run` leaves it: a results folder of one file per sample (and per failure),
    the config, the media root and the run's record, under ``out`` (default: a new dated folder in
    outputs/captions)."""
    from evaluation.run_record import build_record, write_record
    from mils.files import write_atomic
    from mils.storage import ResultStore, write_media_root

    folder = Path(out) if out else Path("outputs/captions") / time.strftime("%Y%m%d-%H%M%S")
    store = ResultStore(folder, plan.scorer.record)
    write_atomic(RunFolder(folder).config, plan.config.model_dump_json(indent=2))
    write_media_root(folder, [Sample(r.sample_id, Path(r.media)) for r in run.results if r.media])
    for result in run.results:
        store.write(result)
    for sample_id, error in run.failed.items():
        store.write_failure(sample_id, error)
    write_record(build_record(plan.config, plan.key, folder, run.results, run.failed, {},
                              run.timings.get("loop_total", 0.0), {"computed": len(run.results)}, {}, "caption"))
    return folder


def cmd_arithmetic(args: argparse.Namespace) -> int:
    from mils.run import run_arithmetic

    configs = [make_config(args, task=t) for t in ("image_captioning", "audio_captioning", "text_to_image")]
    with contextlib.redirect_stdout(sys.stderr):
        summary = run_arithmetic(*configs, args.image, args.audio, args.out, combine_prompt=args.combine_prompt)
    for key in ("image_caption", "audio_caption", "combined_prompt", "final_prompt", "final_image"):
        print(f"{key:>16}: {summary[key]}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    caption = sub.add_parser("caption", help="caption images, videos or audio files")
    caption.add_argument("paths", nargs="+", help="media files (modality from the extension)")
    caption.add_argument("--modality", choices=["image", "video", "audio"], help="override the extension")
    caption.add_argument("--scorer-model", help="audio: a ClapModel id or local directory")
    caption.add_argument("--json", action="store_true", help="one JSON object per input on stdout")
    caption.add_argument("--out", help="the results folder to write (default: outputs/captions/<date-time>)")
    add_run_options(caption)
    caption.set_defaults(func=cmd_caption)

    arithmetic = sub.add_parser("arithmetic", help="image + audio -> text -> combined prompt -> image")
    arithmetic.add_argument("image")
    arithmetic.add_argument("audio")
    arithmetic.add_argument("--scorer-model", help="audio scorer (ClapModel id or directory)")
    arithmetic.add_argument("--combine-prompt", help="a text file with the prompt that combines the two captions, "
                            "slots {image_caption} and {audio_caption} (the paper's Appendix B prompt; default: this "
                            "suite's own)")
    add_model_flags(arithmetic, get_task("text_to_image"))  # its last stage's models
    arithmetic.add_argument("--out", default="outputs/arithmetic")
    add_run_options(arithmetic)
    arithmetic.set_defaults(func=cmd_arithmetic)
