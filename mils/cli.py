"""The ``mils`` command line."""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import sys
from pathlib import Path
from typing import Any, Sequence

from mils.protocols import Sample


def _loop_overrides(args: argparse.Namespace) -> dict[str, Any]:
    overrides: dict[str, Any] = {}
    loop = {k: getattr(args, k) for k in ("steps", "keep", "requested", "exploration", "seed") if getattr(args, k) is not None}
    if loop:
        overrides["loop"] = loop
    if args.bank:
        overrides["bank"] = {"path": args.bank, "builtin": None}
    if args.bank_size:
        overrides.setdefault("bank", {})["subsample"] = args.bank_size
    if args.batch_size:
        overrides["batch_size"] = args.batch_size
    if args.cache_dir:
        overrides["cache_dir"] = args.cache_dir
    return overrides


_SCORER_FLAGS = {  # CLI flag -> scorer option, per task
    "audio_captioning": {"scorer_model": "model"},
    "text_to_image": {"pipeline": "pipeline", "reward": "reward", "reward_processor": "reward_processor"},
    "style_transfer": {"editor": "editor"},
}


def _config(args: argparse.Namespace, task: str | None = None):
    from mils.config import build_config, load_config
    from mils.profiles import offline_gap

    overrides = _loop_overrides(args)
    if getattr(args, "tracking_uri", None):
        overrides["tracking"] = {"uri": args.tracking_uri}
    options = {opt: getattr(args, flag) for flag, opt in _SCORER_FLAGS.get(task, {}).items()
               if getattr(args, flag, None)}
    if options:
        overrides["scorer"] = {"options": options}
    if args.config:
        return load_config(args.config, overrides)
    gap = offline_gap(task) if args.profile == "offline" and task else None
    if gap and not options:
        raise ValueError(f"the offline profile has no weights for {task}: it needs {gap}, or use --profile paper")
    return build_config(args.profile, overrides, task=task)


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--profile", default="offline", help="model profile: offline (default, no hub needed) or paper")
    parser.add_argument("--config", help="YAML run config (profile + overrides); flags below override it")
    parser.add_argument("--steps", type=int, help="optimisation steps")
    parser.add_argument("--keep", type=int, help="top-K candidates kept per step")
    parser.add_argument("--requested", type=int, help="new candidates requested per step")
    parser.add_argument("--exploration", type=float, help="fraction of kept slots sampled from below the top-K")
    parser.add_argument("--seed", type=int, help="run seed")
    parser.add_argument("--bank", help="initial caption bank: text file, one caption per line")
    parser.add_argument("--bank-size", type=int, help="random subset of the bank (ablations)")
    parser.add_argument("--batch-size", type=int, help="samples optimised together (one LLM call per step)")
    parser.add_argument("--cache-dir", help="where converted models and bank embeddings are cached")


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
    }


def _print_table(rows: list[tuple[str, str, float, str, float]]) -> None:
    headers = ("input", "initial-bank best", "score", "final caption", "score")
    widths = [max(len(headers[i]), *(len(f"{r[i]:.3f}" if isinstance(r[i], float) else str(r[i])) for r in rows))
              for i in range(5)] if rows else [len(h) for h in headers]
    line = "  ".join(h.ljust(w) for h, w in zip(headers, widths))
    print(line)
    print("-" * len(line))
    for row in rows:
        cells = [f"{c:.3f}" if isinstance(c, float) else str(c) for c in row]
        print("  ".join(c.ljust(w) for c, w in zip(cells, widths)))


