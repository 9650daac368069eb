"""The sweep dashboard where users meet it: a real `mlflow ui` on loopback over the SQLite store of
a tiny sweep, opened in headless Chromium at the address the sweep prints."""

from __future__ import annotations

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

from flows.dashboard import UI
from flows.sweep import run_sweep
from tests.browser import free_port, launch_chromium

pytestmark = pytest.mark.slow


@pytest.fixture
def sweep(flow_config):
    path, raw = flow_config("sweep.yaml")
    raw["sweep"] = {"loop.steps": [1, 3], "loop.keep": [2, 4]}
    path.write_text(yaml.safe_dump(raw))
    return run_sweep(str(path)), raw


@pytest.fixture
def mlflow_ui(sweep, tmp_path):
    port = free_port()
    log = tmp_path / "mlflow_ui.log"
    proc = subprocess.Popen([str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri",
                             sweep[1]["tracking"]["uri"], "--host", "127.0.0.1", "--port", str(port)],
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
    yield base
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


def test_sweep_dashboard_shows_the_variants_their_swept_values_and_metrics(sweep, mlflow_ui, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    outcome, raw = sweep
    assert outcome["dashboard"].startswith(UI)
    client = mlflow.tracking.MlflowClient(raw["tracking"]["uri"])
    children = client.search_runs([client.get_run(outcome["parent_run_id"]).info.experiment_id],
                                  f"tags.mlflow.parentRunId = '{outcome['parent_run_id']}'")
    assert len(children) == 4
    with sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page(viewport={"width": 1800, "height": 1000})
        page.goto(outcome["dashboard"].replace(UI, mlflow_ui))
        for child in children:  # every variant is a row of its own, not hidden under the parent
            expect(page.get_by_role("link", name=child.info.run_name, exact=True)).to_be_visible(timeout=60_000)
        for column in ("params.`sweep.loop.keep`", "params.`sweep.loop.steps`", "metrics.`score/best`",
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
        page.get_by_placeholder("Search metric charts").fill("score/")
        expect(page.get_by_text("score/best", exact=True).first).to_be_visible(timeout=30_000)
        # score/best by step, one line per variant
        expect(page.locator(".js-plotly-plot .scatterlayer .trace").first).to_be_visible(timeout=30_000)
        chart = page.locator(".js-plotly-plot").first
        traces = chart.locator(".scatterlayer .trace").count()  # plotly: a line and its markers per run
        assert traces >= len(children) and traces % len(children) == 0
        legend = page.get_by_text(re.compile(r"steps=\d \(score/best\)$"))  # "<variant> (score/best)" entries
        expect(legend.first).to_be_visible()
        page.wait_for_timeout(1000)
        page.screenshot(path=str(tmp_path / "mlflow_sweep_charts.png"))
        browser.close()
