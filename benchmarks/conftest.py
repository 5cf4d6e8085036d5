"""Shared pieces of the benchmark grid: backends, device synchronisation, sizes.

Run with ``python -m pytest benchmarks``; ``GPUVEC_BENCH_QUICK=1`` shrinks every size (smoke runs).
Each case is benchmarked with a warm-up round (kernel compilation, allocator) and the GPU is
synchronised inside the timed call.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

import gpuvec
from gpuvec import _backend

QUICK = os.environ.get("GPUVEC_BENCH_QUICK", "") == "1"


def size(full, quick):
    return quick if QUICK else full


@pytest.fixture(params=["numpy", "cupy"])
def backend(request):
    if request.param == "cupy":
        if os.environ.get("GPUVEC_BACKEND", "").lower() == "numpy" or not _backend._probe_cupy().usable:
            pytest.skip("no usable CUDA device")
        import cupy

        return cupy
    return np


def run(benchmark, fn, *args, rounds=3, **kwargs):
    """Time fn(*args) with the device synchronised inside the timed call, after one warm-up."""

    def call():
        out = fn(*args, **kwargs)
        gpuvec.sync()
        return out

    return benchmark.pedantic(call, rounds=rounds, iterations=1, warmup_rounds=1)
