"""`mils eval` (metrics with bootstrap CIs for a predictions file), `mils compare` (two runs,
paired) and `mils view` (one run, sample by sample, in the browser)."""

from __future__ import annotations

import argparse
import json
import re
import secrets
import sys
from pathlib import Path

from cli.common import read_json_arg
from mils.config import CAPTION_METRICS
from mils.errors import InputError, MilsError, MissingInputError


def cmd_eval(args: argparse.Namespace) -> int:
    from evaluation.caption_metrics import caption_metrics, format_table

    predictions = read_json_arg(args.predictions, "predictions")
    references = read_json_arg(args.references, "references")
    if not isinstance(predictions, dict) or not isinstance(references, dict):
        raise InputError("predictions must map id -> caption and references id -> [captions] (JSON objects)")
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


def _side(spec: str, tracking_uri: str):
    from evaluation.compare import system_from_path

    if Path(spec.partition(":")[0]).exists() or spec.endswith(".json"):
        return system_from_path(spec)
    if not re.fullmatch(r"[0-9a-f]{32}", spec):  # a typo is named, and no MLflow store is opened (or created)
        raise MissingInputError(f"{spec}: no such results folder or JSON file (nor an MLflow run id, 32 hex digits)")
    from flows.report import side_from_mlflow  # an MLflow run id

    return side_from_mlflow(spec, tracking_uri)


def cmd_compare(args: argparse.Namespace) -> int:
    from evaluation.compare import compare, references_for
    from mils.registry import import_plugins

    import_plugins(args.plugins)  # a plugin's dataset (the references) or components: only the modules named here
    a, b = _side(args.a, args.tracking_uri), _side(args.b, args.tracking_uri)
    metrics = args.metrics or list((a.config or b.config).metrics if (a.config or b.config) else ["BLEU", "CIDEr"])
    result = compare(a, b, references_for(a, b, args.references), metrics, seed=args.seed, resamples=args.resamples)
    print(result.report())
    return 0


def _run_folder(run: str, tracking_uri: str) -> Path:
    """A results folder given by its path or by its MLflow run id."""
    folder = Path(run)
    if folder.exists():
        return folder
    if not re.fullmatch(r"[0-9a-f]{32}", run):
        raise MissingInputError(f"no such results folder: {run} (nor an MLflow run id, 32 hex digits)")
    from flows.report import results_dir_from_mlflow

    return results_dir_from_mlflow(run, tracking_uri)


def cmd_export_official(args: argparse.Namespace) -> int:
    from evaluation.datasets import folder_dataset
    from evaluation.finished_run import FinishedRun
    from evaluation.official_log import export_official, official_folders

    run = FinishedRun.open(_run_folder(args.run, args.tracking_uri))
    results, config = run.results(require=False), run.config  # with the trace: a style run's best pairs
    dataset = (folder_dataset(config.dataset, run.folder, "the export names these samples' folders by the "
                              "annotation CSV's rows") if config and config.dataset.kind in ROW_NAMED else None)
    n = export_official(results, Path(args.out), official_folders(dataset, results))
    named = "the annotation CSV's row" if dataset is not None else "sample id"
    print(f"{n} samples written as {Path(args.out)}/<{named}>/log.txt (best, mean, text per step)")
    return 0


ROW_NAMED = ("clotho", "drawbench")  # the official scripts name these samples' folders by CSV row


def cmd_rescore(args: argparse.Namespace) -> int:
    from evaluation.rescore import rescore
    from mils.config import ScorerConfig

    spec = args.scorer.strip()
    try:
        raw = json.loads(spec) if spec.startswith("{") else {"name": spec}
        scorer = ScorerConfig.model_validate(raw)
    except (json.JSONDecodeError, ValueError) as err:
        raise InputError(f"--scorer is a registered name or JSON {{name, options}}: {err}") from None
    _, curve, out = rescore(_run_folder(args.run, args.tracking_uri), scorer, tuple(args.metrics), plugins=args.plugins)
    print(f"optimised vs held-out ({scorer.name}) by step, mean over samples:")
    print(curve.round(4).to_string())
    print(f"\n{out}/ (by_sample.csv, by_step.csv, held_out_vs_step.png)")
    return 0


