"""Faults aimed at a run: a Dask worker dying mid-shard, and a real SIGKILL while the bank
embeddings are written, while metrics are saved, while MLflow logs. The rerun must finish with the
results of a fault-free run, never read a half-written file, and leave one finished MLflow parent."""

import os
import signal
import subprocess
import sys

import dask
import mlflow
import numpy as np
import pytest

from flows.benchmark import run_benchmark
from mils.components.plan import plan_run
from mils.config.run_config import load_config
from mils.storage.results import ResultStore
from tests.flows.conftest import TARGETS


def _results(results_dir) -> dict:
    return {r.sample_id: (r.history, r.kept) for r in ResultStore(results_dir).results()}


def _fault_free(config, tmp_path) -> dict:
    return _results(run_benchmark(config.model_copy(update={
        "output_dir": str(tmp_path / "fault-free"), "cache_dir": str(tmp_path / "fault-free-cache"),
        "tracking": config.tracking.model_copy(update={"uri": f"sqlite:///{tmp_path / 'fault-free.db'}"}),
        "executor": config.executor.model_copy(update={"kind": "threads", "workers": None})})).results_dir)


def _dying_generator(tmp_path, flag: str, once: bool) -> dict:
    # one sample per batch, 3 steps: the 4th call is the second sample's first step, so the
    # shard's first sample is already on disk when the worker dies
    return {"backend": "fake", "model": "fake",
            "options": {"die_at_call": 4, "die_unless": str(tmp_path / flag), "die_once": once}}


def test_a_worker_killed_mid_shard_is_replaced_and_the_shard_finishes(flow_config, repo_on_pythonpath, tmp_path):
    path, _ = flow_config("dask.yaml", generator=_dying_generator(tmp_path, "died", once=True), batch_size=1,
                          executor={"kind": "dask", "workers": 2, "shard_size": 3})
    config = load_config(path)
    outcome = run_benchmark(config)
    assert (tmp_path / "died").exists(), "a worker process should have been killed"
    assert outcome.counts["done"] == len(TARGETS) and len(outcome.failures) == 1  # only the broken image
    files = list((plan_run(config).results_dir / "samples").glob("*.json"))
    assert len(files) == len(TARGETS)  # one file per sample: nothing duplicated
    assert _results(plan_run(config).results_dir) == _fault_free(config, tmp_path)


def test_a_shard_whose_worker_always_dies_is_recorded_failed_and_a_rerun_completes(flow_config, repo_on_pythonpath,
                                                                                  tmp_path):
    path, _ = flow_config("dask.yaml", generator=_dying_generator(tmp_path, "fixed", once=False), batch_size=1,
                          executor={"kind": "dask", "workers": 2, "shard_size": 3})
    config = load_config(path)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0}):  # give up on the first death
        outcome = run_benchmark(config)
    lost = {k: v for k, v in outcome.failures.items() if "worker process" in v}
    assert len(lost) >= 2 and outcome.counts["done"] + len(lost) == len(TARGETS)  # the run finished anyway
    assert all("rerun" in reason for reason in lost.values())

    (tmp_path / "fixed").touch()  # the cause is gone: the same config's rerun retries what failed
    threads = config.executor.model_copy(update={"kind": "threads", "workers": None})
    rerun = run_benchmark(config.model_copy(update={"executor": threads}))
    assert rerun.counts["done"] == len(TARGETS) and rerun.counts["resumed"] == outcome.counts["done"]
    assert len(list((plan_run(config).results_dir / "samples").glob("*.json"))) == len(TARGETS)
    assert not set(lost) & set(rerun.failures)
    assert _results(plan_run(config).results_dir) == _fault_free(config, tmp_path)


@pytest.mark.parametrize("point", ["bank-write", "generated-bank", "metrics", "mlflow"])
def test_a_sigkill_at_a_critical_write_is_survived_by_the_rerun(point, flow_config, repo_on_pythonpath, tmp_path):
    bank = {"generate": {"per_class": 3, "classes": 60}} if point == "generated-bank" else {}
    path, raw = flow_config(plugins=["tests.fakes", "tests.kill_points"], **{f"bank__{k}": v for k, v in bank.items()},
                            **({"bank__path": None} if bank else {}))
    config = load_config(path)
    log = tmp_path / "killed.log"
    with open(log, "wb") as out:  # the run's own process dies; its Prefect server child is ended after
        killed = subprocess.Popen([sys.executable, "-m", "cli", "run", str(path)], cwd=tmp_path, stdout=out,
                                  stderr=subprocess.STDOUT, env={**os.environ, "MILS_KILL_AT": point},
                                  start_new_session=True)
        try:
            assert killed.wait(timeout=300) == -signal.SIGKILL, log.read_text()[-2000:]
        finally:
            os.killpg(killed.pid, signal.SIGKILL)
    if point == "generated-bank":  # half the texts on disk, under a temporary name: the rerun cannot reuse them
        assert list((tmp_path / "cache").rglob(".*.tmp")) and not list((tmp_path / "cache").rglob("*.txt"))
    if point == "bank-write":  # half a file on disk, never under the cache's name
        assert list((tmp_path / "cache").rglob("bank-*.tmp.npy")) and not list((tmp_path / "cache").rglob("bank-*[0-9a-f].npy"))

    outcome = run_benchmark(config)  # the rerun, without the kill
    assert outcome.counts["done"] == len(TARGETS)
    assert _results(plan_run(config).results_dir) == _fault_free(config, tmp_path)
    caches = list((tmp_path / "cache").rglob("bank-*.npy"))
    assert len(caches) == 1 and np.load(caches[0]).shape[0] > 100  # whole, and the half file is gone
    assert outcome.reports["final"].n_samples == len(TARGETS)  # metrics over every sample, resumed ones too

    client = mlflow.tracking.MlflowClient(config.tracking.uri)
    experiment = client.get_experiment_by_name(raw["tracking"]["experiment"]).experiment_id
    runs = client.search_runs([experiment])
    assert "RUNNING" not in [r.info.status for r in runs]
    parents = [r for r in runs if r.data.tags.get("mils.kind") == "benchmark"]
    assert [p.info.status for p in parents] == ["FINISHED"]  # one parent for the config
    finished = [r for r in runs if r.data.tags.get("mils.kind") == "config" and r.info.status == "FINISHED"]
    assert len(finished) == 1 and finished[0].data.metrics["samples/done"] == len(TARGETS)
