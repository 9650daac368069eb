"""The sweep dashboard where users meet it: a real `mlflow ui` on loopback over the SQLite store of
a tiny sweep, opened in headless Chromium at the address the sweep prints."""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import yaml

from flows.benchmark import run_benchmark
from flows.dashboard import UI
from flows.sweep import run_sweep
from mils.config.run_config import load_config
from tests.browser import free_port, launch_chromium

pytestmark = pytest.mark.slow


@pytest.fixture
def sweep(flow_config):
    path, raw = flow_config("sweep.yaml")
    raw["sweep"] = {"loop.steps": [1, 3], "loop.keep": [2, 4]}
    path.write_text(yaml.safe_dump(raw))
    return run_sweep(str(path)), raw


@contextlib.contextmanager
def mlflow_ui_over(uri: str, log: Path):
    """A real `mlflow ui` on a free loopback port over ``uri``; yields its address."""
    port = free_port()
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", uri,
                             "--host", "127.0.0.1", "--port", str(port)],
                            stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.time() + 90
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{base}/health", timeout=2).status == 200:
                break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGKILL)
        pytest.fail(f"mlflow ui did not start:\n{log.read_text()[-3000:]}")
    try:
        yield base
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


@pytest.fixture
def mlflow_ui(sweep, tmp_path):
    with mlflow_ui_over(sweep[1]["tracking"]["uri"], tmp_path / "mlflow_ui.log") as base:
        yield base


def test_sweep_dashboard_shows_the_variants_their_swept_values_and_metrics(sweep, mlflow_ui, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    outcome, raw = sweep
    assert outcome.dashboard.startswith(UI)
    client = mlflow.tracking.MlflowClient(raw["tracking"]["uri"])
    children = client.search_runs([client.get_run(outcome.parent_run_id).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{outcome.parent_run_id}'")
    assert len(children) == 4
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1800, "height": 1000})
        page.goto(outcome.dashboard.replace(UI, mlflow_ui))
        for child in children:  # every variant is a row of its own, not hidden under the parent
            expect(page.get_by_role("link", name=child.info.run_name, exact=True)).to_be_visible(timeout=60_000)
        for column in ("params.`sweep.loop.keep`", "params.`sweep.loop.steps`", "metrics.`by_step/best`",
                       "metrics.`gain/score`", "metrics.`final/CIDEr`", "metrics.`cost/generated_tokens`"):
            expect(page.locator(f'.ag-header-cell[col-id="{column}"]')).to_have_count(1, timeout=30_000)
        for child in children:  # the variant's row holds its own swept values and ledger total
            name = page.locator(".ag-row").filter(has=page.get_by_role("link", name=child.info.run_name, exact=True))
            index = name.first.get_attribute("row-index")
            row = page.locator(f'.ag-center-cols-container .ag-row[row-index="{index}"]')
            for key in ("sweep.loop.keep", "sweep.loop.steps"):
                expect(row.locator(f'[col-id="params.`{key}`"]')).to_have_text(child.data.params[key])
            expect(row.locator('[col-id="metrics.`cost/generated_tokens`"]')).to_contain_text(
                f"{child.data.metrics['cost/generated_tokens']:g}")
        close_assistant = page.locator('button[data-component-id="mlflow.assistant.chat_panel.close"]')
        if close_assistant.count():  # MLflow's assistant panel takes a third of the page
            close_assistant.click()
        page.screenshot(path=str(tmp_path / "mlflow_sweep_table.png"))
        page.locator("input[value=CHART]").evaluate("e => e.click()")  # the chart view
        page.get_by_placeholder("Search metric charts").fill("by_step/")
        expect(page.get_by_text("by_step/best", exact=True).first).to_be_visible(timeout=30_000)
        # by_step/best, one line per variant
        expect(page.locator(".js-plotly-plot .scatterlayer .trace").first).to_be_visible(timeout=30_000)
        chart = page.locator(".js-plotly-plot").first
        traces = chart.locator(".scatterlayer .trace").count()  # plotly: a line and its markers per run
        assert traces >= len(children) and traces % len(children) == 0
        legend = page.get_by_text(re.compile(r"steps=\d \(by_step/best\)$"))  # "<variant> (by_step/best)" entries
        expect(legend.first).to_be_visible()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(tmp_path / "mlflow_sweep_charts.png"))
        # a variant's own page opens on its per-step scores: by_step/ is the first section of charts,
        # and a per-step cost that is zero at every step (cached tokens, no response cache) has no chart
        child = children[0]
        page.goto(f"{mlflow_ui}/#/experiments/{child.info.experiment_id}/runs/{child.info.run_id}/model-metrics")
        expect(page.get_by_text("mean_topk", exact=True).first).to_be_visible(timeout=60_000)
        lines = [line.strip() for line in page.inner_text("body").splitlines()]
        sections = [name for name in ("by_step", "cost", "final", "gain", "samples", "step0") if name in lines]
        assert sections[0] == "by_step" and lines.index("by_step") < lines.index("cost"), sections
        assert not any("cached" in line for line in lines)
        page.screenshot(path=str(tmp_path / "mlflow_run_page.png"))
        browser.close()


def test_a_single_run_link_opens_on_its_numbers(flow_config, tmp_path):
    """`mils run` prints a link to the saved view ``mils-runs``: the config run as a row of its own
    with its settings and headline metrics as columns, not one collapsed parent without numbers."""
    from playwright.sync_api import expect, sync_playwright

    path, raw = flow_config()
    record = run_benchmark(load_config(path))
    child = mlflow.MlflowClient(raw["tracking"]["uri"]).get_run(record.mlflow["child"])
    with mlflow_ui_over(raw["tracking"]["uri"], tmp_path / "mlflow_ui.log") as base, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 2400, "height": 700})  # ag-grid draws only the columns in view
        page.goto(record.mlflow["view"].replace(UI, base))
        expect(page.get_by_role("link", name=child.info.run_name, exact=True)).to_be_visible(timeout=60_000)
        for column in ("params.`loop.steps`", "params.`scorer.name`", "metrics.`final/CIDEr`", "metrics.`gain/CIDEr`",
                       "metrics.`by_step/best`", "metrics.`cost/generated_tokens`"):
            expect(page.locator(f'.ag-header-cell[col-id="{column}"]')).to_have_count(1, timeout=30_000)
        name = page.locator(".ag-row").filter(has=page.get_by_role("link", name=child.info.run_name, exact=True))
        row = page.locator(f'.ag-center-cols-container .ag-row[row-index="{name.first.get_attribute("row-index")}"]')
        expect(row.locator('[col-id="params.`loop.steps`"]')).to_have_text(child.data.params["loop.steps"])
        close_assistant = page.locator('button[data-component-id="mlflow.assistant.chat_panel.close"]')
        if close_assistant.count():
            close_assistant.click()
        page.wait_for_timeout(500)
        page.screenshot(path=str(tmp_path / "mlflow_runs_view.png"))
        # MLflow's link from the table to a run drops the classic layout; the printed hint's one click keeps it:
        # the experiment's address without the setting, "Model training" (MLflow stores a change of layout only)
        page.goto(f"{base}/#/experiments/{child.info.experiment_id}/runs")
        page.get_by_text("Model training", exact=True).first.click()
        page.goto(record.mlflow["view"].replace(UI, base))
        page.get_by_role("link", name=child.info.run_name, exact=True).first.click()
        expect(page.get_by_text(child.info.run_id, exact=True).first).to_be_visible(timeout=60_000)  # the run's page
        assert page.get_by_text("Evaluation runs", exact=True).count() == 0  # the classic side bar, not GenAI's
        browser.close()
