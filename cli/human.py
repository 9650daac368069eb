"""`mils human-eval export | ingest` and `mils judge serve`: pairwise human evaluation."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def cmd_human_export(args: argparse.Namespace) -> int:
    from human_eval.export import export_batch, load_system

    a, b = load_system(args.a, args.stage_a), load_system(args.b, args.stage_b)
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
    from mils.files import write_atomic
    from mils.storage import finite_or_null

    batch = Path(args.batch)
    result = ingest(args.results, batch / "key.json", seed=args.seed)
    text = report_text(result)
    print(text)
    out = Path(args.out) if args.out else batch / "human_eval_report.json"
    write_atomic(out, json.dumps(finite_or_null(result.as_dict()), indent=2, allow_nan=False))
    print(f"report: {out}")
    run_id = args.mlflow_run_id or _sealed_run_id(batch)
    if run_id:
        log_to_mlflow(result, run_id, args.tracking_uri)
        print(f"logged to MLflow run {run_id} ({args.tracking_uri})")
    return 0


def _sealed_run_id(batch: Path) -> str | None:
    """The MLflow run key.json names, when an export of this user's sealed it: a batch from elsewhere
    does not choose the run that judgements are written into (``--mlflow-run-id`` does)."""
    from mils.storage import sealed

    key = json.loads((batch / "key.json").read_text())
    run_id = key.get("mlflow_run_id") if isinstance(key, dict) else None
    if not isinstance(run_id, str) or not run_id:
        return None
    if sealed(batch.resolve(), run_id, key.get("mlflow_seal")):
        return run_id
    print(f"key.json names MLflow run {run_id[:40]!r}, which no export of yours sealed for this batch: not logged there "
          f"(pass --mlflow-run-id {run_id[:40]} if you trust it)", file=sys.stderr)
    return None


def cmd_judge_serve(args: argparse.Namespace) -> int:
    from human_eval.server import serve

    print(f"judging page for {args.batch_dir}: http://{args.host}:{args.port}/  (Ctrl-C stops; answers are kept)")
    serve(args.batch_dir, args.host, args.port, tuple(args.origin))
    return 0


def cmd_judge_invite(args: argparse.Namespace) -> int:
    from human_eval import invites

    tokens = invites.invite(args.batch_dir, args.names)
    base = args.url.rstrip("/")
    print(f"invite links for {args.batch_dir} (one per rater; send each privately):")
    for name, token in tokens.items():
        print(f"  {name}: {base}/?invite={token}")
    admin = invites.read(args.batch_dir)["admin"]
    print(f"export (admin token, keep it to yourself): {base}/api/export?admin={admin}")
    print(f"then: mils judge serve {args.batch_dir} --host 0.0.0.0 --port PORT (any address now needs a link)")
    return 0


def cmd_judge_revoke(args: argparse.Namespace) -> int:
    from human_eval import invites

    invites.revoke(args.batch_dir, args.names)
    print(f"revoked: {', '.join(args.names)} (their links stop working at once; answers already given are kept)")
    return 0


def register(sub: argparse._SubParsersAction) -> None:
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
    judge_serve.add_argument("--origin", action="append", default=[], help="the public origin a reverse proxy serves "
                             "the page from (https://judge.example.org), when the proxy rewrites the Host header "
                             "(better: proxy_set_header Host $host); repeatable")
    judge_serve.set_defaults(func=cmd_judge_serve)
    judge_invite = judge.add_parser("invite", help="secret links for raters on other machines")
    judge_invite.add_argument("batch_dir")
    judge_invite.add_argument("names", nargs="+", help="one link per rater name")
    judge_invite.add_argument("--url", default="http://HOST:8765", help="the address raters will reach the page at")
    judge_invite.set_defaults(func=cmd_judge_invite)
    judge_revoke = judge.add_parser("revoke", help="stop raters' links from working")
    judge_revoke.add_argument("batch_dir")
    judge_revoke.add_argument("names", nargs="+")
    judge_revoke.set_defaults(func=cmd_judge_revoke)
