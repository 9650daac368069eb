"""`mils report RUN_ID`: a comparison table of a sweep's child runs, read back from MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evaluation.run_report import sweep_report_html
from evaluation.tables import text_table
from flows.tracking import BEST_BY_STEP
from mils.errors import InputError, MissingInputError


def sweep_children(run_id: str, tracking_uri: str) -> pd.DataFrame:
    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri)
    try:
        parent = client.get_run(run_id)
    except Exception as err:  # MLflow raises its own exception types for unknown ids
        raise InputError(f"no MLflow run {run_id!r} in {tracking_uri}: {err}") from err
    runs = client.search_runs([parent.info.experiment_id], f"tags.mlflow.parentRunId = '{run_id}'",
                              order_by=["attributes.start_time ASC", "attributes.run_name ASC"])
    rows = []
    for run in runs:
        row = {"run": run.info.run_name, "run_id": run.info.run_id}
        row.update({k: v for k, v in run.data.params.items() if k.startswith("sweep.")})
        metrics = dict(run.data.metrics)
        if "score/best" in metrics:  # logged before the per-step scores moved under by_step/
            metrics.setdefault(BEST_BY_STEP, metrics.pop("score/best"))
        row.update(metrics)
        if metrics.get("cost/samples"):  # per sample, as the tables show it (the run logs totals)
            row["cost/generated_tokens_per_sample"] = metrics.get("cost/generated_tokens", float("nan")) / metrics[
                "cost/samples"]
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_report(run_id: str, tracking_uri: str, out: Path | None = None, full: bool = False) -> str:
    """The sweep's variants as a text table; with ``out``, also ``report.csv`` (every metric with
    its CI, every gain, W/T/L and the cost, units in the headers) and ``report.tex`` (booktabs: the
    headline table that fits a page, or with ``full`` every column of the CSV)."""
    from evaluation.paper_table import caption_for, full_table, headline_table, latex, setting_names
    from mils.files import own_folder, write_atomic, written

    table = sweep_children(run_id, tracking_uri)
    if table.empty:
        return f"run {run_id} has no child runs"
    swept = [c for c in table.columns if c.startswith("sweep.")]
    finals = sorted(c for c in table.columns if c.startswith("final/") and not c.endswith(("_ci_low", "_ci_high")))
    lines = []
    header = [*swept, "best score", *[f.removeprefix("final/") + " [95% CI]" for f in finals], "Δ score [95% CI]",
              "W/T/L", "tokens/sample"]
    for _, row in table.iterrows():
        cells = [str(row[c]) for c in swept] + [f"{row.get(BEST_BY_STEP, float('nan')):.3f}"]
        for f in finals:
            cells.append(f"{100 * row[f]:.1f} [{100 * row[f + '_ci_low']:.1f}, {100 * row[f + '_ci_high']:.1f}]"
                         if f + "_ci_low" in row else f"{100 * row[f]:.1f}")
        cells.append(f"{row['gain/score']:+.3f} [{row['gain/score_ci_low']:+.3f}, {row['gain/score_ci_high']:+.3f}]"
                     if pd.notna(row.get("gain/score")) and "gain/score_ci_low" in row else "-")
        cells.append("/".join(str(int(row[k])) if k in row and pd.notna(row[k]) else "-"
                              for k in ("gain/wins", "gain/ties", "gain/losses")))
        tokens = row.get("cost/generated_tokens_per_sample")
        cells.append(f"{tokens:,.0f}" if tokens is not None and pd.notna(tokens) else "-")
        lines.append(cells)
    text = text_table(header, lines) + ("\n(metrics x100; best score: the scorer's final best score, mean over "
                                        "samples; Δ score: its paired change from step 0; W/T/L: samples whose score "
                                        "rose, stayed, fell from step 0)")
    if out is not None:
        own_folder(out)
        written(out / "report.csv", lambda b: full_table(table).to_csv(b, index=False))
        shown = full_table(table) if full else headline_table(table)
        tex = latex(shown, caption_for(shown, list(setting_names(table).values())), "tab:mils-sweep",
                    comment=f"MILS sweep, MLflow run {run_id} in {tracking_uri}")
        write_atomic(out / "report.tex", tex)
        page_header, page_rows = _page_columns(table, header, lines)
        write_atomic(out / "report.html", sweep_report_html(
            _parent_name(run_id, tracking_uri), sweep_headline(table), page_header, page_rows,
            text.rsplit("\n", 1)[1].strip("()") + "; every metric: report.csv", _sweep_plots(run_id, tracking_uri)))
        text += (f"\nwritten: {out / 'report.html'} (one static page: share it as it is), {out / 'report.csv'}, "
                 f"{out / 'report.tex'} (booktabs, {'every column' if full else 'headline'})")
    return text


def sweep_headline(table: pd.DataFrame) -> str:
    """One sentence: how many variants, which is best on the headline metric and which gains most."""
    from evaluation.paper_table import setting_names
    from mils.config import higher_is_better, primary_metric

    names = setting_names(table)

    def label(row) -> str:
        return ", ".join(f"{short}={row[column]}" for column, short in names.items()) or str(row.get("run", ""))

    parts = [f"{len(table)} variants"]
    metric = primary_metric(c.removeprefix("final/") for c in table.columns
                            if c.startswith("final/") and not c.endswith(("_ci_low", "_ci_high")))
    if metric and table[f"final/{metric}"].notna().any():
        column = table[f"final/{metric}"]
        row = table.loc[column.idxmax() if higher_is_better(metric) else column.idxmin()]
        parts.append(f"best {metric}: {label(row)} ({100 * row[f'final/{metric}']:.1f})")
    if "gain/score" in table and table["gain/score"].notna().any():
        row = table.loc[table["gain/score"].idxmax()]
        interval = (f" [{row['gain/score_ci_low']:+.3f}, {row['gain/score_ci_high']:+.3f}]"
                    if "gain/score_ci_low" in row else "")
        parts.append(f"largest change in the optimised score from step 0: {label(row)} ({row['gain/score']:+.3f}{interval})")
    return "; ".join(parts) + "."


def _page_columns(table: pd.DataFrame, header: list[str], lines: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """The console table's headline columns for the page (settings by their short names, the headline metric)."""
    from evaluation.paper_table import setting_names
    from mils.config import primary_metric

    names = setting_names(table)
    metric = primary_metric(h.removesuffix(" [95% CI]") for h in header if h.endswith(" [95% CI]") and h[0] != "Δ")
    keep = [i for i, h in enumerate(header) if h in names or h in ("best score", "Δ score [95% CI]", "W/T/L",
                                                                   "tokens/sample", f"{metric} [95% CI]")]
    return [names.get(header[i], header[i]) for i in keep], [[line[i] for i in keep] for line in lines]