def cmd_frontier(args: argparse.Namespace) -> int:
    from evaluation.frontier import frontier

    folders = [_run_folder(r, args.tracking_uri) for r in args.runs]
    table = frontier(folders, Path(args.out))
    from flows.tracking import log_frontier
    from mils.config import TrackingConfig, read_run_config

    first = read_run_config(folders[0]).tracking
    # the store comes from the command line, never from a folder (which could name anyone's server)
    run_id = log_frontier(table, TrackingConfig(uri=args.log_to or args.tracking_uri, experiment=first.experiment))
    from evaluation.frontier import console_table
    from evaluation.frontier_seeds import console_seeds

    print(console_table(table))
    seeds = table.attrs.get("over_seeds")
    if seeds is not None:
        print(f"\nover seeds, one point per setting ({Path(args.out)}/frontier_seeds.csv, frontier_seeds.png):\n"
              f"{console_seeds(seeds)}")
    print(f"\n{Path(args.out)}/frontier.csv, frontier.png (deltas: the optimised score vs the first run, paired); "
          f"MLflow run {run_id}")
    return 0


VIEW_PORT = 8766


def _free_port(host: str, port: int, explicit: bool) -> int:
    """``port`` when nothing listens there; else, for the default port, the next free one (a second
    `mils view` used to print a link that served the first run, then fail); an explicit --port in use
    is an error."""
    import socket

    for candidate in [port] if explicit else range(port, port + 50):
        with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn: a closed port's TIME_WAIT is free
            try:
                s.bind((host, candidate))
                return candidate
            except OSError:
                continue
    raise InputError(f"port {port} on {host} is in use (another `mils view`?): pass another --port")


def cmd_view(args: argparse.Namespace) -> int:
    from evaluation.datasets import folder_references
    from human_eval.viewer import RunIndex, create_app
    from human_eval.web_safety import is_loopback
    from mils.registry import import_plugins
    from mils.storage import RunFolder

    folder = _run_folder(args.run, args.tracking_uri)
    references = None
    import_plugins(args.plugins)  # a plugin task's dataset: only the modules named here
    if RunFolder(folder).config.is_file():  # an older `mils t2i` / `mils style` output has no config
        try:
            references = folder_references(folder, "the viewer shows no references")
        except MilsError as err:
            print(f"view: {err}", file=sys.stderr)
    index = RunIndex(folder, tuple(args.media_root), references)
    token = args.token
    if token is not None and len(token) < 16:  # an unset variable ("") or a guessable word
        raise InputError("--token must be at least 16 characters (leave it out for a random one)")
    if not is_loopback(args.host) and token is None:
        token = secrets.token_urlsafe(24)  # anyone who can reach the address would see the run otherwise
    import uvicorn

    port = _free_port(args.host, args.port, explicit=args.port != VIEW_PORT)
    link = f"http://{args.host}:{port}/" + (f"?token={token}" if token else "")
    print(f"{len(index.rows)} samples of {index.folder}: {link}  (Ctrl-C stops)")
    for path, problem in index.problems[:10]:
        print(f"  not shown: {path}: {problem}")
    uvicorn.run(create_app(index, token, loopback_only=is_loopback(args.host)), host=args.host, port=port,
                log_level="warning")
    return 0


def cmd_pope_questions(args: argparse.Namespace) -> int:
    from evaluation.pope import SETTINGS, build_questions, load_instances

    objects = load_instances(args.instances)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for setting in SETTINGS if args.setting == "all" else [args.setting]:
        questions = build_questions(objects, setting, images=args.images, per_image=args.per_image, seed=args.seed)
        lines = [json.dumps({"question_id": n + 1, "image": q.image, "text": q.text, "label": q.label})
                 for n, q in enumerate(questions)]
        path = out / f"coco_pope_{setting}.json"
        path.write_text("\n".join(lines) + "\n")
        print(f"{setting}: {len(questions)} questions on {len({q.image for q in questions})} images -> {path}")
    return 0


