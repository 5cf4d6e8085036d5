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
the last (:func:`blas_limited`, gpuvec's one BLAS limiter, which dask tasks use too).
To cap the main thread too, wrap the call in threadpoolctl's
``threadpool_limits(n)`` (BLAS) and set ``GPUVEC_NUM_THREADS=n`` (compiled loops;
``OMP_NUM_THREADS``, which dask's process workers set to 1, is read when it is unset).
"""

from __future__ import annotations

import contextlib
import importlib
import os
import sys
import threading
import types
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor, wait
from typing import Any

__all__ = ["blas_limited", "in_main_thread", "num_threads_setting", "run_parallel", "threads_for", "worker_threads"]

_lock = threading.Lock()  # guards the shared pool
_pool: ThreadPoolExecutor | None = None
_pool_pid = 0


def in_main_thread() -> bool:
    """Whether the caller is the interpreter's main thread."""
    return threading.current_thread() is threading.main_thread()


def worker_threads() -> int:
    """Threads for the compiled loops: 1 outside the main thread, else ``GPUVEC_NUM_THREADS``, else
    ``OMP_NUM_THREADS``, else the usable cores; never more than the usable cores (more threads than
    cores only wait on each other: 10,000 ran 2x slower than 2 on a 2-core machine).

    ``GPUVEC_NUM_THREADS`` is checked on every call, whatever the size of the work and the thread,
    so that a bad setting fails on the first call, not on the first large one.

    Raises
    ------
    ValueError
        If ``GPUVEC_NUM_THREADS`` is set to anything but a positive integer.

    Examples
    --------
    >>> worker_threads() >= 1
    True
    """
    asked = num_threads_setting()
    if not in_main_thread():
        return 1
    if asked is None:
        omp = os.environ.get("OMP_NUM_THREADS", "").strip()  # dask's process workers set it to 1
        asked = int(omp) if omp.isdigit() and int(omp) > 0 else None
    cores = _usable_cores()
    return cores if asked is None else min(asked, cores)


def num_threads_setting() -> int | None:
    """``GPUVEC_NUM_THREADS`` as an int (None where unset), or the ValueError naming it."""
    value = os.environ.get("GPUVEC_NUM_THREADS")
    if not value:  # unset: every public call asks, so this is the path to keep short
        return None
    value = value.strip()
    if not value:
        return None
    try:
        threads = int(value)
    except ValueError:
        threads = 0
    if threads < 1:
        msg = f"GPUVEC_NUM_THREADS must be a positive integer; got {value!r}"
        raise ValueError(msg)
    return threads


def threads_for(what: str, work: int) -> int:
    """:func:`worker_threads`, or 1 for a call of ``what`` ('rays', 'mixture') whose work is below
    :data:`gpuvec._core.dispatch.SERIAL_BELOW` (the thread hand-off would cost more than the work).

    Examples
    --------
    >>> threads_for("rays", 10)
    1
    """
    from gpuvec._core.dispatch import SERIAL_BELOW

    threads = worker_threads()  # checks GPUVEC_NUM_THREADS for small calls too
    return threads if work >= SERIAL_BELOW[what] else 1


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

    def worker() -> None:
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


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit: Any = None


@contextlib.contextmanager
def blas_limited(always: bool = False) -> Iterator[None]:
    """BLAS at one thread while the block runs, for calls from a thread pool: gpuvec's one BLAS limiter.

    Called from the main thread it changes nothing (a call there may use every
    core), unless ``always``: dask tasks and the dask mixture fit, whose work
    runs on dask's threads whatever thread entered the block, pass
    ``always=True``. The limit is process-wide (threadpoolctl), so it is
    reference-counted across threads: the first block to enter sets it, the
    last to leave restores what was there, and concurrent tasks of a thread
    pool never undo each other's limit. threadpoolctl lets only one Python
    thread set OpenBLAS's thread count and ignores the others; the first and
    the last block take that control for their set and restore, under the same
    lock, and give it up again.

    Parameters
    ----------
    always : bool, default False
        Limit BLAS in the main thread too.

    Examples
    --------
    >>> from threadpoolctl import threadpool_info
    >>> def blas_threads():
    ...     return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}
    >>> with blas_limited(always=True):
    ...     blas_threads() <= {1}
    True
    """
    if not always and in_main_thread():
        yield
        return
    _enter_blas_limit()
    try:
        yield
    finally:
        _leave_blas_limit()


_controller: Any = None
_controller_key = (0, 0)


def _blas_controller(threadpoolctl: types.ModuleType) -> Any:
    """threadpoolctl's controller of the loaded libraries, kept while no module has been imported since: a
    fresh one costs ~2 ms with scipy, sklearn and numba loaded (8 us to limit and restore with a kept
    one), and BLAS libraries arrive with imports. A forked child makes its own."""
    global _controller, _controller_key
    key = (os.getpid(), len(sys.modules))
    if _controller is None or key != _controller_key:
        _controller, _controller_key = threadpoolctl.ThreadpoolController(), key
    return _controller


def _enter_blas_limit() -> None:
    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            try:
                threadpoolctl = importlib.import_module("threadpoolctl")
            except ImportError:
                threadpoolctl = None
            if threadpoolctl is not None:
                _release_openblas(threadpoolctl)
                _blas_limit = _blas_controller(threadpoolctl).limit(limits=1, user_api="blas")
                _release_openblas(threadpoolctl)
        _blas_users += 1


def _leave_blas_limit() -> None:
    global _blas_users, _blas_limit
    with _blas_lock:
        _blas_users -= 1
        if _blas_users == 0 and _blas_limit is not None:
            threadpoolctl = importlib.import_module("threadpoolctl")
            _release_openblas(threadpoolctl)
            _blas_limit.restore_original_limits()
            _release_openblas(threadpoolctl)
            _blas_limit = None


def _release_openblas(threadpoolctl: types.ModuleType) -> None:
    """Let the calling thread set OpenBLAS's thread count (threadpoolctl >= 3.6 binds it to one thread)."""
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    if controller is not None and hasattr(controller, "clear_controlling_thread"):
        controller.clear_controlling_thread(force=True)
