"""`mils report RUN_ID`: a comparison table of a sweep's child runs, read back from MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

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
                              order_by=["attributes.start_time ASC"])
    rows = []
    for run in runs:
        row = {"run": run.info.run_name, "run_id": run.info.run_id}
        row.update({k: v for k, v in run.data.params.items() if k.startswith("sweep.")})
        metrics = dict(run.data.metrics)
        if "score/best" in metrics:  # logged before the per-step scores moved under by_step/
            metrics.setdefault(BEST_BY_STEP, metrics.pop("score/best"))
        row.update(metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def paper_table(table: pd.DataFrame) -> pd.DataFrame:
    """One row per variant: its swept settings, every final metric with its 95% CI (x100), the
    paired gain over step 0 with its CI, wins/ties/losses on the scorer, and the cost per sample."""
    swept = [c for c in table.columns if c.startswith("sweep.")]
    finals = sorted(c.removeprefix("final/") for c in table.columns
                    if c.startswith("final/") and not c.endswith(("_ci_low", "_ci_high")))
    out = pd.DataFrame({c.removeprefix("sweep."): table[c] for c in swept})
    for name in finals:
        for suffix, column in (("", f"final/{name}"), (" low", f"final/{name}_ci_low"), (" high", f"final/{name}_ci_high")):
            if column in table:
                out[f"{name}{suffix}"] = 100 * table[column]
    for name in [*finals, "score"]:
        scale = 1 if name == "score" else 100
        for suffix, column in (("", f"gain/{name}"), (" low", f"gain/{name}_ci_low"), (" high", f"gain/{name}_ci_high")):
            if column in table:
                out[f"gain {name}{suffix}"] = scale * table[column]
    for column in ("gain/wins", "gain/ties", "gain/losses"):
        if column in table:
            out[column.removeprefix("gain/")] = table[column]
    for column in ("cost/generated_tokens_per_sample", "cost/seconds_per_sample", "cost/dollars_per_sample"):
        if column in table:
            out[column.removeprefix("cost/")] = table[column]
    out["run_id"] = table["run_id"]
    return out


def latex_table(table: pd.DataFrame, caption: str) -> str:
    """``table`` (:func:`paper_table`) as a booktabs LaTeX table, each metric as value [low, high]."""
    def esc(text) -> str:
        return "".join("\\" + c if c in "&%$#_{}" else {"~": r"\textasciitilde{}", "^": r"\^{}",
                                                       "\\": r"\textbackslash{}"}.get(c, c) for c in str(text))

    columns = [c for c in table.columns if not c.endswith((" low", " high")) and c != "run_id"]

    def cell(row, c) -> str:
        value = row[c]
        if isinstance(value, float) and f"{c} low" in table:
            return f"{value:.1f} [{row[c + ' low']:.1f}, {row[c + ' high']:.1f}]"
        return f"{value:.3g}" if isinstance(value, float) else esc(value)

    lines = [r"\begin{table}[t]", r"\centering", r"\begin{tabular}{" + "l" * len(columns) + "}", r"\toprule",
             " & ".join(esc(c) for c in columns) + r" \\", r"\midrule"]
    lines += [" & ".join(cell(row, c) for c in columns) + r" \\" for _, row in table.iterrows()]
    lines += [r"\bottomrule", r"\end{tabular}", r"\caption{" + esc(caption) + "}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def sweep_report(run_id: str, tracking_uri: str, out: Path | None = None) -> str:
    """The sweep's variants as a text table; with ``out``, also ``report.csv`` and ``report.tex``
    (booktabs) there, every metric with its CI, the gain, wins/ties/losses and the cost."""
    from mils.files import own_folder, write_atomic, written

    table = sweep_children(run_id, tracking_uri)
    if table.empty:
        return f"run {run_id} has no child runs"
    swept = [c for c in table.columns if c.startswith("sweep.")]
    finals = sorted(c for c in table.columns if c.startswith("final/") and not c.endswith(("_ci_low", "_ci_high")))
    lines = []
    header = [*swept, "best score", *[f.removeprefix("final/") + " [95% CI]" for f in finals], "W/T/L"]
    for _, row in table.iterrows():
        cells = [str(row[c]) for c in swept] + [f"{row.get(BEST_BY_STEP, float('nan')):.3f}"]
        for f in finals:
            cells.append(f"{100 * row[f]:.1f} [{100 * row[f + '_ci_low']:.1f}, {100 * row[f + '_ci_high']:.1f}]"
                         if f + "_ci_low" in row else f"{100 * row[f]:.1f}")
        cells.append("/".join(str(int(row[k])) if k in row and pd.notna(row[k]) else "-"
                              for k in ("gain/wins", "gain/ties", "gain/losses")))
        lines.append(cells)
    text = text_table(header, lines) + ("\n(metrics x100; best score: the scorer's final best score, mean over "
                                        "samples; W/T/L: samples whose score rose, stayed, fell from step 0)")
    if out is not None:
        own_folder(out)
        paper = paper_table(table)
        written(out / "report.csv", lambda b: paper.to_csv(b, index=False))
        write_atomic(out / "report.tex", latex_table(paper, f"MILS sweep (MLflow run {run_id}); metrics x100 with "
                                                            "bootstrap 95% CIs"))
        text += f"\nwritten: {out / 'report.csv'}, {out / 'report.tex'} (booktabs)"
    return text


def side_from_mlflow(run_id: str, tracking_uri: str):
    """A `mils compare` system from an MLflow run of a config (its results.parquet and config.json)."""
    import tempfile

    import mlflow

    from evaluation.compare import System
    from mils.config.run_config import RunConfig

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
