"""The workers of the local pool and of the loopback Dask cluster: each reads, from inside its own
process, the thread limits it was given, and a GPU setting places it on a GPU."""

from __future__ import annotations

import multiprocessing
import os

import pytest
import torch

from motordecode.errors import ConfigError
from motordecode.notices import MotordecodeWarning
from motordecode.workers import (THREAD_VARIABLES, available_cores, check_device, check_device_text, check_threads,
                                 local_pool, loopback_cluster, thread_limits, worker_device)


def _assert_limited(report: dict, threads: int) -> None:
    assert report["env"] == {name: str(threads) for name in THREAD_VARIABLES}, report
    assert report["torch"] == threads and report["numba"] == threads, report
    if report["blas"] is not None:  # threadpoolctl installed: every BLAS and OpenMP library it finds
        assert report["blas"] and all(pool["threads"] == threads for pool in report["blas"]), report


def _blas_note(reports) -> None:
    if any(r["blas"] is None for r in reports):
        print("threadpoolctl is not installed: the BLAS libraries are checked through the variables that they "
              "read when they load (set before the worker imports anything), torch's and numba's through their getters")


@pytest.mark.parametrize("workers, threads", [(2, "share"), (1, 1)])
def test_each_local_pool_worker_reads_its_own_thread_limits(workers, threads):
    """2 workers with their share of the cores, and 1 worker given 1 thread: each limit differs
    from what a worker would get unlimited (every core), so a missing one is seen."""
    share = check_threads(threads, workers)
    if share == available_cores():
        pytest.skip(f"because the share ({share}) equals this machine's default, so a missing limit would not show")
    barrier = multiprocessing.get_context("spawn").Barrier(workers, timeout=120)  # every worker takes one report
    with local_pool(workers, share, initializer=barrier.wait) as pool:
        reports = [f.result(timeout=300) for f in [pool.submit(thread_limits, k) for k in range(workers)]]
        later = [f.result(timeout=300) for f in [pool.submit(thread_limits, k) for k in range(3 * workers)]]
    assert sorted(r["index"] for r in reports) == list(range(workers))
    assert len({r["pid"] for r in reports}) == workers
    assert {r["pid"] for r in later} <= {r["pid"] for r in reports}  # the workers start once, not per task
    for report in reports:
        _assert_limited(report, share)
    _blas_note(reports)


def test_each_loopback_dask_worker_reads_its_own_thread_limits():
    share = check_threads("share", 2)
    with loopback_cluster(2, share) as cluster:
        from distributed import Client

        with Client(cluster) as client:
            addresses = sorted(client.scheduler_info()["workers"])
            reports = client.gather([client.submit(thread_limits, a, workers=[a], pure=False) for a in addresses])
    assert len({r["pid"] for r in reports}) == 2 and sorted(r["index"] for r in reports) == [0, 1]
    for report in reports:
        _assert_limited(report, share)
    _blas_note(reports)


def test_threads_and_devices_are_checked():
    cores = available_cores()
    assert check_threads("share", 1) == cores
    with pytest.warns(MotordecodeWarning, match="oversubscribe"):
        assert check_threads("share", cores + 1) == 1
    with pytest.warns(MotordecodeWarning, match="oversubscribe"):
        assert check_threads(2, cores) == 2
    for bad in (0, -1, 1.5, True, "two"):
        with pytest.raises(ConfigError, match="threads per worker"):
            check_threads(bad, 1)
    assert check_device("cpu") == "cpu" and worker_device("cpu", 5) == "cpu"
    assert check_device_text(" CUDA:1 ") == "cuda:1" and check_device_text("auto") == "auto"
    with pytest.raises(ConfigError, match="unknown device"):
        check_device_text("gpu")
    if torch.cuda.is_available():
        n = torch.cuda.device_count()
        assert check_device("auto") == "cuda" and check_device("cuda") == "cuda"
        assert [worker_device("cuda", k) for k in range(2 * n)] == [f"cuda:{k % n}" for k in range(2 * n)]
        assert worker_device("cuda:0", 3) == "cuda:0"
    else:
        assert check_device("auto") == "cpu" and worker_device("auto", 3) == "cpu"
        with pytest.raises(ConfigError, match="device 'cuda'"):
            check_device("cuda")
        with pytest.raises(ConfigError, match="device 'cuda'"):
            worker_device("cuda", 0)
        print("no CUDA here: the spread of workers over GPUs (worker k on GPU k mod n) is checked where CUDA exists")


def test_gpu_tasks_ask_dask_workers_for_a_gpu_resource_that_they_declare():
    """The loopback cluster's workers declare one GPU when the cells train on GPUs, and a task that
    asks for it runs; on a cluster whose workers declare none, --device cuda is refused, not left
    waiting for ever."""
    from distributed import Client

    from motordecode.reproduce import _asks_for_gpus

    with loopback_cluster(1, 1, gpus=True) as cluster, Client(cluster) as client:
        assert _asks_for_gpus(client, "cuda") and _asks_for_gpus(client, "auto") and not _asks_for_gpus(client, "cpu")
        assert client.submit(thread_limits, resources={"GPU": 1}, pure=False).result(timeout=120)["index"] == 0
    with loopback_cluster(1, 1) as cluster, Client(cluster) as client:
        assert not _asks_for_gpus(client, "auto") and not _asks_for_gpus(client, "cpu")
        with pytest.raises(ConfigError, match="no worker of the Dask cluster declares a GPU resource"):
            _asks_for_gpus(client, "cuda:0")


def test_a_worker_pinned_to_its_cores_cuts_batches_in_line(monkeypatch):
    """The pool's workers own their threads' cores: no prefetch thread beside training; a process
    with a core beyond torch's threads (a plain `train`) keeps its prefetch thread."""
    import torch

    from motordecode.training.epochs import OWNED_CORES, spare_core

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        monkeypatch.setenv(OWNED_CORES, "1")
        assert not spare_core()
        monkeypatch.setenv(OWNED_CORES, "2")
        assert spare_core()
        monkeypatch.delenv(OWNED_CORES)
        assert spare_core() == (len(os.sched_getaffinity(0)) > 1)
    finally:
        torch.set_num_threads(before)
