"""The benchmark grid of :mod:`gpuvec.tools.bench` under pytest-benchmark: one test per case.

The cases (sizes, methods, backends, and the setup of each) are defined once, in
gpuvec.tools.bench, which ``gpuvec bench`` runs too. Each timed call synchronises the
GPU and follows a warm-up call. ``GPUVEC_BENCH_ONLY=mixture-shapes`` (comma-separated
names, as ``gpuvec bench --only``) picks algorithms, the opt-in grids included.
"""

from __future__ import annotations

import os

import pytest

from gpuvec.tools import bench

_ONLY = [name for name in os.environ.get("GPUVEC_BENCH_ONLY", "").split(",") if name.strip()]
CASES = bench.cases(quick=os.environ.get("GPUVEC_BENCH_QUICK", "") == "1", algorithms=_ONLY or None)


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_case(benchmark, case):
    fn = bench.synced(case.make())
    benchmark.group = case.group
    benchmark.extra_info.update(method=case.method, backend=case.backend, reference=case.reference)
    result = benchmark.pedantic(fn, rounds=case.rounds, iterations=1, warmup_rounds=1)
    if isinstance(result, dict) and "peak_beyond_x_mib" in result:  # the mixture memory rows: a new process's peak RSS
        benchmark.extra_info.update(result)
    if case.items:
        benchmark.extra_info["items_per_s"] = case.items / benchmark.stats.stats.median
