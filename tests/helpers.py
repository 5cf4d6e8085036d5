"""Assertions and data makers shared by the tests (plain functions; fixtures live in conftest.py)."""

from __future__ import annotations

import contextlib
import os

import numpy as np


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


def assert_identical(got, want):
    """Bit-identical values (NaN where NaN, same sign of zero) and dtype."""
    got, want = to_np(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, got.shape, want.shape)
    if got.dtype.kind == "f":
        assert np.array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        assert np.array_equal(got[ok].view(np.uint8), want[ok].view(np.uint8)), np.argwhere(got != want)[:5]
    else:
        assert np.array_equal(got, want), np.argwhere(got != want)[:5]


def random_image(rng, shape, dtype):
    """Random values of ``dtype``: normal * 50 for floats, integers within +-10000 of the dtype's range."""
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (rng.normal(size=shape) * 50).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -10_000), min(info.max, 10_000)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


@contextlib.contextmanager
def compiled_paths(on: bool):
    """Run a block with gpuvec's compiled implementations (numba, CUDA) on or off (GPUVEC_JIT)."""
    old = os.environ.get("GPUVEC_JIT")
    os.environ["GPUVEC_JIT"] = "1" if on else "0"
    try:
        yield
    finally:
        if old is None:
            del os.environ["GPUVEC_JIT"]
        else:
            os.environ["GPUVEC_JIT"] = old