def _parent_name(run_id: str, tracking_uri: str) -> str:
    import mlflow

    return (mlflow.tracking.MlflowClient(tracking_uri).get_run(run_id).info.run_name or run_id).removeprefix("sweep ")


SWEEP_PLOTS = {"sweep_comparison.png": "Each metric against each swept setting",
               "quality_vs_cost.png": "Quality against cost, every variant"}


def _sweep_plots(run_id: str, tracking_uri: str) -> dict[str, bytes]:
    """The sweep run's plots that MLflow holds (a sweep logged before a plot existed lacks it)."""
    import tempfile

    import mlflow

    client = mlflow.tracking.MlflowClient(tracking_uri)
    logged = {a.path for a in client.list_artifacts(run_id)}
    plots = {}
    with tempfile.TemporaryDirectory(prefix="mils-sweep-") as folder:
        for name, caption in SWEEP_PLOTS.items():
            if name in logged:
                plots[caption] = Path(client.download_artifacts(run_id, name, folder)).read_bytes()
    return plots


def side_from_mlflow(run_id: str, tracking_uri: str):
    """A `mils compare` system from an MLflow run of a config (its results.parquet and config.json)."""
    import tempfile

    import mlflow

    from evaluation.compare import System
    from mils.config import RunConfig

    client = mlflow.tracking.MlflowClient(tracking_uri)
    try:
        client.get_run(run_id)
    except Exception as err:  # MLflow raises its own exception types for unknown ids
        raise InputError(f"no MLflow run {run_id!r} in {tracking_uri}: {err}") from err
    folder = Path(tempfile.mkdtemp(prefix="mils-compare-"))
    try:
        table = pd.read_parquet(client.download_artifacts(run_id, "results.parquet", str(folder)))
        config = RunConfig.model_validate_json(Path(client.download_artifacts(run_id, "config.json", str(folder)))
                                               .read_text())
    except Exception as err:
        raise InputError(f"MLflow run {run_id} has no results.parquet/config.json: is it a config's (child) run? "
                         f"({err})") from err
    return System(f"MLflow run {run_id}", table["caption"].to_dict(), table["score"].astype(float).to_dict(), config,
                folder / "metrics")


def require_store(tracking_uri: str) -> None:
    """A command that only reads MLflow must not create a store: a SQLite URI whose file does not
    exist is a MissingInputError (MLflow would create an empty database there)."""
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///").split("?")[0])  # sqlite:////abs or sqlite:///relative
        if not path.is_file():
            raise MissingInputError(f"no MLflow store at {tracking_uri} (no file {path}): nothing has been logged there; "
                                    "give --tracking-uri of the store your runs used")


def results_dir_from_mlflow(run_id: str, tracking_uri: str) -> Path:
    """The results folder of an MLflow run: its ``mils.results_dir`` tag, or its parent's."""
    import mlflow

    require_store(tracking_uri)
    client = mlflow.tracking.MlflowClient(tracking_uri)
    try:
        run = client.get_run(run_id)
    except Exception as err:  # MLflow raises its own exception types for unknown ids
        raise InputError(f"no MLflow run {run_id!r} in {tracking_uri}: {err}") from err
    tags = run.data.tags
    folder = tags.get("mils.results_dir")
    if folder is None and "mlflow.parentRunId" in tags:
        folder = client.get_run(tags["mlflow.parentRunId"]).data.tags.get("mils.results_dir")
    if folder is None:
        raise InputError(f"MLflow run {run_id} names no results folder (tag mils.results_dir): open a config's "
                         "or a pipeline's run, or pass the results folder itself")
    if not Path(folder).is_dir():
        raise InputError(f"MLflow run {run_id}'s results folder {folder} is not on this machine")
    return Path(folder)
