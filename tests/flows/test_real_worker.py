"""Scheduled reruns on a work pool, where users meet them: a real `prefect server` on loopback, a
real `prefect worker` process for the pool, the deployment made by `mils schedule --pool`, runs
triggered through the server's API; a loopback webhook receiver hears the alerts. Every server and
worker the test starts is stopped by its process group."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import httpx
import mlflow

from mils.storage.results import ResultStore
from tests.flows.conftest import TARGETS
from tests.flows.test_real_server import BIN, _start, _stop, _wait, prefect_server  # noqa: F401 (a fixture)
from tests.flows.test_schedule_parts import Receiver

FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


def _trigger(api: str, deployment_id: str, logs) -> dict:
    answers = []

    def create():  # a busy server (the whole suite on 2 cores) may answer an error: retry
        r = httpx.post(f"{api}/deployments/{deployment_id}/create_flow_run", json={}, timeout=30)
        answers.append(f"{r.status_code} {r.text[:200]}")
        return r.json() if r.status_code in (200, 201) and "id" in r.json() else None
    return _wait("a flow run of the deployment", create, 90, logs, detail=lambda: answers[-3:])


def _state(api: str, run: dict) -> dict | None:
    r = httpx.get(f"{api}/flow_runs/{run['id']}", timeout=30)
    return r.json().get("state") if r.status_code == 200 else None


def _final(api: str, run: dict, logs, timeout: float = 420) -> dict:
    return _wait(f"flow run {run['id']} to end", lambda: (s := _state(api, run)) and s["type"] in FINAL and s,
                 timeout, logs)


def _perfect(results_dir: str) -> None:
    """Make a finished run's final captions the references, so the next rerun is worse."""
    store = ResultStore(results_dir)
    for r in store.results():
        target = TARGETS[int(r.sample_id[1:])]
        store.write(replace(r, history=[*r.history[:-1], replace(r.history[-1], best=target)]))


def test_a_work_pool_deployment_runs_unattended(prefect_server, flow_config, tmp_path):  # noqa: F811
    api, env = prefect_server
    hook = Receiver()
    path, raw = flow_config("nightly.yaml", judging=False, notify=[hook.url], retention=1)
    good = path.read_text()
    logs = [tmp_path / "worker.log", tmp_path / "deploy.log"]
    start = time.time()
    deploy = _start([str(BIN / "mils"), "schedule", str(path), "--cron", "0 3 * * *", "--name", "nightly",
                     "--pool", "gpus"], env, tmp_path, logs[1])
    assert deploy.wait(120) == 0, logs[1].read_text()
    assert "deployed 'mils-pipeline/nightly'" in logs[1].read_text()
    dep = httpx.get(f"{api}/deployments/name/mils-pipeline/nightly", timeout=10).json()
    assert dep["work_pool_name"] == "gpus" and dep["parameters"] == {"config_path": str(path.resolve()), "fresh": True}
    assert dep["global_concurrency_limit"]["limit"] == 1 and dep["concurrency_options"]["collision_strategy"] == "CANCEL_NEW"
    assert httpx.get(f"{api}/work_pools/gpus", timeout=10).json()["type"] == "process"
    worker = _start([str(BIN / "prefect"), "worker", "start", "--pool", "gpus"],
                    {**env, "PREFECT_WORKER_QUERY_SECONDS": "2"}, tmp_path, logs[0])
    try:
        first = _trigger(api, dep["id"], logs)
        _wait("the first run to start", lambda: (s := _state(api, first)) and s["type"] == "RUNNING", 300, logs)
        second = _trigger(api, dep["id"], logs)  # while the first runs: cancelled, and it says why
        cancelled = _final(api, second, logs)
        assert cancelled["type"] == "CANCELLED" and "concurrency" in (cancelled["message"] or "").lower(), cancelled
        assert _final(api, first, logs)["type"] == "COMPLETED"
        dated = sorted(p for p in Path(raw["output_dir"]).iterdir() if p.is_dir())
        assert len(dated) == 1 and len(list(dated[0].glob("fake-*/samples/*.json"))) == len(TARGETS)

        _perfect(str(next(dated[0].glob("fake-*"))))
        worse = _trigger(api, dep["id"], logs)
        assert _final(api, worse, logs)["type"] == "COMPLETED"
        regression = next(b for b in hook.bodies if b["event"] == "regression")
        assert "CIDEr" in regression["metrics"] and regression["metrics"]["CIDEr"]["high"] < 0
        assert regression["pipeline"] == "fake" and regression["prefect"].endswith(worse["id"])

        broken = dict(raw, dataset={"kind": "folder", "args": {"directory": str(tmp_path / "no-such-folder")}})
        path.write_text(json.dumps(broken))  # the deployment reads the YAML at run time
        failed = _trigger(api, dep["id"], logs)
        assert _final(api, failed, logs)["type"] == "FAILED"
        alert = _wait("the failure alert", lambda: next((b for b in hook.bodies if b["event"] == "failed"), None), 30, logs)
        assert "no-such-folder" in alert["state_message"] and alert["prefect"].endswith(failed["id"])

        path.write_text(good)
        again = _trigger(api, dep["id"], logs)
        assert _final(api, again, logs)["type"] == "COMPLETED"
    finally:
        _stop(worker)
        hook.close()
    # retention 1: the failed run's folder is gone; the regression's two folders and the newest stay
    kept = sorted(p.name for p in Path(raw["output_dir"]).iterdir() if p.is_dir())
    assert len(kept) == 3 and kept[0] == dated[0].name
    client = mlflow.tracking.MlflowClient(raw["tracking"]["uri"])
    parents = client.search_runs([client.get_experiment_by_name("test").experiment_id],
                                 "tags.`mils.kind` = 'pipeline'", order_by=["attributes.start_time ASC"])
    assert [r.data.tags.get("mils.regression") for r in parents if r.info.status == "FINISHED"] == [None, "true", "false"]
    finished = [r for r in parents if r.info.status == "FINISHED"]
    assert "history.png" in {a.path for a in client.list_artifacts(finished[-1].info.run_id)}  # logged by the rerun
    shown = _start([str(BIN / "mils"), "history", str(path), "--out", str(tmp_path / "history")], env, tmp_path,
                   tmp_path / "history.log")
    assert shown.wait(120) == 0, (tmp_path / "history.log").read_text()
    rows = (tmp_path / "history.log").read_text().split("vs the previous rerun)\n", 1)[1].split("\n\nplot:")[0]
    lines = rows.splitlines()
    assert len(lines) == 3 and lines[1].endswith("REGRESSION") and not lines[2].endswith("REGRESSION")
    assert "CIDEr" in lines[1] and "(-" in lines[1] and "(+0.0 [+0.0, +0.0])" in lines[2]  # paired deltas
    assert (tmp_path / "history" / "history.png").stat().st_size > 0
    print(f"real server + worker: {time.time() - start:.0f}s for 5 triggered runs")