def cmd_caption(args: argparse.Namespace) -> int:
    from mils.captioning import Captioner, loop_overhead
    from mils.media import modality_of

    paths = list(args.paths)
    modalities = {args.modality} if args.modality else {modality_of(p) for p in paths}
    if len(modalities) > 1:
        raise ValueError(f"inputs mix modalities {sorted(modalities)}; caption one modality per call")
    config = _config(args, task=f"{modalities.pop()}_captioning")
    # third-party loaders print to stdout; keep stdout for our results (JSON lines stay parseable)
    with contextlib.redirect_stdout(sys.stderr):
        captioner = Captioner(config)
        run = captioner.caption([Sample.from_path(p) for p in paths], progress=not args.json)
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
        _print_table(rows)
        for sample_id, error in run.failed.items():
            print(f"FAILED {sample_id}: {error}", file=sys.stderr)
        t = run.timings
        print(f"\nprofile={config.profile} steps={config.loop.steps} keep={config.loop.keep} "
              f"requested={config.loop.requested} bank={len(run.bank)} captions; "
              f"loop {t.get('loop_total', 0):.1f}s (LLM {t.get('generation', 0):.1f}s, "
              f"non-model share {loop_overhead(t):.1%})")
    return 1 if run.failed else 0


def _print_benchmark(outcome: dict) -> None:
    from evaluation.caption_metrics import format_table
    from mils.results import ResultStore

    results = ResultStore(outcome["results_dir"]).results()
    rows = [(Path(r["sample_id"]).name, r["history"][0]["best"], r["history"][0]["best_score"], r["caption"], r["score"])
            for r in results]
    print()
    _print_table(rows)
    for sample_id, error in outcome["failed"].items():
        print(f"FAILED {sample_id}: {error}")
    labels = {"step0": "initial-bank best (step 0, retrieval baseline)", "final": "MILS final"}
    for stage, report in outcome["reports"].items():
        print(f"\n{labels.get(stage, stage)}: {len(results)} samples, x100, bootstrap 95% CI")
        print(format_table(report))
    print(f"\nresults: {outcome['results_dir']}  ({outcome['shards']['computed']} computed, "
          f"{outcome['shards']['resumed']} resumed, {outcome['seconds']:.0f}s)")


def _print_mlflow_hint(config) -> None:
    print(f"MLflow run {config.tracking.experiment!r} logged to {config.tracking.uri}; to browse it:\n"
          f"  {Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri {config.tracking.uri} "
          f"--host 127.0.0.1 --port 5000")


def cmd_run(args: argparse.Namespace) -> int:
    from flows.benchmark import run_benchmark

    config = _config(args)
    outcome = run_benchmark(config)
    _print_benchmark(outcome)
    _print_mlflow_hint(config)
    return 1 if outcome["failed"] else 0


def cmd_demo(args: argparse.Namespace) -> int:
    from flows.benchmark import run_benchmark

    config = _config(args).model_copy(update={"name": "demo"})
    config = config.model_copy(update={"dataset": config.dataset.model_copy(update={"kind": "sample",
                                                                                    "args": {"directory": args.out}})})
    print(f"MILS demo: the {config.profile!r} profile on the bundled sample photos ({args.out}) "
          f"through the Prefect benchmark flow, tracked in MLflow")
    outcome = run_benchmark(config)
    _print_benchmark(outcome)
    _print_mlflow_hint(config)
    return 1 if outcome["failed"] else 0


def cmd_sweep(args: argparse.Namespace) -> int:
    from flows.ablation import run_sweep
    from flows.report import sweep_report

    outcome = run_sweep(args.config)
    print(f"\n{outcome['variants']} variants from {outcome['optimisation_runs']} optimisation runs")
    print(sweep_report(outcome["parent_run_id"], outcome["tracking_uri"]))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    from flows.report import sweep_report

    print(sweep_report(args.run_id, args.tracking_uri))
    return 0


def cmd_pipeline(args: argparse.Namespace) -> int:
    from flows.pipeline import pipeline_flow

    summary = pipeline_flow(args.config, fresh=args.fresh)
    print(f"\npipeline {args.config}: MLflow parent run {summary['parent_run_id']} ({summary['tracking_uri']})")
    for stage, info in summary["stages"].items():
        print(f"  {stage:>9}: {json.dumps(info, default=str)[:300]}")
    print(f"results: {summary['results_dir']}")
    return 1 if summary["stages"]["optimise"]["failed"] else 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from flows.pipeline import pipeline_flow, read_pipeline

    path = str(Path(args.config).resolve())
    read_pipeline(path)  # validate now, not at 3 a.m.
    print(f"serving deployment 'mils-pipeline/{args.name}' (cron {args.cron!r}) for {path}; each run writes a new "
          "dated results folder; Ctrl-C stops it")
    pipeline_flow.serve(name=args.name, cron=args.cron, parameters={"config_path": path, "fresh": True})
    return 0


