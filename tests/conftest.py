"""Fixtures: ``xp`` (every algorithm test runs on numpy, and on cupy where a GPU answers), ``impl`` and ``sync``.

``GPUVEC_REQUIRE_GPU=1`` makes a missing GPU a failure instead of a skip.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from gpuvec._core import backend

REQUIRE_GPU = backend._require_gpu()


def _cupy_or_skip():
    if os.environ.get("GPUVEC_BACKEND", "").strip().lower() == "numpy":
        pytest.skip("GPUVEC_BACKEND=numpy: cupy is not to be imported")
    probe = backend._probe_cupy()
    if not probe.usable:
        if REQUIRE_GPU:
            pytest.fail(f"GPUVEC_REQUIRE_GPU=1 but {probe.reason}")
        pytest.skip(probe.reason)
    import cupy

    return cupy


@pytest.fixture(params=["numpy", "cupy"])
def xp(request):
    """numpy, or cupy where a CUDA device answers."""
    if request.param == "numpy":
        return np
    return _cupy_or_skip()


@pytest.fixture
def cp():
    """cupy only (skips without a GPU, fails with GPUVEC_REQUIRE_GPU=1)."""
    return _cupy_or_skip()


@pytest.fixture(params=["compiled", "reference"])
def impl(request):
    """Which implementation runs: the compiled one (numba on numpy data, CUDA on cupy data; skipped
    where numba is missing on the CPU) or the namespace reference (GPUVEC_JIT=0)."""
    import importlib.util

    from tests.helpers import compiled_paths

    if request.param == "compiled" and importlib.util.find_spec("numba") is None:
        pytest.skip("numba is not installed: only the reference implementation runs on the CPU")
    params = getattr(request.node, "callspec", None)
    if request.param == "reference" and params is not None and params.params.get("xp") == "cupy":
        pytest.skip(
            "the GPU reference is cupyx's map_coordinates, not bit-identical to scipy; "
            "test_gpu_kernel_agrees_with_the_cupyx_reference compares it with the kernel"
        )
    with compiled_paths(request.param == "compiled"):
        yield request.param


@pytest.fixture
def sync():
    """dask's synchronous scheduler for the test (deterministic), for every tests/*/test_dask.py."""
    dask = pytest.importorskip("dask")
    with dask.config.set(scheduler="synchronous"):
        yield


def _edge_chunks(n: int, kind: str) -> tuple[int, ...]:
    if kind == "zero-size":  # what compute_chunk_sizes() gives after a boolean mask emptied some chunks
        return (0, n // 2, 0, n - n // 2, 0) if n > 1 else (0, n, 0)
    if kind == "one-row":
        return (1, n - 1) if n > 1 else (n,)
    return (n,)  # "whole"


@pytest.fixture(params=["zero-size", "one-row", "from-mask"])
def edge_chunked(request):
    """``edge_chunked(x, axes=(0,))``: ``x`` as a dask array whose chunks along ``axes`` are one of the
    edge cases dask users meet: empty chunks (``compute_chunk_sizes()`` after boolean indexing), a
    one-row chunk, or the real thing (``x[mask].compute_chunk_sizes()`` with a mask that empties
    some chunks, along the first axis). Every dask test can take it to compare with the in-memory call."""
    da = pytest.importorskip("dask.array")

    def chunked(x, axes=(0,)):
        x = np.asarray(x)
        if request.param == "from-mask":  # along axis 0: 4 rows masked out, their chunk left empty
            n = x.shape[0]
            padded = np.concatenate([x[: n // 2], np.full((4, *x.shape[1:]), -1, x.dtype), x[n // 2 :]])
            keep = np.ones(n + 4, bool)
            keep[n // 2 : n // 2 + 4] = False
            chunks = (n // 2, 4, n - n // 2)
            d = da.from_array(padded, chunks=(chunks, *x.shape[1:]))
            out = d[da.from_array(keep, chunks=(chunks,))].compute_chunk_sizes()
            assert 0 in out.chunks[0]
            return out
        chunks = [_edge_chunks(n, request.param) if a in axes else (n,) for a, n in enumerate(x.shape)]
        return da.from_array(x, chunks=tuple(chunks))

    chunked.kind = request.param
    return chunked
