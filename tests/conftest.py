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
