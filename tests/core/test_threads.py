"""gpuvec._core.threads: the thread rule, the span runner shared by every CPU loop, and the BLAS limiter."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import gpuvec
from gpuvec._core import threads as _threads

# --------------------------------------------------------------------------- the span runner


@pytest.mark.parametrize("threads", [None, 1, 2, 3, 16])
def test_run_parallel_runs_every_span_exactly_once(threads):
    spans = [(i, i + 1) for i in range(23)]
    seen, names = [], set()
    lock = threading.Lock()

    def fn(lo, hi):
        with lock:
            seen.append((lo, hi))
            names.add(threading.current_thread().name)

    _threads.run_parallel(fn, spans, threads)
    assert sorted(seen) == spans
    most = len(spans) if threads is None else min(threads, len(spans))
    assert 1 <= len(names) <= most


def test_run_parallel_raises_a_workers_error_after_every_span_ran():
    import time

    finished = []

    def fn(lo, hi):
        if lo == 0:
            raise ValueError("span 0")
        time.sleep(0.05)
        finished.append(lo)

    with pytest.raises(ValueError, match="span 0"):
        _threads.run_parallel(fn, [(i, i + 1) for i in range(7)], 3)
    # No worker is still running: every other span had finished when the error came out.
    assert sorted(finished) == list(range(1, 7))


def test_run_parallel_raises_the_calling_threads_own_error_first():
    def fn(lo, hi):  # each thread stops at its first error, so each of the two takes one span
        if _threads.in_main_thread():
            raise ValueError("the caller's")
        raise RuntimeError("a pool thread's")

    with pytest.raises(ValueError, match="the caller's"):
        _threads.run_parallel(fn, [(0, 1), (1, 2)], 2)


# --------------------------------------------------------------------------- the thread count


def test_gpuvec_num_threads_is_read(monkeypatch):
    cores = _threads._usable_cores()
    monkeypatch.setenv("GPUVEC_NUM_THREADS", "3")
    assert _threads.worker_threads() == min(3, cores)
    monkeypatch.setenv("GPUVEC_NUM_THREADS", "10000")  # capped at the cores this process may use
    assert _threads.worker_threads() == cores
    monkeypatch.delenv("GPUVEC_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as dask's process workers set it
    assert _threads.worker_threads() == 1
    for bad in ("many", "0", "-3", "2.5"):
        monkeypatch.setenv("GPUVEC_NUM_THREADS", bad)
        with pytest.raises(ValueError, match=f"GPUVEC_NUM_THREADS must be a positive integer; got '{bad}'"):
            _threads.worker_threads()
        with pytest.raises(ValueError, match="GPUVEC_NUM_THREADS"):  # small calls check it too
            _threads.threads_for("rays", 1)


# --------------------------------------------------------------------------- the BLAS limiter


def test_blas_is_limited_to_one_thread_inside_a_pool_thread_and_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()

    def in_thread():
        with _threads.blas_limited():
            inside = blas_threads()
            with _threads.blas_limited():  # nested: still one, restored only by the outer exit
                nested = blas_threads()
            after_nested = blas_threads()
        return inside, nested, after_nested, _threads.worker_threads()

    with ThreadPoolExecutor(2) as pool:
        inside, nested, after_nested, workers = pool.submit(in_thread).result()
    assert before, "threadpoolctl finds no BLAS library: nothing to limit"
    assert inside == nested == after_nested == [1] * len(before)
    assert workers == 1
    assert blas_threads() == before
    with _threads.blas_limited():  # the main thread: untouched
        assert blas_threads() == before


def test_overlapping_pool_threads_restore_blas_when_the_last_one_leaves():
    """Thread A sets the limit, thread B leaves last: B's restore must take effect (threadpoolctl binds
    OpenBLAS to the thread that set it, which gpuvec._core.threads.blas_limited releases)."""
    import threading

    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    assert before, "threadpoolctl finds no BLAS library: nothing to limit"
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with _threads.blas_limited():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second():
        a_in.wait(5)
        with _threads.blas_limited():
            b_in.set()
            a_out.wait(5)
            assert blas_threads() == [1] * len(before)  # still limited after A left

    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(first), pool.submit(second)]:
            f.result()
        assert blas_threads() == before
        assert pool.submit(blas_threads).result() == before
        with threadpoolctl.threadpool_limits(1, "blas"):  # and the main thread can still set limits
            assert blas_threads() == [1] * len(before)
    assert blas_threads() == before


def test_blas_limit_is_held_while_any_task_runs():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from gpuvec._core.threads import blas_limited

    def blas_threads():
        return {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}

    before = blas_threads()
    first_in, second_in, release = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def task(entered, wait_for):
        with blas_limited(always=True):
            entered.set()
            wait_for.wait(5)
            seen.append(blas_threads())

    a = threading.Thread(target=task, args=(first_in, release))
    a.start()
    first_in.wait(5)
    done = threading.Event()
    done.set()
    b = threading.Thread(target=task, args=(second_in, done))
    b.start()  # b leaves while a is still inside: the limit must stay
    b.join()
    release.set()
    a.join()
    assert all(s <= {1} for s in seen), (seen, before)
    assert blas_threads() == before


def test_small_calls_run_on_the_calling_thread(monkeypatch):
    from gpuvec._core import dispatch, threads

    monkeypatch.setenv("GPUVEC_NUM_THREADS", "2")
    for what, below in dispatch.SERIAL_BELOW.items():
        assert threads.threads_for(what, below - 1) == 1
        assert threads.threads_for(what, below) == min(2, threads._usable_cores())


@pytest.mark.parametrize("bad", ["0", "-1", "abc", "2.5"])
def test_a_bad_thread_count_fails_every_public_call(monkeypatch, bad):
    """Not only the calls large enough to use threads: the smallest call of each algorithm says it."""
    monkeypatch.setenv("GPUVEC_NUM_THREADS", bad)
    rng = gpuvec.random.default_rng(0, backend="numpy")
    calls = [
        lambda: gpuvec.is_rotation(np.eye(3)),
        lambda: gpuvec.nearest_rotation(np.eye(3)),
        lambda: gpuvec.ray_max(np.ones((4, 4)), (1, 1)),
        lambda: rng.multivariate_normal([0.0, 0.0], np.eye(2)),
        lambda: rng.normal(np.zeros(2), 1.0),
        lambda: gpuvec.GaussianMixture(1).fit(np.random.default_rng(0).normal(size=(10, 2))),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=f"GPUVEC_NUM_THREADS must be a positive integer; got '{bad}'"):
            call()


def test_the_blas_controller_is_kept_until_a_module_is_imported(monkeypatch):
    """The limiter keeps threadpoolctl's controller (2 ms to make with scipy and numba loaded, paid by every
    dask task before) and makes a new one once anything was imported since (BLAS comes with imports)."""
    import sys

    threadpoolctl = pytest.importorskip("threadpoolctl")
    monkeypatch.setattr(_threads, "_controller", None)
    first = _threads._blas_controller(threadpoolctl)
    assert _threads._blas_controller(threadpoolctl) is first
    monkeypatch.setitem(sys.modules, "gpuvec_test_new_module", object())  # as an import would
    second = _threads._blas_controller(threadpoolctl)
    assert second is not first
    assert _threads._blas_controller(threadpoolctl) is second