def cmd_pope_score(args: argparse.Namespace) -> int:
    from evaluation.pope import load_pope_file, pope_metrics

    questions = load_pope_file(args.questions)
    answers = {}
    for n, line in enumerate(Path(args.answers).read_text().splitlines(), start=1):
        if line.strip():
            try:
                row = json.loads(line)
                answers[int(row["question_id"])] = str(row["text"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as err:
                raise InputError(f"{args.answers} line {n}: expected {{\"question_id\", \"text\"}} ({err!r})") from err
    missing = [n for n in range(1, len(questions) + 1) if n not in answers]
    if missing:
        raise InputError(f"{args.answers} has no answer for {len(missing)} question ids, e.g. {missing[:5]}")
    _print_pope(pope_metrics(questions, [answers[n] for n in range(1, len(questions) + 1)], seed=args.seed))
    return 0


def _print_pope(metrics: dict) -> None:
    from evaluation.tables import text_table

    rows = [(k, f"{100 * v['value']:.1f}", f"[{100 * v['ci_low']:.1f}, {100 * v['ci_high']:.1f}]")
            for k, v in metrics.items() if k != "unclear"]
    print(text_table(("metric", "value", "95% CI (images resampled)"), rows))
    print(f"{metrics['unclear']['value']:.0f} answers were neither yes nor no (counted wrong)")


def cmd_pope_run(args: argparse.Namespace) -> int:
    """POPE's questions put to a captioner, scored; with --instances, CHAIR on its captions too."""
    import mils.components.vlm_captioners  # noqa: F401  (registers the captioners)
    from evaluation.chair import chair
    from evaluation.pope import ask, load_instances, load_pope_file, pope_metrics
    from mils.media import load_image
    from mils.registry import create

    questions = load_pope_file(args.questions)
    options = {k: v for k, v in (("model", args.model), ("device", args.device)) if v is not None}
    vlm = create("captioner", args.captioner, **options)
    answers = ask(vlm, questions, args.images, args.batch_size)
    out = Path(args.out)
    out.write_text("".join(json.dumps({"question_id": n + 1, "text": a}) + "\n" for n, a in enumerate(answers)))
    print(f"{len(answers)} answers -> {out}")
    _print_pope(pope_metrics(questions, answers, seed=args.seed))
    if args.instances:
        images = sorted({q.image for q in questions})
        captions = dict(zip(images, vlm.caption([load_image(Path(args.images) / im) for im in images])))
        result = chair(captions, load_instances(args.instances, with_empty=True))
        print(f"CHAIR on the same model's captions of these {len(images)} images: CHAIR-i {100 * result.chair_i:.1f}, "
              f"CHAIR-s {100 * result.chair_s:.1f} ({result.mentioned} objects mentioned)")
    return 0


def _register_pope(sub: argparse._SubParsersAction) -> None:
    pope = sub.add_parser("pope", help="POPE object-hallucination probing: build questions, score answers")
    pope_sub = pope.add_subparsers(dest="pope_command", required=True)
    questions = pope_sub.add_parser("questions", help="POPE questions from COCO instances (random/popular/adversarial)")
    questions.add_argument("--instances", required=True, help="COCO instances JSON, e.g. instances_val2014.json")
    questions.add_argument("--setting", default="all", choices=["all", "random", "popular", "adversarial"])
    questions.add_argument("--images", type=int, default=500)
    questions.add_argument("--per-image", type=int, default=3)
    questions.add_argument("--seed", type=int, default=0)
    questions.add_argument("--out", required=True, help="folder for coco_pope_<setting>.json (POPE's format)")
    questions.set_defaults(func=cmd_pope_questions)
    score = pope_sub.add_parser("score", help="accuracy/precision/recall/F1/yes-ratio with CIs for a model's answers")
    score.add_argument("--questions", required=True, help="a POPE question file (ours or POPE's release)")
    score.add_argument("--answers", required=True, help='JSON lines {"question_id": n, "text": "free-form answer"}')
    score.add_argument("--seed", type=int, default=0)
    score.set_defaults(func=cmd_pope_score)
    run = pope_sub.add_parser("run", help="ask a captioner POPE's questions, score them (and CHAIR its captions)")
    run.add_argument("--questions", required=True, help="a POPE question file")
    run.add_argument("--images", required=True, help="the folder of the questions' images (COCO val2014)")
    run.add_argument("--captioner", required=True, help="blip2, llava, smolvlm or qwen2-vl")
    run.add_argument("--model", help="HF id or local directory (default: the captioner's)")
    run.add_argument("--device")
    run.add_argument("--instances", help="COCO instances JSON: also CHAIR on the model's captions of the images")
    run.add_argument("--batch-size", type=int, default=8)
    run.add_argument("--seed", type=int, default=0)
    run.add_argument("--out", default="pope_answers.jsonl", help="the answers, as `mils pope score` reads them")
    run.set_defaults(func=cmd_pope_run)


def _register_view(sub: argparse._SubParsersAction) -> None:
    view = sub.add_parser("view", help="browse one run sample by sample: scores by step, kept sets, raw replies")
    view.add_argument("run", help="a results folder (of mils run, pipeline, t2i or style), an older `mils t2i`/"
                                  "`mils style` output folder, or an MLflow run id")
    view.add_argument("--host", default="127.0.0.1", help="loopback by default; any other address gets a secret link")
    view.add_argument("--token", help="the secret the link carries (default on a non-loopback --host: a new random one)")
    view.add_argument("--media-root", action="append", default=[],
                      help="a folder the samples' media may be served from, besides the results folder and the "
                           "dataset folder the run recorded (repeatable)")
    view.add_argument("--port", type=int, default=VIEW_PORT, help="default 8766, or the next free one")
    view.add_argument("--tracking-uri", default="sqlite:///mlruns.db")
    view.add_argument("--plugins", nargs="*", default=[], help="modules to import for a plugin task's dataset (its "
                      "references under each sample; a folder's config.json never imports any)")
    view.set_defaults(func=cmd_view)


def register(sub: argparse._SubParsersAction) -> None:
    _register_pope(sub)
    _register_view(sub)

    compare = sub.add_parser("compare", help="paired comparison of two runs (or a run and another system's JSON)")
    compare.add_argument("a", help="baseline: results folder (FOLDER:step0 for its step 0), id -> caption JSON, "
                                   "or an MLflow run id")
    compare.add_argument("b", help="the system compared with it, same forms")
    compare.add_argument("--references", help="JSON id -> [captions] (default: the dataset of a MILS system)")
    compare.add_argument("--metrics", nargs="+", help="default: the MILS system's configured metrics")
    compare.add_argument("--tracking-uri", default="sqlite:///mlruns.db")
    compare.add_argument("--resamples", type=int, default=1000)
    compare.add_argument("--seed", type=int, default=0)
    compare.add_argument("--plugins", nargs="*", default=[], help="modules to import for a plugin's dataset (a "
                         "folder's config.json never imports any)")
    compare.set_defaults(func=cmd_compare)

    rescore = sub.add_parser("rescore", help="score each step's best of a run with another scorer (a held-out "
                                             "judge), without calling the LLM")
    rescore.add_argument("run", help="a results folder or an MLflow run id")
    rescore.add_argument("--scorer", required=True, help='a scorer name, or JSON {"name": ..., "options": {...}}')
    rescore.add_argument("--metrics", nargs="*", default=["CIDEr", "BLEU"], help="reference metrics by step too")
    rescore.add_argument("--tracking-uri", default="sqlite:///mlruns.db")
    rescore.add_argument("--plugins", nargs="*", default=[], help="modules to import for a plugin's scorer (the "
                         "run's config.json never imports any)")
    rescore.set_defaults(func=cmd_rescore)

    front = sub.add_parser("frontier", help="quality vs cost of several runs (strategies, baselines, variants)")
    front.add_argument("runs", nargs="+", help="results folders or MLflow run ids (the first is the reference)")
    front.add_argument("--out", default="outputs/frontier")
    front.add_argument("--tracking-uri", default="sqlite:///mlruns.db", help="where MLflow run ids are looked up")
    front.add_argument("--log-to", help="the MLflow store the frontier is logged to (default: --tracking-uri)")
    front.set_defaults(func=cmd_frontier)

    export = sub.add_parser("export", help="write a run in another code's output layout").add_subparsers(
        dest="export_command", required=True)
    official = export.add_parser("official", help="the official MILS layout: OUT/<sample id>/log.txt, "
                                                  "best<TAB>mean<TAB>text per step, for its evaluation scripts")
    official.add_argument("run", help="a results folder or an MLflow run id")
    official.add_argument("out", help="the folder to write (the official scripts' OUTPUT_DIR/<run>)")
    official.add_argument("--tracking-uri", default="sqlite:///mlruns.db")
    official.set_defaults(func=cmd_export_official)

    evaluate = sub.add_parser("eval", help="captioning metrics with bootstrap CIs for a predictions file")
    evaluate.add_argument("--predictions", required=True, help="JSON: id -> caption")
    evaluate.add_argument("--references", required=True, help="JSON: id -> [reference captions]")
    evaluate.add_argument("--metrics", nargs="+", default=list(CAPTION_METRICS))
    evaluate.add_argument("--bertscore-model", help="also BERTScore with this model (HF id or local directory)")
    evaluate.add_argument("--resamples", type=int, default=1000, help="bootstrap resamples")
    evaluate.add_argument("--seed", type=int, default=0)
    evaluate.add_argument("--out", help="folder for per_sample.parquet and corpus.json")
    evaluate.add_argument("--json", action="store_true", help="JSON on stdout (pycocoevalcap's native 0-1 scale)")
    evaluate.set_defaults(func=cmd_eval)