def cmd_data_get(args: argparse.Namespace) -> int:
    from evaluation.downloads import config_snippet, get

    source, todo = get(args.name, args.root, mirror=args.mirror)
    for step in todo:
        print(f"still to do: {step}")
    print(f"{source.description}: in {Path(args.root).resolve()}. In a run config:\n")
    print(config_snippet(source, args.root))
    for note in source.notes:
        print(f"# {note}")
    return 1 if todo else 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from evaluation.downloads import SOURCES

    for source in SOURCES.values():
        print(f"{source.name:>8}: {source.description}")
        for remote in source.files:
            checks = ", ".join(c for c, v in (("size", remote.size), ("md5", remote.md5)) if v) or "server length"
            print(f"{'':>10}{remote.url}  (verified by {checks})")
    return 0


def cmd_t2i(args: argparse.Namespace) -> int:
    from mils.image_tasks import run_text_to_image

    config = _config(args, task="text_to_image")
    with contextlib.redirect_stdout(sys.stderr):
        results = run_text_to_image(config, args.prompts, args.out)
    for r in results:
        print(f"{r['prompt']!r}\n  -> {r['best_prompt']!r} (PickScore {r['score']:.3f}, step 0: "
              f"{r['history'][0]['best_score']:.3f})\n  images per step: {Path(r['images'][0]).parent}")
    return 0


def cmd_style(args: argparse.Namespace) -> int:
    from mils.image_tasks import run_style_transfer

    config = _config(args, task="style_transfer")
    with contextlib.redirect_stdout(sys.stderr):
        result = run_style_transfer(config, args.content, args.style, args.out)
    print(f"best instruction: {result['best_instruction']!r} (style + content distance {result['score']:.3f})")
    print(f"images per step and result.json: {args.out}")
    return 0


def cmd_arithmetic(args: argparse.Namespace) -> int:
    from mils.arithmetic import run_arithmetic

    configs = [_config(args, task=t) for t in ("image_captioning", "audio_captioning", "text_to_image")]
    with contextlib.redirect_stdout(sys.stderr):
        summary = run_arithmetic(*configs, args.image, args.audio, args.out)
    for key in ("image_caption", "audio_caption", "combined_prompt", "final_prompt", "final_image"):
        print(f"{key:>16}: {summary[key]}")
    return 0


def cmd_human_export(args: argparse.Namespace) -> int:
    from human_eval.export import export_batch, load_side

    a, b = load_side(args.a, args.stage_a), load_side(args.b, args.stage_b)
    manifest = export_batch(a, b, args.out, axes=args.axes, names=tuple(args.names), seed=args.seed,
                            assignments=args.assignments, catch_fraction=args.catch, base_url=args.base_url,
                            run_id=args.mlflow_run_id)
    n_catch = sum(p["catch"] for p in manifest["pairs"].values())
    out = Path(args.out)
    print(f"{len(manifest['pairs']) - n_catch} pairs + {n_catch} catch trials, {manifest['assignments']} assignments each:")
    print(f"  for annotators: {out / 'amt_input.csv'}, {out / 'question.html'}, {out / 'upload'}/ (media)")
    print(f"  unblinding key (keep private): {out / 'key.json'}")
    print(f"  local raters: mils judge serve {out}")
    return 0


def cmd_human_ingest(args: argparse.Namespace) -> int:
    from human_eval.ingest import ingest, log_to_mlflow, report_text

    batch = Path(args.batch)
    result = ingest(args.results, batch / "key.json", seed=args.seed)
    text = report_text(result)
    print(text)
    out = Path(args.out) if args.out else batch / "human_eval_report.json"
    out.write_text(json.dumps(result.as_dict(), indent=2))
    print(f"report: {out}")
    run_id = args.mlflow_run_id or json.loads((batch / "key.json").read_text()).get("mlflow_run_id")
    if run_id:
        log_to_mlflow(result, run_id, args.tracking_uri)
        print(f"logged to MLflow run {run_id} ({args.tracking_uri})")
    return 0


