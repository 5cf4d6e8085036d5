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


# --------------------------------------------------------------------------- dask (the tests/*/test_dask.py files)


def assert_same(a, b):
    """Same dtype, shape and values, NaN where NaN (a dask result against the in-memory call's)."""
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    assert np.array_equal(a, b, equal_nan=True), np.argwhere(a != b)[:5]


def compute_sync(*arrays):
    """``dask.compute`` on the synchronous scheduler."""
    import dask

    return dask.compute(*arrays, scheduler="synchronous")


def exploding_dask_array(shape, chunks):
    """A dask array whose every block raises when computed: proves that nothing computes it."""
    import dask.array as da

    def boom(block):
        raise AssertionError("a dask array was computed")

    return da.zeros(shape, chunks=chunks).map_blocks(boom, dtype=float)


def uniform_image(shape, dtype, seed=0, nan=False):
    """Uniform values in [0, 1) (in [0, 200) for integer dtypes), a NaN a third of the way in if ``nan``."""
    rng = np.random.default_rng(seed)
    img = rng.random(shape) * (200 if np.dtype(dtype).kind in "iu" else 1)
    img = img.astype(dtype)
    if nan:
        img[tuple(n // 3 for n in shape)] = np.nan
    return img


def rotation_stack(shape, dtype=np.float64, seed=0):
    """Rotations of shape ``shape + (3, 3)``, the first one scaled by 1.001 (no longer a rotation)."""
    import gpuvec

    rng = np.random.default_rng(seed)
    R = gpuvec.nearest_rotation(rng.normal(size=shape + (3, 3)))
    R[(0,) * len(shape)] *= 1.001
    return R.astype(dtype)
