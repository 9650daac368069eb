"""Scheduled reruns where users meet them: a real `prefect server start` on loopback, the
deployment served by `mils schedule`, a run triggered through the server's API, polled until it
ends. Every process the test starts is stopped (their whole process groups)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import mlflow
import pytest

from tests.flows.conftest import ROOT, TARGETS

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(cmd: list[str], env: dict[str, str], cwd: Path, log: Path) -> subprocess.Popen:
    return subprocess.Popen(cmd, env=env, cwd=cwd, stdout=log.open("w"), stderr=subprocess.STDOUT,
                            start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _wait(what: str, check, timeout: float, logs: list[Path], detail=lambda: ""):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            value = check()
        except httpx.HTTPError:  # a slow answer on a busy machine: ask again
            value = None
        if value:
            return value
        time.sleep(1)
    tails = "\n".join(f"--- {p.name}\n{p.read_text()[-3000:]}" for p in logs if p.is_file())
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}; last answers: {detail()}\n{tails}")


@pytest.fixture
def prefect_server(tmp_path):
    port = _free_port()
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect-home"), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
           "PREFECT_API_URL": f"http://127.0.0.1:{port}/api", "MLFLOW_DISABLE_TELEMETRY": "true",
           "HF_HUB_OFFLINE": "1", "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    log = tmp_path / "server.log"
    server = _start([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                    env, tmp_path, log)
    api = env["PREFECT_API_URL"]

    def healthy():
        try:
            return httpx.get(f"{api}/health", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        _wait("the Prefect server", healthy, 90, [log])
        yield api, env
    finally:
        _stop(server)


def test_scheduled_pipeline_runs_to_completion_on_a_real_server(prefect_server, flow_config, tmp_path):
    api, env = prefect_server
    path, raw = flow_config("nightly.yaml")
    raw["judging"] = {"catch": 0.0}
    path.write_text(json.dumps(raw))  # JSON is YAML
    serve_log = tmp_path / "serve.log"
    serve = _start([str(BIN / "mils"), "schedule", str(path), "--cron", "0 3 * * *", "--name", "nightly"],
                   env, tmp_path, serve_log)
    try:
        def deployment():
            r = httpx.get(f"{api}/deployments/name/mils-pipeline/nightly", timeout=5)
            return r.json() if r.status_code == 200 else None

        dep = _wait("the served deployment", deployment, 120, [serve_log])
        assert dep["parameters"] == {"config_path": str(path.resolve()), "fresh": True}
        assert [s["schedule"]["cron"] for s in dep["schedules"]] == ["0 3 * * *"]
        answers = []

        def create_run():  # a busy server (the whole suite on 2 cores) may answer an error: retry
            r = httpx.post(f"{api}/deployments/{dep['id']}/create_flow_run", json={}, timeout=30)
            answers.append(f"{r.status_code} {r.text[:300]}")
            return r.json() if r.status_code in (200, 201) and "id" in r.json() else None

        run = _wait("a flow run of the deployment", create_run, 90, [serve_log], detail=lambda: answers[-3:])

        def finished():
            r = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=30)
            state = r.json().get("state") if r.status_code == 200 else None
            return state if state and state["type"] in {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"} else None

        state = _wait("the flow run to finish", finished, 300, [serve_log])
        assert state["type"] == "COMPLETED", f"{state}\n{serve_log.read_text()[-4000:]}"
    finally:
        _stop(serve)

    dated = [p for p in Path(raw["output_dir"]).iterdir() if p.is_dir()]
    assert len(dated) == 1, "a scheduled run writes one fresh dated folder"
    results = next(dated[0].glob("fake-*"))
    assert len(list((results / "samples").glob("*.json"))) == len(TARGETS)
    assert any(results.glob("judging-*/key.json"))
    ledger = json.loads((results / "pipeline.json").read_text())
    client = mlflow.tracking.MlflowClient(raw["tracking"]["uri"])
    parent = client.get_run(ledger["parent_run_id"])
    assert parent.info.status == "FINISHED"
    assert parent.data.tags["mils.kind"] == "pipeline" and parent.data.tags["mils.scheduled"] == "true"
    assert parent.data.tags["mils.results_dir"] == str(results)
