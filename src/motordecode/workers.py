"""Worker processes that train in parallel, each pinned to its share of the cores and given its device.

Threads. A pool of W workers on a machine of C cores (the cores this process may run on) gives each
worker T threads for everything that threads: torch's intra-op pool, numba's parallel loops and the
BLAS and OpenMP libraries that numpy, scipy and torch load. The limit travels in the environment the
workers start with (:data:`THREAD_VARIABLES`), so each library reads it when it loads, before any of
them is imported in the worker; the trainers also set torch's pool to T (``threads=T``), and the RSNN
kernels set numba's to min(torch's, NUMBA_NUM_THREADS).

    T = 1 (the default): every cell's numbers are those of one thread, whatever W is (some recipes'
        numbers depend on the thread count: ann2d's R2 moves in the 4th decimal from 1 to 2 threads)
    T = "share": floor(C / W), at least 1
    W x T > C: a warning (the workers oversubscribe the cores), not a refusal

Devices. ``device`` "cpu" trains every cell on the CPU; "cuda" spreads the workers over the GPUs,
worker k training on GPU k mod n_gpus (several workers share a GPU when there are more workers than
GPUs; a worker trains one cell at a time); "cuda:N" puts every worker on GPU N; "auto" is "cuda"
where torch finds a GPU, else "cpu".

:func:`local_pool` is the process pool on this machine (``reproduce`` and ``sweep``): the workers
start once, each with its index, its thread limit and a watch that ends it with the command.
:func:`loopback_cluster` is the Dask cluster on this machine with the same limits, each worker
declaring a ``GPU`` resource when the cells train on GPUs. :func:`thread_limits`, run in a worker,
reports the limits it finds.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor

from motordecode.errors import ConfigError
from motordecode.training.epochs import OWNED_CORES, available_cores
from motordecode.notices import warn

THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS",
                    "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS", "BLIS_NUM_THREADS",
                    OWNED_CORES)  # the last: the trainers cut batches in line, with no core spare
SHARE = "share"
GPU_RESOURCE = "GPU"  # the Dask resource a worker on a GPU declares and a GPU cell asks for
_worker = {"index": None}  # this process's index in its local pool (set by the pool's bootstrap)


def check_workers(workers) -> int:
    """The number of parallel tasks, once it is an integer of at least 1."""
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ConfigError(f"workers must be a whole number of at least 1, got {workers!r}.", setting="workers")
    return workers


def check_threads(threads, workers: int, cores: int | None = -1) -> int:
    """Each worker's thread count: ``threads`` (a whole number of at least 1, or "share" for
    floor(cores / workers)); a warning when the workers' threads add up to more than the cores.
    ``cores``: -1 (default) this process's cores; None: unknown here (a remote cluster's), no warning."""
    if cores is None:
        if threads == SHARE or isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ConfigError(f"threads per worker must be a whole number of at least 1, got {threads!r}.",
                              setting="threads_per_worker")
        return threads
    cores = available_cores() if cores == -1 else cores
    if threads == SHARE:
        threads = max(1, cores // workers)
    elif isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ConfigError(f"threads per worker must be a whole number of at least 1 or {SHARE!r}, got {threads!r}.",
                          setting="threads_per_worker")
    if workers * threads > cores:
        fits = (f"{cores // workers} thread(s) per worker" if workers <= cores else
                f"{max(1, cores // threads)} worker(s)")
        warn(f"{workers} worker(s) x {threads} thread(s) = {workers * threads} threads on {cores} core(s) "
             f"oversubscribe the cores (each runs slower); {fits} would fit.")
    return threads


def check_device(spec) -> str:
    """The cells' device setting for workers on this machine: "cpu", "cuda" (spread over the GPUs)
    or "cuda:N"; "auto" becomes "cuda" or "cpu". ConfigError (one line) for CUDA where torch finds
    none, an index past the GPUs, or other text (:func:`motordecode.devices.resolve_device`)."""
    from motordecode.devices import resolve_device

    device = resolve_device(spec)
    if device.type == "cpu":
        return "cpu"
    text = str(spec).strip().lower()
    return "cuda" if text in ("auto", "cuda") else str(device)


def check_device_text(spec) -> str:
    """The device setting for workers elsewhere (a Dask cluster's), checked as text only: "auto",
    "cpu", "cuda" or "cuda:N" (each worker resolves it with :func:`worker_device`)."""
    text = str(spec).strip().lower()
    kind, colon, index = text.partition(":")
    if text not in ("auto", "cpu", "cuda") and not (kind == "cuda" and colon and index.isascii() and index.isdecimal()):
        raise ConfigError(f"device {spec!r}: unknown device; use auto, cpu, cuda or cuda:N.", setting="device")
    return text


def worker_device(spec: str, index: int) -> str:
    """The device worker ``index`` trains on: "cpu"; GPU index mod n_gpus for "cuda" (and for
    "auto" where this worker's torch finds a GPU); "cuda:N" as given."""
    from motordecode.devices import resolve_device

    text = str(spec).strip().lower()
    if text == "auto":
        text = "cuda" if resolve_device("auto").type == "cuda" else "cpu"
    if text == "cuda":
        import torch

        resolve_device("cuda")  # the one-line error where this worker finds no GPU
        return f"cuda:{index % torch.cuda.device_count()}"
    return str(resolve_device(text))


def worker_index() -> int:
    """This worker's index: its place in the local pool, a loopback Dask worker's name (0, 1, ...),
    else 0 (a worker started by a batch system, which sees the GPUs it was given from cuda:0)."""
    if _worker["index"] is not None:
        return _worker["index"]
    try:
        from distributed import get_worker

        name = get_worker().name
    except (ImportError, ValueError):
        return 0
    return name if isinstance(name, int) else 0


@contextlib.contextmanager
def thread_environment(threads: int):
    """Within the block, :data:`THREAD_VARIABLES` = ``threads`` in this process's environment, which
    the processes it starts inherit (and read before they import anything); restored after."""
    before = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    os.environ.update({name: str(threads) for name in THREAD_VARIABLES})
    try:
        yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def thread_limits(_: object = None) -> dict:
    """The thread limits this process runs under: its pid and pool index, the environment's
    :data:`THREAD_VARIABLES`, torch's intra-op threads, numba's threads, and each BLAS or OpenMP
    library's threads where threadpoolctl is installed (else ``blas`` is None)."""
    import numba
    import numpy  # noqa: F401 - loads numpy's BLAS, so threadpoolctl sees it
    import torch

    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        blas = None
    else:
        blas = [{"api": p["internal_api"], "library": os.path.basename(p["filepath"]), "threads": p["num_threads"]}
                for p in threadpool_info()]
    env = {name: os.environ.get(name) for name in THREAD_VARIABLES}
    return {"pid": os.getpid(), "index": worker_index(), "env": env,
            "torch": torch.get_num_threads(), "numba": numba.get_num_threads(), "blas": blas}


# -- the local pool ------------------------------------------------------------------------------
def end_with_parent(parent: int) -> None:
    """End this process when ``parent`` ends, however it ends (SIGKILL included): on Linux the
    kernel sends SIGKILL (PR_SET_PDEATHSIG; the pool's processes are started by the thread that
    runs the pool, which lives as long as the pool); elsewhere a thread polls the parent's pid."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGKILL, 0, 0, 0)
    else:
        def watch():
            while os.getppid() == parent:
                time.sleep(0.5)
            os._exit(1)
        threading.Thread(target=watch, daemon=True, name="end-with-parent").start()
    if os.getppid() != parent:  # the parent ended before the watch began
        os._exit(1)


def _start_worker(counter, parent: int, initializer, initargs) -> None:
    """A local pool worker: takes the next index, ends with the command, then ``initializer``."""
    with counter.get_lock():
        _worker["index"] = counter.value
        counter.value += 1
    end_with_parent(parent)
    if initializer is not None:
        initializer(*initargs)


@contextlib.contextmanager
def local_pool(workers: int, threads: int, initializer=None, initargs=()):
    """A spawned process pool of ``workers`` on this machine, each limited to ``threads`` threads
    (:func:`thread_environment`), numbered 0, 1, ... (:func:`worker_index`) and ending with this
    process; ``initializer(*initargs)`` runs once in each. Leaving the block normally waits for
    the tasks; leaving it by an exception (KeyboardInterrupt, or a consumer that gave up) kills
    the workers at once."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    counter = context.Value("i", 0)
    with thread_environment(threads):  # the workers start on demand, within the block
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_start_worker,
                                   initargs=(counter, os.getpid(), initializer, initargs))
        try:
            yield pool
        except BaseException:
            for process in list((getattr(pool, "_processes", None) or {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()


# -- Dask ----------------------------------------------------------------------------------------
@contextlib.contextmanager
def loopback_cluster(workers: int, threads: int, gpus: bool = False):
    """A Dask LocalCluster of ``workers`` single-task worker processes on 127.0.0.1 (no dashboard),
    each limited to ``threads`` threads (the nannies set :data:`THREAD_VARIABLES` before they start
    a worker, restarted ones included) and, with ``gpus``, declaring one ``GPU`` resource. Dask's
    default MALLOC_TRIM_THRESHOLD_ is left unset: it pins glibc's mmap threshold (~17% slower cells)."""
    import dask
    from distributed import LocalCluster

    environ = {"distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
               **{f"distributed.nanny.pre-spawn-environ.{name}": str(threads) for name in THREAD_VARIABLES}}
    with dask.config.set(environ), thread_environment(threads):  # the environment overrides the config
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address=None, resources={GPU_RESOURCE: 1} if gpus else None)
    try:
        yield cluster
    finally:
        cluster.close()