def cmd_judge_serve(args: argparse.Namespace) -> int:
    from human_eval.server import serve

    print(f"judging page for {args.batch_dir}: http://{args.host}:{args.port}/  (Ctrl-C stops; answers are kept)")
    serve(args.batch_dir, args.host, args.port)
    return 0


def _read_json_arg(path: str, what: str):
    file = Path(path)
    if not file.is_file():
        raise FileNotFoundError(f"{what} file not found: {file}")
    try:
        return json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{what} file {file} is not valid JSON: {err}") from err


def cmd_eval(args: argparse.Namespace) -> int:
    from evaluation.caption_metrics import caption_metrics, format_table

    predictions = _read_json_arg(args.predictions, "predictions")
    references = _read_json_arg(args.references, "references")
    if not isinstance(predictions, dict) or not isinstance(references, dict):
        raise ValueError("predictions must map id -> caption and references id -> [captions] (JSON objects)")
    references = {k: [v] if isinstance(v, str) else v for k, v in references.items()}
    report = caption_metrics(predictions, references, metrics=args.metrics, resamples=args.resamples, seed=args.seed)
    table = report.per_sample
    if args.bertscore_model:
        from evaluation.bertscore import bert_scores

        bert_table, bert_corpus = bert_scores(predictions, references, model=args.bertscore_model,
                                              resamples=args.resamples, seed=args.seed)
        report.corpus.update(bert_corpus)
        table = table.join(bert_table)
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        table.to_parquet(out / "per_sample.parquet")
        (out / "corpus.json").write_text(json.dumps(report.as_dict(), indent=2))
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(format_table(report))
        if args.out:
            print(f"per-sample scores: {Path(args.out) / 'per_sample.parquet'}")
    return 0


