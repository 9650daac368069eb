"""Task runner from the config: threads on one machine, or Dask (local cluster or an address)."""

from __future__ import annotations

from mils.config import RunnerConfig


def make_task_runner(runner: RunnerConfig):
    if runner.kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=runner.workers)
    try:
        from prefect_dask import DaskTaskRunner
    except ImportError as err:
        raise ImportError("runner.kind=dask needs prefect-dask: pip install prefect-dask") from err
    if runner.address:
        return DaskTaskRunner(address=runner.address)
    # one single-threaded worker process per GPU: each loads its models once and keeps them
    return DaskTaskRunner(cluster_kwargs={"n_workers": runner.workers, "threads_per_worker": 1,
                                          "processes": True, "dashboard_address": None})
