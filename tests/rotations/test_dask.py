"""The rotation checks on dask arrays: equal to the in-memory calls, lazily, bad stacks refused.

Exactness runs on the synchronous scheduler (the ``sync`` fixture of tests/conftest.py). The end-to-end
runs on real clusters are in tests/core/test_dask.py.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpuvec
from tests.helpers import assert_same as _same
from tests.helpers import compute_sync as _compute
from tests.helpers import rotation_stack as _stack

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_rotation_checks_equal_in_memory(sync, dtype):
    R = _stack((10, 7), dtype)
    x = da.from_array(R, chunks=(3, (4, 3), 2, 3))  # a split matrix axis is rechunked
    _same(gpuvec.is_rotation(R), gpuvec.is_rotation(x).compute())
    _same(gpuvec.is_rotation(R, proper=False, atol=1e-3), gpuvec.is_rotation(x, proper=False, atol=1e-3).compute())
    for w, g in zip(gpuvec.rotation_residuals(R), _compute(*gpuvec.rotation_residuals(x))):
        _same(w, g)
    _same(gpuvec.nearest_rotation(R), gpuvec.nearest_rotation(x).compute())
    assert isinstance(gpuvec.rotation_residuals(x), gpuvec.rotations.RotationResiduals)


def test_rotation_checks_single_matrix_and_integers(sync):
    x = da.from_array(np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]]), chunks=2)
    got = gpuvec.is_rotation(x)
    assert got.shape == () and bool(got.compute())
    assert gpuvec.rotation_residuals(x).det.compute() == 1.0


def test_rotation_checks_refuse_bad_stacks():
    with pytest.raises(ValueError, match="square matrices"):
        gpuvec.is_rotation(da.zeros((4, 3, 2)))
    with pytest.raises(TypeError, match="real dtype"):
        gpuvec.nearest_rotation(da.zeros((4, 3, 3), dtype=complex))
    with pytest.raises(ValueError, match="atol must be >= 0"):
        gpuvec.is_rotation(da.zeros((4, 3, 3)), atol=-1.0)


def test_nearest_rotation_nan_raises_when_computed(sync):
    M = np.eye(3)[None].repeat(4, 0)
    M[2, 0, 0] = np.nan
    lazy = gpuvec.nearest_rotation(da.from_array(M, chunks=(2, 3, 3)))
    with pytest.raises(ValueError, match="finite"):
        lazy.compute()


def test_nearest_rotation_blocks_make_the_whole_calls_choice(sync, monkeypatch):
    """Newton's iteration and the SVD agree only to rounding: every block takes the method the in-memory
    call of the whole stack takes (by its size), so the dask result is the in-memory one bit for bit."""
    pytest.importorskip("numba")
    from gpuvec._core import dispatch

    monkeypatch.delenv("GPUVEC_JIT", raising=False)
    count = dispatch.NUMBA_PAYS_MATRICES
    M = np.eye(3) + 0.05 * np.random.default_rng(3).normal(size=(count, 3, 3))
    lazy = gpuvec.nearest_rotation(da.from_array(M, chunks=(count // 4, 3, 3))).compute()
    _same(gpuvec.nearest_rotation(M), lazy)


def test_edge_chunks_equal_in_memory(sync, edge_chunked):
    R = _stack((11,))
    M = R + np.random.default_rng(0).normal(0, 1e-3, R.shape)
    _same(gpuvec.is_rotation(edge_chunked(R)).compute(), gpuvec.is_rotation(R))
    for got, want in zip(_compute(*gpuvec.rotation_residuals(edge_chunked(M))), gpuvec.rotation_residuals(M)):
        _same(got, want)
    nearest = gpuvec.nearest_rotation(edge_chunked(M)).compute()
    np.testing.assert_allclose(nearest, gpuvec.nearest_rotation(M), atol=1e-14)