def cmd_bank(args: argparse.Namespace) -> int:
    from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES

    from mils.bank import AUDIO_BANK_PROMPT, BANK_PROMPT, generate_bank, read_labels, save_bank
    from mils.captioning import build_generator

    if args.modality == "audio" and not args.labels:
        raise ValueError("an audio bank needs --labels (AudioSet class_labels_indices.csv or one label per line)")
    config = _config(args)
    names = read_labels(args.labels) if args.labels else list(IMAGENET_CLASSNAMES)
    classes = names[: args.classes] if args.classes else names
    generator = build_generator(config.generator, config.cache_path())
    prompt = AUDIO_BANK_PROMPT if args.modality == "audio" else BANK_PROMPT
    bank = generate_bank(generator, classes, args.per_class, seed=config.loop.seed, batch_size=config.batch_size,
                         generator_name=config.generator.model, prompt=prompt)
    path = save_bank(bank, args.out)
    print(f"wrote {len(bank)} captions for {len(classes)} classes to {path} (+ .provenance.json)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mils", description="MILS: training-free multimodal test-time optimisation")
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    caption = sub.add_parser("caption", help="caption images, videos or audio files")
    caption.add_argument("paths", nargs="+", help="media files (modality from the extension)")
    caption.add_argument("--modality", choices=["image", "video", "audio"], help="override the extension")
    caption.add_argument("--scorer-model", help="audio: a ClapModel id or local directory")
    caption.add_argument("--json", action="store_true", help="one JSON object per input on stdout")
    _add_run_options(caption)
    caption.set_defaults(func=cmd_caption)

    demo = sub.add_parser("demo", help="benchmark flow on the bundled sample photos (offline), tracked in MLflow")
    demo.add_argument("--out", default="outputs/sample_set", help="where the sample photos are written")
    demo.add_argument("--tracking-uri", help="MLflow tracking URI (default sqlite:///mlruns.db)")
    _add_run_options(demo)
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run (or resume) a benchmark config through Prefect, log to MLflow")
    run.add_argument("config", help="YAML run config")
    run.add_argument("--tracking-uri", help="MLflow tracking URI (overrides the config)")
    run.set_defaults(func=cmd_run, profile="offline")
    for name in ("steps", "keep", "requested", "exploration", "seed", "bank", "bank_size", "batch_size", "cache_dir"):
        run.set_defaults(**{name: None})

    sweep = sub.add_parser("sweep", help="ablation sweep: a base config with a 'sweep:' grid")
    sweep.add_argument("config")
    sweep.set_defaults(func=cmd_sweep)

    report = sub.add_parser("report", help="comparison table of a sweep's child runs")
    report.add_argument("run_id", help="the sweep's parent MLflow run id")
    report.add_argument("--tracking-uri", default="sqlite:///mlruns.db")
    report.set_defaults(func=cmd_report)

    pipeline = sub.add_parser("pipeline", help="bank -> optimisation -> metrics -> sweep -> judging batch, one MLflow run")
    pipeline.add_argument("config", help="YAML run config, optionally with 'sweep:' and 'judging:' sections")
    pipeline.add_argument("--fresh", action="store_true", help="a new dated results folder instead of resuming")
    pipeline.set_defaults(func=cmd_pipeline)

    schedule = sub.add_parser("schedule", help="serve a cron-scheduled pipeline deployment (needs a Prefect server)")
    schedule.add_argument("config")
    schedule.add_argument("--cron", required=True, help='e.g. "0 3 * * 1" (Mondays 03:00)')
    schedule.add_argument("--name", default="rerun", help="deployment name (shown as mils-pipeline/NAME)")
    schedule.set_defaults(func=cmd_schedule)

    data = sub.add_parser("data", help="download benchmark data").add_subparsers(dest="data_command", required=True)
    data_get = data.add_parser("get", help="download, verify and unpack what a dataset loader needs (resumable)")
    data_get.add_argument("name", help="coco, msrvtt or clotho (`mils data list`)")
    data_get.add_argument("--root", required=True, help="folder to put the files in")
    data_get.add_argument("--mirror", help="fetch the same file names from this base URL instead")
    data_get.set_defaults(func=cmd_data_get)
    data_list = data.add_parser("list", help="the known data sources and their files")
    data_list.set_defaults(func=cmd_data_list)

    bank = sub.add_parser("bank", help="generate an initial caption bank with the LLM (paper recipe)")
    bank.add_argument("--out", required=True, help="output text file")
    bank.add_argument("--per-class", type=int, default=10, help="captions per class (paper: 50 for audio)")
    bank.add_argument("--classes", type=int, help="only the first N classes (quick runs)")
    bank.add_argument("--modality", choices=["image", "audio"], default="image",
                      help="image: ImageNet classes; audio: the labels in --labels")
    bank.add_argument("--labels", help="class names: a text file, or AudioSet's class_labels_indices.csv")
    _add_run_options(bank)
    bank.set_defaults(func=cmd_bank)

    t2i = sub.add_parser("t2i", help="text-to-image prompt rewriting (LLM + diffusion + PickScore)")
    t2i.add_argument("prompts", nargs="+")
    t2i.add_argument("--pipeline", help="diffusers pipeline id or local directory (paper: FLUX.1-schnell)")
    t2i.add_argument("--reward", help="PickScore model id or local directory")
    t2i.add_argument("--reward-processor", help="its processor (PickScore uses laion/CLIP-ViT-H-14-laion2B-s32B-b79K)")
    t2i.add_argument("--out", default="outputs/t2i")
    _add_run_options(t2i)
    t2i.set_defaults(func=cmd_t2i)

    style = sub.add_parser("style", help="style transfer: find the edit instruction (InstructPix2Pix + VGG)")
    style.add_argument("content")
    style.add_argument("style")
    style.add_argument("--editor", help="InstructPix2Pix pipeline id or local directory")
    style.add_argument("--out", default="outputs/style")
    _add_run_options(style)
    style.set_defaults(func=cmd_style)

    arithmetic = sub.add_parser("arithmetic", help="image + audio -> text -> combined prompt -> image")
    arithmetic.add_argument("image")
    arithmetic.add_argument("audio")
    arithmetic.add_argument("--scorer-model", help="audio scorer (ClapModel id or directory)")
    arithmetic.add_argument("--pipeline")
    arithmetic.add_argument("--reward")
    arithmetic.add_argument("--reward-processor")
    arithmetic.add_argument("--out", default="outputs/arithmetic")
    _add_run_options(arithmetic)
    arithmetic.set_defaults(func=cmd_arithmetic)

    evaluate = sub.add_parser("eval", help="captioning metrics with bootstrap CIs for a predictions file")
    evaluate.add_argument("--predictions", required=True, help="JSON: id -> caption")
    evaluate.add_argument("--references", required=True, help="JSON: id -> [reference captions]")
    evaluate.add_argument("--metrics", nargs="+", default=["BLEU", "METEOR", "ROUGE_L", "CIDEr", "SPICE", "SPIDEr"])
    evaluate.add_argument("--bertscore-model", help="also BERTScore with this model (HF id or local directory)")
    evaluate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--out", help="folder for per_sample.parquet and corpus.json")
    evaluate.add_argument("--json", action="store_true", help="JSON on stdout (pycocoevalcap's native 0-1 scale)")
    evaluate.set_defaults(func=cmd_eval)

    human = sub.add_parser("human-eval", help="pairwise human evaluation batches").add_subparsers(
        dest="human_command", required=True)
    export = human.add_parser("export", help="build an AMT batch (CSV + form + key) from two result sets")
    export.add_argument("--a", required=True, help="baseline: results folder or JSON id -> caption/entry")
    export.add_argument("--b", required=True, help="system under test (e.g. MILS), same formats")
    export.add_argument("--stage-a", default="final", choices=["final", "step0"], help="for results folders")
    export.add_argument("--stage-b", default="final", choices=["final", "step0"])
    export.add_argument("--out", required=True, help="batch folder to write")
    export.add_argument("--axes", nargs="+", default=["faithfulness", "quality"])
    export.add_argument("--names", nargs=2, default=["baseline", "mils"], metavar=("A", "B"))
    export.add_argument("--assignments", type=int, default=3, help="annotators per pair")
    export.add_argument("--catch", type=float, default=0.1, help="fraction of extra catch-trial pairs")
    export.add_argument("--base-url", help="media as URLs under this prefix instead of the upload/ folder")
    export.add_argument("--seed", type=int, default=0)
    export.add_argument("--mlflow-run-id", help="the run the pairs came from (ingest logs win rates there)")
    export.set_defaults(func=cmd_human_export)
    ingest_cmd = human.add_parser("ingest", help="read AMT (or local page) results: win/tie/lose with CIs")
    ingest_cmd.add_argument("--results", required=True, help="AMT batch results CSV or the page's export")
    ingest_cmd.add_argument("--batch", required=True, help="the batch folder (holds key.json)")
    ingest_cmd.add_argument("--out", help="report JSON (default BATCH/human_eval_report.json)")
    ingest_cmd.add_argument("--mlflow-run-id", help="log the rates to this run (default: the key's)")
    ingest_cmd.add_argument("--tracking-uri", default="sqlite:///mlruns.db")
    ingest_cmd.add_argument("--seed", type=int, default=0)
    ingest_cmd.set_defaults(func=cmd_human_ingest)

    judge = sub.add_parser("judge", help="local judging page").add_subparsers(dest="judge_command", required=True)
    judge_serve = judge.add_parser("serve", help="serve a batch to in-house raters")
    judge_serve.add_argument("batch_dir")
    judge_serve.add_argument("--host", default="127.0.0.1")
    judge_serve.add_argument("--port", type=int, default=8765)
    judge_serve.set_defaults(func=cmd_judge_serve)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, KeyError, ImportError, RuntimeError, OSError) as err:
        print(f"mils: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
