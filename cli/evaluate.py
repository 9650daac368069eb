"""`mils eval` (metrics with bootstrap CIs for a predictions file), `mils compare` (two runs,
paired) and `mils view` (one run, sample by sample, in the browser)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cli.common import read_json_arg
from mils.errors import InputError


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
    from evaluation.compare import side_from_path

    if Path(spec.partition(":")[0]).exists() or spec.endswith(".json"):
        return side_from_path(spec)
    from flows.report import side_from_mlflow  # anything else is taken for an MLflow run id

    return side_from_mlflow(spec, tracking_uri)


def cmd_compare(args: argparse.Namespace) -> int:
    from evaluation.compare import compare, references_for

    a, b = _side(args.a, args.tracking_uri), _side(args.b, args.tracking_uri)
    metrics = args.metrics or list((a.config or b.config).metrics if (a.config or b.config) else ["BLEU", "CIDEr"])
    result = compare(a, b, references_for(a, b, args.references), metrics, seed=args.seed, resamples=args.resamples)
    print(result.report())
    return 0


def cmd_view(args: argparse.Namespace) -> int:
    from evaluation.viewer import RunIndex, create_app

    folder = Path(args.run)
    if not folder.exists():
        from flows.report import results_dir_from_mlflow  # anything else is taken for an MLflow run id

        folder = results_dir_from_mlflow(args.run, args.tracking_uri)
    index = RunIndex(folder)
    import uvicorn

    print(f"{len(index.rows)} samples of {index.folder}: http://{args.host}:{args.port}/  (Ctrl-C stops)")
    uvicorn.run(create_app(index), host=args.host, port=args.port, log_level="warning")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
    view = sub.add_parser("view", help="browse one run sample by sample: scores by step, kept sets, raw replies")
    view.add_argument("run", help="a results folder (a benchmark's or a pipeline's), a `mils t2i`/`mils style` "
                                  "output folder, or an MLflow run id")
    view.add_argument("--host", default="127.0.0.1")
    view.add_argument("--port", type=int, default=8766)
    view.add_argument("--tracking-uri", default="sqlite:///mlruns.db")
    view.set_defaults(func=cmd_view)

    compare = sub.add_parser("compare", help="paired comparison of two runs (or a run and another system's JSON)")
    compare.add_argument("a", help="baseline: results folder (FOLDER:step0 for its step 0), id -> caption JSON, "
                                   "or an MLflow run id")
    compare.add_argument("b", help="the system compared with it, same forms")
    compare.add_argument("--references", help="JSON id -> [captions] (default: the dataset of a MILS side)")
    compare.add_argument("--metrics", nargs="+", help="default: the MILS side's configured metrics")
    compare.add_argument("--tracking-uri", default="sqlite:///mlruns.db")
    compare.add_argument("--resamples", type=int, default=1000)
    compare.add_argument("--seed", type=int, default=0)
    compare.set_defaults(func=cmd_compare)

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
