"""gpuvec._core.linalg: the triangular inverse behind every precision Cholesky factor."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import solve_triangular

from gpuvec._core.linalg import upper_inverse_transpose


def _factors(rng, n, d):
    A = rng.normal(size=(n, d, d))
    return np.linalg.cholesky(A @ np.swapaxes(A, 1, 2) + d * np.eye(d))


@pytest.mark.parametrize("d", [1, 2, 31, 32, 64, 65, 100, 257])
def test_upper_inverse_transpose_is_sklearns_triangular_solve(d):
    rng = np.random.default_rng(d)
    L = _factors(rng, 3, d)
    got = upper_inverse_transpose(np, L)
    want = np.stack([solve_triangular(Li, np.eye(d), lower=True).T for Li in L])  # sklearn's formula
    assert got.shape == L.shape
    np.testing.assert_array_equal(np.tril(got, -1), 0.0)  # upper triangular, exactly
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-14 * np.abs(want).max())


def test_upper_inverse_transpose_of_a_singular_factor_is_nan_and_the_others_exact():
    rng = np.random.default_rng(5)
    L = _factors(rng, 3, 80)
    L[1, 40, 40] = 0.0  # a zero pivot: no inverse
    got = upper_inverse_transpose(np, L)
    assert np.isnan(got[1]).all()
    for i in (0, 2):
        want = solve_triangular(L[i], np.eye(80), lower=True).T
        np.testing.assert_allclose(got[i], want, rtol=0, atol=1e-14 * np.abs(want).max())


def test_upper_inverse_transpose_keeps_batch_axes():
    rng = np.random.default_rng(6)
    L = _factors(rng, 6, 40).reshape(2, 3, 40, 40)
    got = upper_inverse_transpose(np, L)
    np.testing.assert_allclose(np.matmul(np.swapaxes(got, -1, -2), L), np.broadcast_to(np.eye(40), L.shape), atol=1e-13)


def test_upper_inverse_transpose_keeps_a_triangular_solves_accuracy_whatever_the_row_scales():
    """Rows of very different scales (features of different units): no row exchange, no lost digits."""
    rng = np.random.default_rng(7)
    for d in (8, 40, 100):
        L = np.tril(rng.normal(size=(d, d)), -1) * np.logspace(-3, 3, d)[:, None]
        L[np.diag_indices(d)] = np.logspace(-4, 4, d)
        got = upper_inverse_transpose(np, L[None])[0]
        want = solve_triangular(L, np.eye(d), lower=True).T
        scale = np.abs(want).max(axis=0)  # column by column: the entries of each column share a scale
        np.testing.assert_allclose(got / scale, want / scale, rtol=0, atol=1e-13)


@pytest.mark.parametrize("d", [5, 80])
def test_upper_inverse_transpose_of_a_scaled_singular_factor_is_nan(d):
    rng = np.random.default_rng(8)
    L = _factors(rng, 2, d) * np.logspace(-3, 3, d)[:, None]
    L[0, d // 2, d // 2] = 0.0
    got = upper_inverse_transpose(np, L)
    assert np.isnan(got[0]).all()
    want = solve_triangular(L[1], np.eye(d), lower=True).T
    np.testing.assert_allclose(got[1], want, rtol=0, atol=1e-13 * np.abs(want).max())
