"""`mils report RUN_ID`: a comparison table of a sweep's child runs, read back from MLflow."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from evaluation.tables import text_table
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
        row.update(run.data.metrics)
        rows.append(row)
    return pd.DataFrame(rows)


def sweep_report(run_id: str, tracking_uri: str) -> str:
    table = sweep_children(run_id, tracking_uri)
    if table.empty:
        return f"run {run_id} has no child runs"
    swept = [c for c in table.columns if c.startswith("sweep.")]
    finals = sorted(c for c in table.columns if c.startswith("final/") and not c.endswith(("_ci_low", "_ci_high")))
    lines = []
    header = [*swept, "score/best", *[f.removeprefix("final/") + " [95% CI]" for f in finals]]
    for _, row in table.iterrows():
        cells = [str(row[c]) for c in swept] + [f"{row.get('score/best', float('nan')):.3f}"]
        for f in finals:
            cells.append(f"{100 * row[f]:.1f} [{100 * row[f + '_ci_low']:.1f}, {100 * row[f + '_ci_high']:.1f}]"
                         if f + "_ci_low" in row else f"{100 * row[f]:.1f}")
        lines.append(cells)
    return text_table(header, lines) + "\n(metrics x100; score/best is the scorer's final best score, mean over samples)"


def side_from_mlflow(run_id: str, tracking_uri: str):
    """A `mils compare` side from an MLflow run of a config (its results.parquet and config.json)."""
    import tempfile

    import mlflow

    from evaluation.compare import Side
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
    return Side(f"MLflow run {run_id}", table["caption"].to_dict(), table["score"].astype(float).to_dict(), config,
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
