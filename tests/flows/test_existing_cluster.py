"""An existing Dask cluster, as the README documents it: `dask scheduler` and two `dask worker`
processes on loopback (each with a Prefect home of its own, as on another machine), `mils run` with
``executor: {kind: dask, address: ...}`` and no Prefect server configured. The workers report their
task runs to the flow's server, start none of their own, and score exactly as threads do."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from flows.benchmark import run_benchmark
from mils.components.plan import plan_run
from mils.config.run_config import load_config
from mils.storage.results import ResultStore
from tests.flows.conftest import ROOT, TARGETS
from tests.flows.test_real_server import _free_port, _start, _stop

BIN = Path(sys.executable).parent


def _results(results_dir) -> dict:
    return {r.sample_id: (r.history, r.kept) for r in ResultStore(results_dir).results()}


@pytest.fixture
def cluster(tmp_path):
    """(scheduler address, worker processes)."""
    port, home = _free_port(), tmp_path / "worker-home"
    env = _env(home)
    logs = [tmp_path / name for name in ("scheduler.log", "worker-0.log", "worker-1.log")]
    address = f"tcp://127.0.0.1:{port}"
    procs = [_start([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                    env, tmp_path, logs[0])]
    try:
        procs += [_start([str(BIN / "dask"), "worker", address, "--nthreads", "1", "--no-dashboard",
                          "--host", "127.0.0.1"], env, tmp_path, log) for log in logs[1:]]
        from distributed import Client

        with Client(address, timeout=60) as client:
            client.wait_for_workers(2, timeout=90)
        yield address, procs[1:]
    finally:
        for proc in procs:
            _stop(proc)


def _env(prefect_home: Path) -> dict[str, str]:
    """This environment with no Prefect server named, a Prefect home of its own and the repository importable."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("PREFECT_API")}
    return {**env, "PREFECT_HOME": str(prefect_home), "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "MLFLOW_DISABLE_TELEMETRY": "true", "HF_HUB_OFFLINE": "1",
            "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))}


def test_an_existing_cluster_reports_to_the_flows_server_and_scores_as_threads_do(cluster, flow_config, tmp_path):
    address, workers = cluster
    path, _ = flow_config("cluster.yaml", scorer={"name": "fake_wide"}, output_dir=str(tmp_path / "cluster-runs"),
                          executor={"kind": "dask", "address": address, "shard_size": 2})
    helpers = [child for worker in workers for child in psutil.Process(worker.pid).children(recursive=True)]
    run = subprocess.run([str(BIN / "mils"), "run", str(path)], env=_env(tmp_path / "flow-home"), cwd=ROOT,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 1 and "(6 computed, 0 resumed" in run.stdout, run.stdout + run.stderr  # 1: a broken sample
    on_cluster = load_config(path)
    threads = run_benchmark(on_cluster.model_copy(update={
        "executor": on_cluster.executor.model_copy(update={"kind": "threads", "address": None}),
        "output_dir": str(tmp_path / "thread-runs")}))
    assert _results(plan_run(on_cluster).results_dir) == _results(threads.results_dir)  # every score, to the last bit

    with sqlite3.connect(tmp_path / "flow-home" / "prefect.db") as db:
        shards = db.execute("select count(*) from task_run where name like 'optimise-shard%'").fetchone()[0]
    assert shards == (len(TARGETS) + 1) // 2, "every shard's task run is in the flow's own database"
    spawned = [child for worker in workers for child in psutil.Process(worker.pid).children(recursive=True)]
    assert {p.pid for p in spawned} == {p.pid for p in helpers}, [p.cmdline() for p in spawned]  # no uvicorn

    for worker in workers:
        _stop(worker)
    time.sleep(1)
    assert not [p for p in spawned if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]


def test_a_cluster_on_another_machine_needs_a_server_its_workers_can_reach(flow_config):
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.executors import workers_report_here
    from mils.config.run_config import ExecutorConfig
    from mils.errors import InputError

    with temporary_settings(restore_defaults={PREFECT_API_URL}):
        with pytest.raises(InputError, match="10.0.0.5:8786 is another machine.*PREFECT_API_URL"):
            with workers_report_here(ExecutorConfig(kind="dask", address="tcp://10.0.0.5:8786")):
                pass
    with workers_report_here(ExecutorConfig(kind="dask", address="tcp://10.0.0.5:8786")):
        pass  # a server is configured (the test harness's): Prefect sends its address to the workers
