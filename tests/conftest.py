"""The ``xp`` fixture: every algorithm test runs on numpy, and on cupy where a GPU answers.

``GPUVEC_REQUIRE_GPU=1`` makes a missing GPU a failure instead of a skip.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from gpuvec import _backend

REQUIRE_GPU = os.environ.get("GPUVEC_REQUIRE_GPU", "").strip().lower() in {"1", "true", "yes"}


def _cupy_or_skip():
    if os.environ.get("GPUVEC_BACKEND", "").strip().lower() == "numpy":
        pytest.skip("GPUVEC_BACKEND=numpy: cupy is not to be imported")
    probe = _backend._probe_cupy()
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


def to_np(a):
    """Host copy of an array of either backend (tests only)."""
    return a.get() if type(a).__module__.startswith("cupy") else np.asarray(a)


def assert_namespace(a, xp, dtype=None, shape=None):
    """The result lives in xp (no silent numpy fallback), with the expected dtype and shape."""
    assert type(a).__module__.split(".")[0] == xp.__name__, f"result is {type(a)}, expected an {xp.__name__} array"
    if dtype is not None:
        assert a.dtype == np.dtype(dtype), f"dtype {a.dtype}, expected {np.dtype(dtype)}"
    if shape is not None:
        assert a.shape == tuple(shape), f"shape {a.shape}, expected {tuple(shape)}"
