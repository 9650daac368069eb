import os

import pytest

from flows.executors import local_cluster_plan, pinned_cluster, pinned_worker_specs
from mils.config.run_config import ExecutorConfig


def _devices(specs):
    return [spec["options"]["env"].get("CUDA_VISIBLE_DEVICES") for spec in specs.values()]


def test_one_worker_per_gpu_each_pinned_to_its_own_device():
    cls, kwargs = local_cluster_plan(ExecutorConfig(kind="dask"), n_gpus=4, have_dask_cuda=False)
    assert cls is pinned_cluster and kwargs == {"n_workers": 4, "n_gpus": 4}
    assert _devices(pinned_worker_specs(**kwargs)) == ["0", "1", "2", "3"]
    assert all(s["options"]["nthreads"] == 1 for s in pinned_worker_specs(**kwargs).values())


def test_dask_cuda_is_used_when_installed():
    cls, kwargs = local_cluster_plan(ExecutorConfig(kind="dask"), n_gpus=3, have_dask_cuda=True)
    assert cls == "dask_cuda.LocalCUDACluster"
    assert kwargs["CUDA_VISIBLE_DEVICES"] == "0,1,2" and kwargs["n_workers"] == 3


def test_explicit_worker_count_and_no_gpu():
    _, kwargs = local_cluster_plan(ExecutorConfig(kind="dask", workers=2), n_gpus=4, have_dask_cuda=False)
    assert _devices(pinned_worker_specs(**kwargs)) == ["0", "1"]
    cls, kwargs = local_cluster_plan(ExecutorConfig(kind="dask"), n_gpus=0, have_dask_cuda=False)
    assert cls == "distributed.LocalCluster" and kwargs["n_workers"] == 1


def test_pinned_workers_really_see_only_their_device():
    """A real local cluster (2 worker processes, 2 faked GPUs): each process's environment."""
    from distributed import Client

    with pinned_cluster(2, 2) as cluster, Client(cluster) as client:
        seen = client.run(lambda: os.environ.get("CUDA_VISIBLE_DEVICES"))
    assert sorted(seen.values()) == ["0", "1"]


def test_the_threads_executor_refuses_workers_it_cannot_use():
    with pytest.raises(ValueError, match="no parallelism"):
        ExecutorConfig(kind="threads", workers=2)
    assert ExecutorConfig(kind="threads").workers is None
