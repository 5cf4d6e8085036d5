"""The rotation checks' implementation matrix: the CUDA kernel against the namespace reference.

gpuvec/rotations/_dispatch.py (``residual_chunks``) chooses; there is no numba loop for the rotation checks.

- numpy x ``_xp`` (closed forms for 2x2 and 3x3 on rows of entries, chunk by chunk; matmul and det
  beyond): every test of test_rotations.py taking the ``xp`` fixture, on numpy; the chunks:
  test_chunked_cpu_path_covers_partial_chunks.
- cupy x ``_cuda`` (3x3 stacks, one fused kernel; GPUVEC_JIT unset or on): the ``xp=cupy`` cell of those
  tests for 3x3 matrices; test_kernel_matches_xp_reference (against ``_xp.closed_form_3x3`` on numpy).
- cupy x ``_xp`` (any other n, and 3x3 with GPUVEC_JIT=0): the ``xp=cupy`` cell for n != 3;
  test_3x3_reference_path_on_cupy_agrees_with_the_kernel.
- dask: every block runs the in-memory choice; tests/rotations/test_dask.py.

The cupy cells skip without a GPU (GPUVEC_REQUIRE_GPU=1 makes that a failure).
"""

from __future__ import annotations

import numpy as np

from tests.helpers import to_np


def test_kernel_matches_xp_reference(cp):
    from gpuvec.rotations import _cuda, _xp

    M = np.random.default_rng(0).normal(size=(1000, 3, 3))
    M[5, 1, 1] = np.nan
    err, det = _cuda.residuals_3x3(cp.asarray(M), np.float64)
    ref_err, ref_det = _xp.closed_form_3x3(np, M)
    np.testing.assert_allclose(to_np(err), ref_err, rtol=1e-13, equal_nan=True)
    np.testing.assert_allclose(to_np(det), ref_det, rtol=1e-12)


def test_3x3_reference_path_on_cupy_agrees_with_the_kernel(cp, monkeypatch):
    import gpuvec

    M = cp.asarray(np.random.default_rng(1).normal(size=(5000, 3, 3)))
    monkeypatch.setenv("GPUVEC_JIT", "0")
    ref = gpuvec.rotation_residuals(M)
    monkeypatch.setenv("GPUVEC_JIT", "1")
    got = gpuvec.rotation_residuals(M)
    np.testing.assert_allclose(to_np(got.orthogonality), to_np(ref.orthogonality), rtol=1e-13)
    np.testing.assert_allclose(to_np(got.det), to_np(ref.det), rtol=1e-12)
