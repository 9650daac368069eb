"""`mils caption | arithmetic`: run MILS directly on files (no Prefect, no MLflow); `mils t2i | style`:
the image tasks on inputs given here, through the benchmark flow (a results folder, MLflow, resume)."""

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
from mils.components import plan_run
from mils.config import captioning_task
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


def _benchmark_of(config, dataset: dict | None, out: str | None):
    """An image task's config as the benchmark flow runs it: its dataset (the inputs given on the
    command line, else the config's) and its results under ``out`` (else the config's output_dir)."""
    from evaluation.datasets import check_dataset
    from mils.config import DatasetConfig

    if dataset is not None:
        config = config.model_copy(update={"dataset": DatasetConfig(**dataset)})
        check_dataset(config.dataset, paths=True)
    return config.model_copy(update={"output_dir": out}) if out else config


def cmd_t2i(args: argparse.Namespace) -> int:
    from cli.run import run_and_report

    config = make_config(args, task="text_to_image")
    given = {"kind": "prompts", "args": {"prompts": list(args.texts)}} if args.texts else None
    if given is None and config.dataset.kind not in ("drawbench", "prompts"):
        raise InputError("give prompts, or a --config whose dataset is drawbench (configs/paper/text_to_image.yaml)")
    return run_and_report(_benchmark_of(config, given, args.out))


def cmd_style(args: argparse.Namespace) -> int:
    from cli.run import run_and_report

    config = make_config(args, task="style_transfer")
    given = {"kind": "style_pairs", "args": {"content": args.content, "style": args.style}}
    return run_and_report(_benchmark_of(config, given, args.out))


def cmd_arithmetic(args: argparse.Namespace) -> int:
    from mils.run import run_arithmetic

    configs = [make_config(args, task=t) for t in ("image_captioning", "audio_captioning", "text_to_image")]
    with contextlib.redirect_stdout(sys.stderr):
        summary = run_arithmetic(*configs, args.image, args.audio, args.out, combine_prompt=args.combine_prompt)
    for key in ("image_caption", "audio_caption", "combined_prompt", "final_prompt", "final_image"):
        print(f"{key:>16}: {summary[key]}")
    return 0


def _add_t2i_flags(parser: argparse.ArgumentParser) -> None:
    """The text-to-image models (the t2i command and arithmetic's last stage)."""
    parser.add_argument("--pipeline", help="diffusers pipeline id or local directory (paper: FLUX.1-schnell)")
    parser.add_argument("--reward", help="PickScore model id or local directory")
    parser.add_argument("--reward-processor",
                        help="its processor (PickScore uses laion/CLIP-ViT-H-14-laion2B-s32B-b79K)")


def register(sub: argparse._SubParsersAction) -> None:
    caption = sub.add_parser("caption", help="caption images, videos or audio files")
    caption.add_argument("paths", nargs="+", help="media files (modality from the extension)")
    caption.add_argument("--modality", choices=["image", "video", "audio"], help="override the extension")
    caption.add_argument("--scorer-model", help="audio: a ClapModel id or local directory")
    caption.add_argument("--json", action="store_true", help="one JSON object per input on stdout")
    caption.add_argument("--out", help="the results folder to write (default: outputs/captions/<date-time>)")
    add_run_options(caption)
    caption.set_defaults(func=cmd_caption)

    t2i = sub.add_parser("t2i", help="text-to-image prompt rewriting (LLM + diffusion + PickScore), as `mils run`")
    # not dest 'prompts': that is --prompts, the meta-prompt choice every command takes
    t2i.add_argument("texts", nargs="*", metavar="PROMPT", help="default: the prompts of the --config's drawbench dataset")
    _add_t2i_flags(t2i)
    t2i.add_argument("--out", help="the folder its results folder goes in (default: the config's output_dir)")
    add_run_options(t2i)
    t2i.set_defaults(func=cmd_t2i)

    style = sub.add_parser("style", help="style transfer: find the edit instruction (InstructPix2Pix + VGG), as `mils run`")
    style.add_argument("content", help="the content image (or a folder of them: every pair is a sample)")
    style.add_argument("style", help="the style image (or a folder of them)")
    style.add_argument("--editor", help="InstructPix2Pix pipeline id or local directory")
    style.add_argument("--out", help="the folder its results folder goes in (default: the config's output_dir)")
    add_run_options(style)
    style.set_defaults(func=cmd_style)

    arithmetic = sub.add_parser("arithmetic", help="image + audio -> text -> combined prompt -> image")
    arithmetic.add_argument("image")
    arithmetic.add_argument("audio")
    arithmetic.add_argument("--scorer-model", help="audio scorer (ClapModel id or directory)")
    arithmetic.add_argument("--combine-prompt", help="a text file with the prompt that combines the two captions, "
                            "slots {image_caption} and {audio_caption} (the paper's Appendix B prompt; default: this "
                            "suite's own)")
    _add_t2i_flags(arithmetic)
    arithmetic.add_argument("--out", default="outputs/arithmetic")
    add_run_options(arithmetic)
    arithmetic.set_defaults(func=cmd_arithmetic)
