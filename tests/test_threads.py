"""gpuvec._core.threads: the thread rule and the span runner shared by every CPU loop."""

from __future__ import annotations

import threading

import pytest

from gpuvec._core import threads as _threads


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
