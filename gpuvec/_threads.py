"""Threads of gpuvec's CPU loops: how many, and BLAS kept to one thread inside a thread pool.

Used by every CPU loop: the mixture fits' and ray_max's numba loops (``nogil``)
and ray_max's numpy loop (numpy releases the GIL inside each operation). The
rule (documented on :class:`gpuvec.mixture.GaussianMixture` and
:func:`gpuvec.ray_max`):

- called from the main thread, a call uses every core this process may run on:
  the loops split their work over that many threads, and BLAS keeps
  its own setting;
- called from any other thread (a ``concurrent.futures`` pool, a dask worker,
  a web server's request thread), the caller already runs things in parallel:
  the compiled loops run in the calling thread alone, and BLAS is limited to one
  thread (threadpoolctl's ``threadpool_limits(1, "blas")``) for the duration of
  the call, so N pool threads use N cores, not N x cores.

BLAS thread limits are process-wide, so the limit is reference-counted: it is
set by the first of several concurrent calls from pool threads and restored by
the last (:func:`gpuvec._backend.blas_one_thread`, gpuvec's one BLAS limiter,
which dask tasks use too). To cap the main thread too, wrap the call in threadpoolctl's
``threadpool_limits(n)`` (BLAS) and set ``GPUVEC_NUM_THREADS=n`` (compiled loops;
``OMP_NUM_THREADS``, which dask's process workers set to 1, is read when it is unset).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait

from gpuvec._backend import blas_one_thread

__all__ = ["blas_limited", "blas_limited_call", "in_main_thread", "run_parallel", "worker_threads"]

_lock = threading.Lock()  # guards the shared pool
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def in_main_thread() -> bool:
    """Whether the caller is the interpreter's main thread."""
    return threading.current_thread() is threading.main_thread()


def worker_threads() -> int:
    """Threads for the compiled loops: 1 outside the main thread, else ``GPUVEC_NUM_THREADS``, else
    ``OMP_NUM_THREADS`` (at most the usable cores), else the usable cores.

    Examples
    --------
    >>> worker_threads() >= 1
    True
    """
    if not in_main_thread():
        return 1
    value = os.environ.get("GPUVEC_NUM_THREADS", "").strip()
    if value:
        try:
            threads = int(value)
        except ValueError:
            threads = 0
        if threads < 1:
            msg = f"GPUVEC_NUM_THREADS must be a positive integer; got {value!r}"
            raise ValueError(msg)
        return threads
    omp = os.environ.get("OMP_NUM_THREADS", "").strip()  # dask's process workers set it to 1
    if omp.isdigit() and int(omp) > 0:
        return min(int(omp), _usable_cores())
    return _usable_cores()


def _usable_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def run_parallel(fn: Callable[[int, int], object], spans: list[tuple[int, int]], threads: int | None = None) -> None:
    """``fn(lo, hi)`` for every span, on ``threads`` threads (default: one per span): the calling thread and
    the rest from a shared pool, each taking the next span not yet taken until none is left.

    More spans than threads balance the load where some spans cost more than others or a core runs
    slower (a busy neighbour on a shared machine). Each span runs exactly once, so a ``fn`` that writes
    each span's results to their own place gives the same result on any number of threads.
    """
    global _pool, _pool_pid
    threads = len(spans) if threads is None else max(1, min(threads, len(spans)))
    if threads <= 1:
        for lo, hi in spans:
            fn(lo, hi)
        return
    with _lock:
        # A new pool when too small, or in a forked child (whose copy of the pool has no threads).
        if _pool is None or _pool._max_workers < threads - 1 or _pool_pid != os.getpid():
            _pool = ThreadPoolExecutor(max_workers=threads - 1, thread_name_prefix="gpuvec")
            _pool_pid = os.getpid()
        pool = _pool
    queue = iter(spans)
    taking = threading.Lock()

    def worker():
        while True:
            with taking:
                span = next(queue, None)
            if span is None:
                return
            fn(*span)

    futures = [pool.submit(worker) for _ in range(threads - 1)]
    error = None
    try:
        worker()
    except BaseException as exc:  # raised below, once no worker is still running
        error = exc
    wait(futures)  # every worker stopped (spans done or failed) before returning or raising
    if error is not None:
        raise error
    for f in futures:  # the first worker error, if any
        f.result()


@contextlib.contextmanager
def blas_limited() -> Iterator[None]:
    """BLAS limited to one thread while a call from a non-main thread runs (a no-op in the main thread).

    Examples
    --------
    >>> with blas_limited():  # the main thread: nothing changes
    ...     pass
    """
    if in_main_thread():
        yield
        return
    with blas_one_thread():
        yield


def blas_limited_call(func: Callable) -> Callable:
    """``func`` run inside :func:`blas_limited` (a decorator; the signature and docstring are kept)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        with blas_limited():
            return func(*args, **kwargs)

    return wrapper
