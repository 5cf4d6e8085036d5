"""The rotations' implementation matrix: the CUDA kernel and the numba loop against the namespace reference.

gpuvec/rotations/_dispatch.py chooses (``residual_chunks``, ``nearest``); the checks have no numba loop.

- numpy x ``_xp`` (closed forms for 2x2 and 3x3 on rows of entries, chunk by chunk; matmul and det
  beyond): every test of test_rotations.py taking the ``xp`` fixture, on numpy; the chunks:
  test_chunked_cpu_path_covers_partial_chunks.
- cupy x ``_cuda`` (3x3 stacks, one fused kernel; GPUVEC_JIT unset or on): the ``xp=cupy`` cell of those
  tests for 3x3 matrices; test_kernel_matches_xp_reference (against ``_xp.closed_form_3x3`` on numpy).
- cupy x ``_xp`` (any other n, and 3x3 with GPUVEC_JIT=0): the ``xp=cupy`` cell for n != 3;
  test_3x3_reference_path_on_cupy_agrees_with_the_kernel.
- nearest_rotation, numpy x ``_numba`` (3x3; Newton's polar iteration, the SVD for det <= 0) against
  numpy x ``_xp`` (the batched SVD): test_numba_nearest_rotation_equals_the_svd_to_rounding; the choice:
  test_nearest_rotation_dispatch.
- dask: every block runs the in-memory choice; tests/rotations/test_dask.py.

The cupy cells skip without a GPU (GPUVEC_REQUIRE_GPU=1 makes that a failure).
"""

from __future__ import annotations

import numpy as np
import pytest

import gpuvec
from tests.helpers import to_np


def test_kernel_matches_xp_reference(cp):
    from gpuvec.rotations import _cuda, _xp

    M = np.random.default_rng(0).normal(size=(1000, 3, 3))
    M[5, 1, 1] = np.nan
    err, det = _cuda.residuals_3x3(cp.asarray(M), np.float64)
    ref_err, ref_det = _xp.closed_form_3x3(np, M)
    np.testing.assert_allclose(to_np(err), ref_err, rtol=1e-13, equal_nan=True)
    np.testing.assert_allclose(to_np(det), ref_det, rtol=1e-12)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_3x3_small_and_large_stack_formulations_are_bit_identical(dtype, monkeypatch):
    from gpuvec.rotations import _xp

    rng = np.random.default_rng(3)
    M = np.concatenate([rng.normal(size=(300, 3, 3)), rng.normal(size=(100, 3, 3)) * 1e150]).astype(dtype)
    M[[4, 9, 17]] = [np.nan, np.inf, -np.inf]
    M[20, 2, 1] = np.nan
    small = _xp.closed_form_3x3(np, M)
    monkeypatch.setattr(_xp, "SMALL_3X3", 0)
    large = _xp.closed_form_3x3(np, M)
    for a, b in zip(small, large):
        np.testing.assert_array_equal(a, b)


def test_3x3_reference_path_on_cupy_agrees_with_the_kernel(cp, monkeypatch):
    import gpuvec

    M = cp.asarray(np.random.default_rng(1).normal(size=(5000, 3, 3)))
    monkeypatch.setenv("GPUVEC_JIT", "0")
    ref = gpuvec.rotation_residuals(M)
    monkeypatch.setenv("GPUVEC_JIT", "1")
    got = gpuvec.rotation_residuals(M)
    np.testing.assert_allclose(to_np(got.orthogonality), to_np(ref.orthogonality), rtol=1e-13)
    np.testing.assert_allclose(to_np(got.det), to_np(ref.det), rtol=1e-12)


# --------------------------------------------------------------------------- nearest_rotation: Newton vs SVD


def _stack(rng, count):
    from scipy.spatial.transform import Rotation

    R = Rotation.random(count, random_state=rng.integers(1 << 31)).as_matrix()
    near = R + 0.05 * rng.normal(size=R.shape)
    wild = rng.normal(size=(count, 3, 3))  # half with det < 0: a reflection to undo
    U, _, Vt = np.linalg.svd(rng.normal(size=(count, 3, 3)))
    ill = U @ (np.array([1.0, 1e-3, 1e-9])[:, None] * Vt)  # nearly singular, det of either sign
    return np.concatenate([R, near, wild, ill])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_numba_nearest_rotation_equals_the_svd_to_rounding(monkeypatch, dtype):
    pytest.importorskip("numba")
    from gpuvec.rotations import _numba, _xp

    M = _stack(np.random.default_rng(8), 2000).astype(dtype)
    monkeypatch.setenv("GPUVEC_JIT", "1")
    got = gpuvec.nearest_rotation(M)
    want = _xp.nearest(np, M.copy())
    assert got.dtype == dtype and got.shape == M.shape
    tol = 1e-13 if dtype == np.float64 else 1e-5
    np.testing.assert_allclose(got, want, atol=tol)
    assert gpuvec.is_rotation(got).all()
    _, ok = _numba.nearest_3x3(M.astype(np.float64))
    det = np.linalg.det(M.astype(np.float64))
    assert ok[:4000].all() and (~ok[det <= 0]).all()  # rotations and near ones converge; reflections go to SVD


def test_nearest_rotation_dispatch(monkeypatch):
    import sys

    from gpuvec._core import dispatch
    from gpuvec.rotations import _dispatch

    calls = []
    monkeypatch.setattr(_dispatch._xp, "nearest", lambda xp, M: calls.append(M.shape) or np.zeros(M.shape))
    monkeypatch.delitem(sys.modules, "gpuvec.rotations._numba", raising=False)
    monkeypatch.delenv("GPUVEC_JIT", raising=False)
    small = np.eye(3)[None].repeat(10, 0)
    _dispatch.nearest(np, small)  # auto, small and numba not loaded: the SVD
    assert calls == [(10, 3, 3)]
    monkeypatch.setenv("GPUVEC_JIT", "0")
    big = np.eye(3)[None].repeat(dispatch.NUMBA_PAYS_MATRICES, 0)
    _dispatch.nearest(np, big)
    assert calls[-1] == big.shape
    monkeypatch.setenv("GPUVEC_JIT", "1")
    np.testing.assert_allclose(_dispatch.nearest(np, small), small)  # Newton: a rotation is its own polar factor
    assert len(calls) == 2
