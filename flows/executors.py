"""The flow's task runner, from the config's ``executor``: threads here, or Dask (a local cluster or an address).

A local Dask cluster gets one single-threaded worker process per GPU, each pinned to its own
device: dask-cuda's ``LocalCUDACluster`` when it is installed, else a cluster whose worker ``i``
starts with ``CUDA_VISIBLE_DEVICES=i``. Each worker loads its models once and keeps them.

Dask workers run Prefect's task engine, which reports to the API in the flow's settings:
:func:`run_flow` gives them the flow's own (see :func:`workers_report_here`).
"""

from __future__ import annotations

import importlib.util
import ipaddress
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

from mils.config import ExecutorConfig
from mils.errors import InputError


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


def local_cluster_plan(executor: ExecutorConfig, n_gpus: int, have_dask_cuda: bool) -> tuple[Any, dict[str, Any]]:
    """(cluster class, its keyword arguments) for a local Dask cluster on a machine with ``n_gpus``."""
    n_workers = executor.workers or max(n_gpus, 1)
    if n_gpus and have_dask_cuda:
        devices = ",".join(str(i % n_gpus) for i in range(n_workers))
        return "dask_cuda.LocalCUDACluster", {"CUDA_VISIBLE_DEVICES": devices, "n_workers": n_workers,
                                              "threads_per_worker": 1, "dashboard_address": None}
    if n_gpus:
        return pinned_cluster, {"n_workers": n_workers, "n_gpus": n_gpus}
    return "distributed.LocalCluster", {"n_workers": n_workers, "threads_per_worker": 1, "processes": True,
                                        "dashboard_address": None}


def make_task_runner(executor: ExecutorConfig):
    if executor.kind == "threads":
        from prefect.task_runners import ThreadPoolTaskRunner

        return ThreadPoolTaskRunner(max_workers=1)
    from prefect_dask import DaskTaskRunner  # a dependency of the suite (pyproject.toml)

    if executor.address:
        return DaskTaskRunner(address=executor.address)
    cluster_class, kwargs = local_cluster_plan(executor, gpu_count(), importlib.util.find_spec("dask_cuda") is not None)
    return DaskTaskRunner(cluster_class=cluster_class, cluster_kwargs=kwargs)


def run_flow(flow_fn, executor: ExecutorConfig, *args: Any) -> Any:
    """Call the Prefect flow ``flow_fn(*args)`` on the task runner ``executor`` names."""
    task_runner = make_task_runner(executor)
    with workers_report_here(executor):
        return flow_fn.with_options(task_runner=task_runner)(*args)


@contextmanager
def workers_report_here(executor: ExecutorConfig) -> Iterator[None]:
    """Dask workers report their task runs to the flow's Prefect API. With no ``PREFECT_API_URL`` each
    worker would start a temporary server of its own: task runs lost in a throwaway database per worker,
    and a server left running when its worker stops. So the flow starts its temporary server first and
    hands its address on (in the settings Prefect sends with every task). That server listens on
    loopback: a cluster elsewhere needs a server its workers can reach, and this says so."""
    from prefect.settings import PREFECT_API_URL, PREFECT_SERVER_ALLOW_EPHEMERAL_MODE, temporary_settings

    if executor.kind != "dask" or PREFECT_API_URL.value() or not PREFECT_SERVER_ALLOW_EPHEMERAL_MODE.value():
        yield
        return
    if executor.address and not _on_loopback(executor.address):
        raise InputError(
            f"executor.address {executor.address} is another machine: its workers cannot report to this run's temporary "
            "Prefect server (on 127.0.0.1). Start one they can reach (`prefect server start --host 0.0.0.0`) and set "
            "PREFECT_API_URL=http://THIS_HOST:4200/api here")
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()  # the one Prefect itself would start for this process
    server.start()
    with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        yield


def _on_loopback(address: str) -> bool:
    host = urlsplit(address if "://" in address else f"tcp://{address}").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
