"""How a scheduled pipeline's headline numbers moved across its reruns (``mils history CONFIG``).

One row per finished rerun of the same pipeline (its key), oldest first: date, git revision, each
headline metric of the final step with its 95% interval, the paired delta against the previous
rerun with its interval, the regression flag and the cost. ``history.png`` draws each metric
across reruns (intervals as bars, regressions in red); both are logged to the newest rerun's MLflow
run, so the latest run shows the whole history.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd

from mils.config import HEADLINE
from mils.errors import InputError


def history_table(tracking_uri: str, experiment: str, pipeline_key: str) -> pd.DataFrame:
    """The reruns of ``pipeline_key`` as a table (empty when it never finished a run)."""
    import mlflow

    client = mlflow.MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return pd.DataFrame()
    parents = client.search_runs([found.experiment_id], f"tags.`mils.kind` = 'pipeline' and "
                                 f"tags.`mils.pipeline_key` = '{pipeline_key}' and status = 'FINISHED'",
                                 order_by=["attributes.start_time ASC"], max_results=1000)
    rows = []
    for parent in parents:
        children = client.search_runs([found.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}' "
                                      "and tags.`mils.kind` = 'config'", order_by=["attributes.start_time ASC"],
                                      max_results=1)
        child = children[0].data if children else None
        row: dict[str, Any] = {"run_id": parent.info.run_id,
                               "date": pd.Timestamp(parent.info.start_time, unit="ms").strftime("%Y-%m-%d %H:%M"),
                               "git": (child.tags.get("git_revision", "") if child else "")[:12],
                               "regression": parent.data.tags.get("mils.regression") == "true"}
        metrics = child.metrics if child else {}
        for name in HEADLINE:
            if f"final/{name}" in metrics:
                row[name] = metrics[f"final/{name}"]
                row[f"{name}_low"], row[f"{name}_high"] = metrics[f"final/{name}_ci_low"], metrics[f"final/{name}_ci_high"]
            for suffix in ("", "_ci_low", "_ci_high"):
                if f"vs_previous/{name}{suffix}" in parent.data.metrics:
                    row[f"delta_{name}{suffix}"] = parent.data.metrics[f"vs_previous/{name}{suffix}"]
        row["seconds_per_sample"] = metrics.get("cost/seconds_per_sample")
        rows.append(row)
    return pd.DataFrame(rows)


def format_history(table: pd.DataFrame) -> str:
    """The table as text: metrics x100 with their intervals, the delta vs the previous rerun."""
    names = [n for n in HEADLINE if n in table]
    lines = []
    for _, row in table.iterrows():
        cells = [row["date"], row["git"] or "-"]
        for name in names:
            value = f"{name} {100 * row[name]:.1f} [{100 * row[f'{name}_low']:.1f}, {100 * row[f'{name}_high']:.1f}]"
            if pd.notna(row.get(f"delta_{name}")):
                value += (f" ({100 * row[f'delta_{name}']:+.1f} [{100 * row[f'delta_{name}_ci_low']:+.1f}, "
                          f"{100 * row[f'delta_{name}_ci_high']:+.1f}])")
            cells.append(value)
        if pd.notna(row.get("seconds_per_sample")):
            cells.append(f"{row['seconds_per_sample']:.1f} s/sample")
        cells.append("REGRESSION" if row["regression"] else "")
        lines.append("  ".join(str(c) for c in cells).rstrip())
    return "\n".join(lines)


def plot_history(table: pd.DataFrame, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [n for n in HEADLINE if n in table][:4]
    fig, axes = plt.subplots(len(names), 1, figsize=(8, 2.6 * len(names)), squeeze=False, sharex=True)
    x = list(range(len(table)))
    for ax, name in zip(axes[:, 0], names):
        values = 100 * table[name]
        errors = [values - 100 * table[f"{name}_low"], 100 * table[f"{name}_high"] - values]
        ax.errorbar(x, values, yerr=errors, marker="o", capsize=3, color="tab:blue")
        flagged = table["regression"].to_numpy()
        ax.scatter([i for i in x if flagged[i]], values[flagged], color="red", zorder=3, s=60, label="regression")
        ax.set_ylabel(f"{name} (x100)")
        if flagged.any():
            ax.legend(loc="best")
    axes[-1, 0].set_xticks(x, [f"{d}\n{g[:7]}" for d, g in zip(table["date"], table["git"])], fontsize=7)
    axes[0, 0].set_title(title)
    fig.tight_layout()
    return fig


def log_history(tracking_uri: str, experiment: str, pipeline_key: str, title: str,
                out: Path | None = None) -> pd.DataFrame:
    """Build the history, write ``history.png``/``history.json`` (to ``out`` when given) and log
    both to the newest rerun's MLflow run."""
    import mlflow

    from flows.report import require_store
    from mils.files import save_figure, write_atomic

    require_store(tracking_uri)
    table = history_table(tracking_uri, experiment, pipeline_key)
    if table.empty:
        raise InputError(f"no finished run of this pipeline (key {pipeline_key}) in {tracking_uri}, "
                         f"experiment {experiment!r}")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(out) if out else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        save_figure(plot_history(table, title), folder / "history.png")
        write_atomic(folder / "history.json", json.dumps(table.to_dict(orient="records"), indent=2, default=str))
        client = mlflow.MlflowClient(tracking_uri)
        for name in ("history.png", "history.json"):
            client.log_artifact(table["run_id"].iloc[-1], str(folder / name))
    return table
