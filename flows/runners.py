"""Task runner from the config: threads in this process, or Dask (a local cluster or an address).

A local Dask cluster gets one single-threaded worker process per GPU, each pinned to its own
device: dask-cuda's ``LocalCUDACluster`` when it is installed, else a cluster whose worker ``i``
starts with ``CUDA_VISIBLE_DEVICES=i``. Each worker loads its models once and keeps them.
"""

from __future__ import annotations

import importlib.util
from typing import Any

from mils.config.run_config import RunnerConfig


def gpu_count() -> int:
    try:
        import torch
    except ImportError:
        return 0
    return torch.cuda.device_count()


def pinned_worker_specs(n_workers: int, n_gpus: int) -> dict[str, dict[str, Any]]:
    """Worker specs for ``distributed.SpecCluster``: worker i sees only GPU i (mod the GPU count)."""
    from distributed import Nanny

    specs = {}
    for i in range(n_workers):
        env = {"CUDA_VISIBLE_DEVICES": str(i % n_gpus)} if n_gpus else {}
        specs[f"worker-{i}"] = {"cls": Nanny, "options": {"nthreads": 1, "env": env, "host": "127.0.0.1"}}
    return specs


def pinned_cluster(n_workers: int, n_gpus: int):
    """A local cluster with :func:`pinned_worker_specs` (called by Prefect's DaskTaskRunner)."""
    from distributed import Scheduler, SpecCluster

    return SpecCluster(workers=pinned_worker_specs(n_workers, n_gpus),
                       scheduler={"cls": Scheduler, "options": {"dashboard_address": None, "host": "127.0.0.1"}})


def local_cluster_plan(runner: RunnerConfig, n_gpus: int, have_dask_cuda: bool) -> tuple[Any, dict[str, Any]]:
    """(cluster class, its keyword arguments) for a local Dask cluster on a machine with ``n_gpus``."""
    n_workers = runner.workers or max(n_gpus, 1)
    if n_gpus and have_dask_cuda:
        devices = ",".join(str(i % n_gpus) for i in range(n_workers))
        return "dask_cuda.LocalCUDACluster", {"CUDA_VISIBLE_DEVICES": devices, "n_workers": n_workers,
                                              "threads_per_worker": 1, "dashboard_address": None}
    if n_gpus:
        return pinned_cluster, {"n_workers": n_workers, "n_gpus": n_gpus}
    return "distributed.LocalCluster", {"n_workers": n_workers, "threads_per_worker": 1, "processes": True,
                                        "dashboard_address": None}


def make_task_runner(runner: RunnerConfig):
    if runner.kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner  # a dependency of the suite (pyproject.toml)

    if runner.address:
        return DaskTaskRunner(address=runner.address)
    cluster_class, kwargs = local_cluster_plan(runner, gpu_count(), importlib.util.find_spec("dask_cuda") is not None)
    return DaskTaskRunner(cluster_class=cluster_class, cluster_kwargs=kwargs)
