"""`mils demo | run | pipeline | sweep | report | schedule`: the Prefect flows, tracked in MLflow."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from cli.common import add_run_options, add_trust_options, make_config, print_table, read_json_arg
from cli.signals import stop_on_signals
from mils.config import primary_metric
from mils.errors import InputError, MilsError


def _print_benchmark(record) -> None:
    """The run record (:class:`evaluation.run_record.RunRecord`) as tables: nothing is read back or recomputed."""
    from evaluation.run_report import console_table, headline_sentence
    from mils.engine import cost_line, strategy_title

    print()
    print_table([(Path(s.sample_id).name, s.initial, s.initial_score, s.caption, s.score) for s in record.samples])
    for sample_id, error in record.failures.items():
        print(f"FAILED {sample_id}: {error}")
    print("\nbest score by step (0 = initial bank):")
    for s in record.samples:
        print(f"  {Path(s.sample_id).name:<22} " + " -> ".join(f"{v:.3f}" for v in s.by_step))
    print(f"\n{len(record.samples)} samples, step 0 (the initial bank's best: a retrieval baseline) vs final:")
    print(console_table(record.as_dict()))
    primary = primary_metric(record.gain) if record.gain else None
    if primary:
        who = strategy_title(record.config.loop.strategy)
        print(record.gain[primary].verdict(primary).replace("B ", f"{who} final ", 1))
    print("\n" + cost_line(record.cost))
    print(f"\nresults: {record.results_dir}  ({record.counts['computed']} computed, "
          f"{record.counts['resumed']} resumed, {record.seconds:.0f}s; {record.status}; run.json: the record)")
    print("\n" + headline_sentence(record.as_dict()))


def _print_mlflow_hint(tracking, dashboard: str | None = None) -> None:
    """How to open the runs: the `mlflow ui` command and the address of the classic runs view
    (or of a sweep's dashboard)."""
    import mlflow

    from flows.dashboard import runs_url

    experiment = mlflow.MlflowClient(tracking.uri).get_experiment_by_name(tracking.experiment)
    url = dashboard or (runs_url(experiment.experiment_id) if experiment else None)
    print(f"MLflow experiment {tracking.experiment!r} logged to {tracking.uri}; to browse it:\n"
          f"  {Path(sys.executable).parent / 'mlflow'} ui --backend-store-uri {tracking.uri} "
          f"--host 127.0.0.1 --port 5000" + (f"\n  then open {url}" if url else "")
          + (f"\n  once per browser, so that runs opened from the table keep this layout: open {url.split('?')[0]} "
             "and click 'Model training' (top left)" if url else ""))


def cmd_run(args: argparse.Namespace) -> int:
    return run_and_report(make_config(args))


def run_and_report(config) -> int:
    """Run (or resume) ``config`` through the benchmark flow, then print its record, write its
    report.html and say how to open it in MLflow: every verb that runs a benchmark (run, t2i, style)."""
    from flows.benchmark import run_benchmark
    from mils.components import plan_run
    from mils.storage import ensure_unlocked

    folder = plan_run(config).results_dir
    ensure_unlocked(folder)  # a second start of the same run: one line, no flow
    with stop_on_signals(_resume_hint(folder)):
        outcome = run_benchmark(config)
    _print_benchmark(outcome)
    _write_html_report(Path(outcome.results_dir))
    _print_mlflow_hint(config.tracking, outcome.mlflow.get("view"))
    return 1 if outcome.failures else 0


def _resume_hint(folder: Path) -> str:
    return (f"the samples finished so far are kept in {folder}; run the same command again to "
            "resume (only the unfinished samples are computed)")


def demo_config(args: argparse.Namespace):
    """The demo's run config: the offline profile with its DEMO_SETTINGS, on the bundled photos."""
    from mils.config import DEMO_SETTINGS, RunConfig

    config = make_config(args)
    if args.profile == "offline" and not args.config:  # flags given by the user still win
        raw = config.model_dump()
        raw["loop"]["keep"] = args.keep or DEMO_SETTINGS["loop"]["keep"]
        raw["generator"]["temperature"] = DEMO_SETTINGS["generator"]["temperature"]
        config = RunConfig.model_validate(raw)
    config = config.model_copy(update={"name": "demo"})
    return config.model_copy(update={"dataset": config.dataset.model_copy(update={"kind": "sample",
                                                                                  "args": {"directory": args.out}})})


def cmd_demo(args: argparse.Namespace) -> int:
    config = demo_config(args)
    print(f"MILS demo: the {config.profile!r} profile on the bundled sample photos ({args.out}) "
          f"through the Prefect benchmark flow, tracked in MLflow")
    return run_and_report(config)


def cmd_pipeline(args: argparse.Namespace) -> int:
    from evaluation.datasets import check_dataset
    from flows.pipeline import pipeline_flow, read_pipeline

    check_dataset(read_pipeline(args.config).config.dataset, paths=True)  # one line before any flow starts
    with stop_on_signals("finished samples are kept; run the same command again to resume"):
        summary = pipeline_flow(args.config, fresh=args.fresh)
    print(f"\npipeline {args.config}: MLflow parent run {summary.parent_run_id} ({summary.tracking_uri})")
    for stage, info in summary.stages.items():
        print(f"  {stage:>12}: {_stage_line(info)}")
    print(f"results: {summary.results_dir}")
    _print_mlflow_hint(read_pipeline(args.config).config.tracking, summary.stages.get("sweep", {}).get("dashboard"))
    return 1 if summary.stages["optimise"]["failed"] else 0


def _stage_line(info) -> str:
    """A pipeline stage's summary as ``key: value`` pairs, long values shortened (not raw JSON cut
    off mid-key)."""
    if not isinstance(info, dict):
        return str(info)
    parts = []
    for key, value in info.items():
        if isinstance(value, float):
            text = f"{value:.4g}"
        elif isinstance(value, (dict, list)):
            text = f"{len(value)} {'entries' if isinstance(value, dict) else 'items'}"
        else:
            text = str(value)
        parts.append(f"{key}: {text if len(text) <= 70 else text[:67] + '...'}")
    return "; ".join(parts)


def cmd_sweep(args: argparse.Namespace) -> int:
    from evaluation.datasets import check_dataset
    from flows.report import sweep_report
    from flows.sweep import expand_sweep, run_sweep, sweep_name

    check_dataset(expand_sweep(args.config)[1][0][1].dataset, paths=True)  # one line before any flow starts
    with stop_on_signals("finished samples of every variant are kept; run the same command again to resume"):
        outcome = run_sweep(args.config)
    print(f"\n{outcome.variants} variants from {outcome.optimisation_runs} optimisation runs")
    _, variants = expand_sweep(args.config)
    out = Path(variants[0][1].output_dir) / f"{sweep_name(args.config)}-report-{outcome.parent_run_id[:8]}"
    print(sweep_report(outcome.parent_run_id, outcome.tracking_uri, out))
    print(f"again later: mils report {outcome.parent_run_id} --tracking-uri {outcome.tracking_uri}")
    _print_mlflow_hint(variants[0][1].tracking, outcome.dashboard)
    return 0


def cmd_baseline(args: argparse.Namespace) -> int:
    from evaluation.caption_metrics import caption_metrics, format_table
    from evaluation.datasets import config_dataset
    from evaluation.vlm_baseline import run_baseline
    from mils.engine import cost_line, run_cost
    from mils.storage import ResultStore

    config = make_config(args)
    options = {k: v for k, v in (("model", args.model), ("prompt", args.prompt)) if v is not None}
    start = time.perf_counter()
    data = config_dataset(config.dataset)  # read once, for the captions and the metrics
    outcome = run_baseline(config, args.captioner, options, batch_size=config.batch_size, data=data)
    results = ResultStore(outcome["results_dir"]).results()
    references = {k: v for k, v in data.references().items() if v}
    predictions = {r.sample_id: r.caption for r in results if r.sample_id in references}
    if predictions and config.metrics:
        print(format_table(caption_metrics(predictions, {k: references[k] for k in predictions}, config.metrics,
                                           seed=config.loop.seed, tokenize=config.eval_tokenize)))
    print(cost_line(run_cost(results, time.perf_counter() - start, data.total or len(data))))
    print(f"results: {outcome['results_dir']} ({outcome['done']} captioned, {len(outcome['failed'])} failed); "
          f"compare with a MILS run: mils compare {outcome['results_dir']} RESULTS")
    return 1 if outcome["failed"] else 0


def _write_html_report(folder: Path, dataset=None) -> None:
    """RUN/report.html: the run as one static page (evaluation/run_report.py). References come from
    the run's dataset when it loads (never shown from a path: folder_dataset)."""
    from evaluation.datasets import folder_references
    from evaluation.run_report import write_run_report

    references = None
    try:
        references = ({s.id: list(s.references) for s in dataset.rows} if dataset else
                      folder_references(folder, "the report shows no references"))
    except MilsError as err:
        print(f"report: {err}", file=sys.stderr)
    try:
        print(f"report: {write_run_report(folder, references=references)} (one static page: share it as it is)")
    except MilsError as err:  # a run whose every sample failed has nothing to report; the run itself stands
        print(f"report: not written: {err}", file=sys.stderr)


def cmd_report(args: argparse.Namespace) -> int:
    from flows.report import require_store, sweep_report
    from mils.registry import import_plugins
    from mils.storage import RunFolder

    if RunFolder(args.run_id).samples.is_dir():  # a results folder: its static HTML report
        import_plugins(args.plugins)  # a plugin's dataset, for the references: only the modules named here
        _write_html_report(Path(args.run_id))
        return 0
    require_store(args.tracking_uri)
    print(sweep_report(args.run_id, args.tracking_uri, Path(args.out or f"outputs/report-{args.run_id[:8]}"),
                       full=args.full))
    return 0


def _job_variables(text: str | None) -> dict | None:
    """``--job-variables``: inline JSON, or a JSON file's path."""
    if not text:
        return None
    if not text.lstrip().startswith("{"):
        return read_json_arg(text, "--job-variables")
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(f"--job-variables is not JSON: {err}") from None


def cmd_schedule(args: argparse.Namespace) -> int:
    from flows.pipeline import read_pipeline
    from flows.schedule import checked_cron, concurrency, deploy_to_pool, serve_pipeline

    path = str(Path(args.config).resolve())
    read_pipeline(path)  # validate now, not at 3 a.m.
    checked_cron(args.cron)
    concurrency(args.max_running, args.collision)
    limit = f"at most {args.max_running} at a time, {args.collision} on collision" if args.max_running else "no limit"
    if args.pool:
        variables = _job_variables(args.job_variables)
        deployment = deploy_to_pool(path, args.name, args.cron, args.pool, args.pool_type, args.max_running,
                                    args.collision, variables)
        print(f"deployed 'mils-pipeline/{args.name}' (id {deployment}, cron {args.cron!r}, {limit}) to work pool "
              f"{args.pool!r} for {path}.\nOn each machine that should run it, from this checkout and environment:\n"
              f"  .venv/bin/prefect worker start --pool {args.pool}")
        return 0
    print(f"serving deployment 'mils-pipeline/{args.name}' (cron {args.cron!r}, {limit}) for {path}; each run writes "
          "a new dated results folder; Ctrl-C stops it (the schedule stays active)")
    serve_pipeline(path, args.name, args.cron, args.max_running, args.collision)
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from flows.history import format_history, log_history
    from flows.pipeline import read_pipeline

    spec = read_pipeline(args.config)
    tracking = spec.config.tracking
    table = log_history(tracking.uri, tracking.experiment, spec.key(), f"{spec.config.name}: reruns", Path(args.out))
    print(f"{len(table)} reruns of {args.config} (final step, x100, 95% CI; in brackets after: the paired delta "
          "vs the previous rerun)")
    print(format_history(table))
    print(f"\nplot: {Path(args.out) / 'history.png'} (also logged to the newest rerun's MLflow run)")
    return 0


SWEEP_HELP = """a sweep YAML is a run config plus a grid of dotted keys:

  profile: offline
  sweep:
    loop.keep: [5, 10]
    loop.steps: [1, 2, 3]     # steps variants are read off one longest run per other setting

at the end: a table of every variant (metrics x100 with 95% CIs, wins/ties/losses); report.html (one
static page), report.csv and report.tex (booktabs) in OUTPUT_DIR/NAME-report-<id>/ (NAME: the
config's name, which also starts every variant's name and folder); sweep_comparison.png and the link to an
MLflow view of the variants side by side. More than 200 variants are refused (MILS_MAX_VARIANTS).
Resume: run the same command again. Example: configs/ablation_offline.yaml"""


def register(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="benchmark flow on the bundled sample photos (offline), tracked in MLflow")
    demo.add_argument("--out", default="outputs/sample_set", help="where the sample photos are written")
    demo.add_argument("--tracking-uri", help="MLflow tracking URI (default sqlite:///mlruns.db)")
    add_run_options(demo)
    demo.set_defaults(func=cmd_demo)

    run = sub.add_parser("run", help="run (or resume) a benchmark config through Prefect, log to MLflow")
    run.add_argument("config", help="YAML run config")
    run.add_argument("--tracking-uri", help="MLflow tracking URI (overrides the config)")
    add_trust_options(run)
    run.set_defaults(func=cmd_run, profile="offline")
    for name in ("steps", "keep", "requested", "exploration", "seed", "bank", "bank_size", "batch_size", "cache_dir"):
        run.set_defaults(**{name: None})

    sweep = sub.add_parser(
        "sweep", help="ablation sweep: a base config with a 'sweep:' grid",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Run every variant of a grid over a base config, one MLflow child run per variant.",
        epilog=SWEEP_HELP)
    sweep.add_argument("config", help="YAML run config with a 'sweep:' section")
    sweep.set_defaults(func=cmd_sweep)

    baseline = sub.add_parser("baseline", help="a VLM captioner over a config's dataset, written as a one-step run")
    add_run_options(baseline)
    baseline.add_argument("--captioner", required=True, help="blip2, llava, smolvlm or qwen2-vl")
    baseline.add_argument("--model", help="HF id or local directory (default: the captioner's)")
    baseline.add_argument("--prompt", help="the captioning prompt (default: the captioner's)")
    baseline.set_defaults(func=cmd_baseline)

    report = sub.add_parser("report", help="comparison table of a sweep's child runs")
    report.add_argument("run_id", help="the sweep's parent MLflow run id (its table for a paper), or a results "
                        "folder (its report.html: one static page)")
    report.add_argument("--tracking-uri", default="sqlite:///mlruns.db")
    report.add_argument("--out", help="where report.csv and report.tex (booktabs) go (default outputs/report-<id>)")
    report.add_argument("--full", action="store_true", help="report.tex with every column (default: the headline)")
    report.add_argument("--plugins", nargs="*", default=[], help="modules for a plugin task's dataset (references)")
    report.set_defaults(func=cmd_report)

    pipeline = sub.add_parser("pipeline", help="bank -> optimisation -> metrics -> sweep -> judging batch, one MLflow run")
    pipeline.add_argument("config", help="YAML run config, optionally with 'sweep:' and 'judging:' sections")
    pipeline.add_argument("--fresh", action="store_true", help="a new dated results folder instead of resuming")
    pipeline.set_defaults(func=cmd_pipeline)

    schedule = sub.add_parser("schedule", help="a cron-scheduled pipeline: served here, or deployed to a work pool")
    schedule.add_argument("config")
    schedule.add_argument("--cron", required=True, help='e.g. "0 3 * * 1" (Mondays 03:00)')
    schedule.add_argument("--name", default="rerun", help="deployment name (shown as mils-pipeline/NAME)")
    schedule.add_argument("--pool", help="deploy to this Prefect work pool (workers run it) instead of serving here")
    schedule.add_argument("--pool-type", default="process", help="the pool's type when it must be created (process)")
    schedule.add_argument("--max-running", type=int, default=1, help="reruns at once (0: no limit; default 1)")
    schedule.add_argument("--collision", default="cancel", choices=["cancel", "queue"],
                          help="a rerun due while the limit is reached: cancelled (default) or queued")
    schedule.add_argument("--job-variables", help="JSON (or @file) for the pool's job template, e.g. a GPU request")
    schedule.set_defaults(func=cmd_schedule)

    history = sub.add_parser("history", help="a scheduled pipeline's reruns: metrics with CIs, deltas, regressions")
    history.add_argument("config", help="the pipeline YAML")
    history.add_argument("--out", default="outputs/history", help="where history.png and history.json go")
    history.set_defaults(func=cmd_history)
