"""gpuvec._threads: the thread rule and the span runner shared by every CPU loop."""

from __future__ import annotations

import threading

import pytest

from gpuvec import _threads


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
    ran = []

    def fn(lo, hi):
        ran.append(lo)
        if lo == 5:
            raise ValueError("span 5")

    with pytest.raises(ValueError, match="span 5"):
        _threads.run_parallel(fn, [(i, i + 1) for i in range(12)], 3)
    assert sorted(ran) == list(range(12))  # the other spans still ran: no half-written outputs left behind
