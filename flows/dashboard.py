"""MLflow's UI as the sweep dashboard, with no set-up in the browser.

MLflow 3's UI opens in its GenAI mode unless the address says ``workflowType=machine_learning``,
and it shows a sweep as one collapsed parent run with no metric columns. Its shared views fix
both: an experiment tag ``mlflow.sharedViewState.<key>`` holds a view (search filter, columns,
grouping) that the address ``...?viewStateShareKey=<key>`` opens. Each sweep writes one: its
variants, grouped under the sweep, with the swept parameters and the headline metrics as columns;
the chart view then draws a chart per metric with one bar or line per variant (``by_step/best`` by
step as lines).
"""

from __future__ import annotations

import json
from typing import Iterable

UI = "http://127.0.0.1:5000"  # where `mlflow ui` listens by default
SHARED_VIEW_TAG = "mlflow.sharedViewState."
# the metric columns of a saved runs view (after the primary metric's final value and gain)
VIEW_COLUMNS = ("by_step/best", "gain/score", "gain/wins", "gain/losses", "cost/generated_tokens", "cost/seconds_per_sample")


def runs_url(experiment_id: str, share_key: str | None = None, ui: str = UI) -> str:
    """The experiment's runs table in MLflow's classic (model training) view."""
    query = f"viewStateShareKey={share_key}&" if share_key else ""
    return f"{ui}/#/experiments/{experiment_id}/runs?{query}workflowType=machine_learning"


def sweep_view(parent_run_id: str, swept: Iterable[str], metrics: Iterable[str]) -> dict:
    """The shared view of one sweep: its variants (tagged ``mils.sweep_run``), grouped by the
    sweep, swept parameters and ``metrics`` as columns, one series per variant in the charts."""
    columns = [f"params.`sweep.{key}`" for key in swept] + [f"metrics.`{m}`" for m in metrics]
    return {
        "searchFilter": f"tags.`mils.sweep_run` = '{parent_run_id}'",
        "orderByKey": "attributes.start_time", "orderByAsc": True,
        "selectedColumns": columns,
        "columnOrder": ["attributes.`Run Name`", *columns],  # the swept values first, beside the names
        "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": "mils.sweep"}]},
        "useGroupedValuesInCharts": False,
        "hideEmptyCharts": True,
    }


def share_sweep_view(client, experiment_id: str, parent_run_id: str, title: str, child_run_ids: Iterable[str],
                     swept: Iterable[str], primary_metric: str | None) -> str:
    """Tag the variants and store the sweep's shared view; returns its share key."""
    for run_id in child_run_ids:
        client.set_tag(run_id, "mils.sweep_run", parent_run_id)
        client.set_tag(run_id, "mils.sweep", title)
    metrics = list(VIEW_COLUMNS)
    if primary_metric:
        metrics[1:1] = [f"final/{primary_metric}", f"gain/{primary_metric}"]
    key = f"mils-sweep-{parent_run_id[:12]}"
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, json.dumps(sweep_view(parent_run_id, swept,
                                                                                          metrics)))
    return key


RUN_PARAMS = ("generator.model", "scorer.name", "loop.steps", "loop.keep", "loop.requested", "loop.seed")


def share_runs_view(client, experiment_id: str, parent_run_id: str, primary_metric: str | None = None) -> str:
    """The view a single run's printed link opens: the experiment's config runs (the ones holding
    the numbers, not their parents), newest first, key parameters and metrics as columns: the same
    kind of saved view a sweep gets.
    Returns the address of the runs table with it."""
    metrics = [*([f"final/{primary_metric}", f"gain/{primary_metric}"] if primary_metric else []), *VIEW_COLUMNS]
    columns = [f"params.`{p}`" for p in RUN_PARAMS] + [f"metrics.`{m}`" for m in metrics]
    view = {"searchFilter": "tags.`mils.kind` = 'config'",  # the runs that hold the numbers, not their parents
            "orderByKey": "attributes.start_time", "orderByAsc": False,
            "selectedColumns": columns, "columnOrder": ["attributes.`Run Name`", *columns],
            # grouped by kind, as a sweep's view is grouped by sweep: MLflow nests a child under its
            # collapsed parent otherwise, and the numbers stay hidden
            "groupBy": {"aggregateFunction": "average", "groupByKeys": [{"mode": "tag", "groupByData": "mils.kind"}]},
            "useGroupedValuesInCharts": False, "runsExpanded": {parent_run_id: True}, "hideEmptyCharts": True}
    key = "mils-runs"
    client.set_experiment_tag(experiment_id, SHARED_VIEW_TAG + key, json.dumps(view))
    return runs_url(experiment_id, key)
