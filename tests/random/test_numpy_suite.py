"""numpy's own tests for normal and multivariate_normal, in the style of
numpy/random/tests/test_generator_mt19937.py, run against gpuvec.random.

Where numpy's test pins numbers for its seed, numpy's Generator (same seed,
same arguments) is the reference here; where gpuvec documents a difference
(the 'cholesky' default, batches), the test says so.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from scipy import stats

import gpuvec
from tests.helpers import assert_namespace, to_np

METHODS = ["svd", "eigh", "cholesky", None]  # None: gpuvec's default (Cholesky where it factors, else eigh)


def gv(xp, seed=1234567890):
    return gpuvec.random.default_rng(seed, backend=xp.__name__)


# --------------------------------------------------------------------------- normal


@pytest.mark.parametrize("size", [None, 0, 3, (0,), (2, 3), (2, 0, 3)])
def test_normal_shapes(xp, size):
    x = gv(xp).normal(0.5, 2.0, size=size)
    expected = () if size is None else (size,) if isinstance(size, int) else size
    assert_namespace(x, xp, np.float64, expected)


def test_normal_matches_numpy_bitwise_for_the_seed():
    # numpy's test_normal: loc .123456789, scale 2.0, size (3, 2)
    ours = gpuvec.random.default_rng(1234567890, backend="numpy").normal(loc=0.123456789, scale=2.0, size=(3, 2))
    theirs = np.random.default_rng(1234567890).normal(loc=0.123456789, scale=2.0, size=(3, 2))
    assert_array_equal(ours, theirs)


@pytest.mark.parametrize(
    ("loc", "scale", "size"),
    [
        ([0.0], [1.0], None),
        ([0.0] * 3, [1.0], None),
        ([0.0], [1.0] * 3, None),
        (np.zeros((4, 1)), np.arange(1.0, 4.0), None),
        (np.zeros(3), 1.0, (5, 3)),
        (0.0, np.ones((2, 1, 3)), (4, 2, 5, 3)),
    ],
)
def test_normal_broadcast_matches_numpy(loc, scale, size):
    ours = gpuvec.random.default_rng(3, backend="numpy").normal(loc, scale, size=size)
    theirs = np.random.default_rng(3).normal(loc, scale, size=size)
    assert ours.shape == theirs.shape
    assert_array_equal(ours, theirs)


def test_normal_broadcast_bad_scale(xp):
    # numpy's test_normal in TestBroadcast: a negative scale anywhere is a ValueError
    loc, scale, bad_scale = [0.0], [1.0], [-1.0]
    assert gv(xp).normal(xp.asarray(loc * 3), xp.asarray(scale)).shape == (3,)
    with pytest.raises(ValueError):
        gv(xp).normal(xp.asarray(loc * 3), xp.asarray(bad_scale))
    assert gv(xp).normal(xp.asarray(loc), xp.asarray(scale * 3)).shape == (3,)
    with pytest.raises(ValueError):
        gv(xp).normal(xp.asarray(loc), xp.asarray(bad_scale * 3))


def test_normal_scale_zero_gives_loc_exactly(xp):
    loc = xp.asarray([[-3.5, 0.0, 1e300], [2.0, -0.0, 7.25]])
    x = gv(xp).normal(loc, 0.0, size=(4, 2, 3))
    assert_array_equal(to_np(x), np.broadcast_to(to_np(loc), (4, 2, 3)))
    assert_array_equal(to_np(gv(xp).normal(5.0, xp.zeros(3))), [5.0, 5.0, 5.0])


def test_normal_0d_inputs(xp):
    x = gv(xp).normal(xp.asarray(1.0), xp.asarray(2.0))
    assert_namespace(x, xp, np.float64, ())


def test_normal_seeded_reproducibility(xp):
    assert_array_equal(to_np(gv(xp, 7).normal(size=100)), to_np(gv(xp, 7).normal(size=100)))
    assert not np.array_equal(to_np(gv(xp, 7).normal(size=100)), to_np(gv(xp, 8).normal(size=100)))


def test_normal_distribution(xp):
    x = to_np(gv(xp, 11).normal(3.0, 0.5, size=200000))
    assert stats.kstest(x, "norm", args=(3.0, 0.5)).pvalue > 1e-4


# --------------------------------------------------------------------------- multivariate_normal


@pytest.mark.parametrize("method", METHODS)
def test_multivariate_normal_matches_numpy_for_the_seed(method):
    # numpy's test_multivariate_normal: mean (.123456789, 10), cov eye(2), size (3, 2)
    mean, cov, size = (0.123456789, 10), [[1, 0], [0, 1]], (3, 2)
    ours = gpuvec.random.default_rng(1234567890, backend="numpy").multivariate_normal(mean, cov, size, method=method)
    theirs = np.random.default_rng(1234567890).multivariate_normal(mean, cov, size, method=method or "cholesky")
    assert ours.shape == theirs.shape == (3, 2, 2)
    assert_allclose(ours, theirs, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("method", METHODS)
def test_multivariate_normal_matches_numpy_general_cov(method):
    A = np.random.default_rng(0).standard_normal((4, 4))
    cov, mean = A @ A.T + 0.1 * np.eye(4), np.arange(4.0)
    ours = gpuvec.random.default_rng(5, backend="numpy").multivariate_normal(mean, cov, size=(10, 3), method=method)
    theirs = np.random.default_rng(5).multivariate_normal(mean, cov, size=(10, 3), method=method or "cholesky")
    assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("size", [None, 1, 5, (2,), (2, 3), (0,)])
@pytest.mark.parametrize("method", METHODS)
def test_multivariate_normal_shapes(xp, size, method):
    x = gv(xp).multivariate_normal(xp.zeros(3), xp.eye(3), size=size, method=method)
    expected = (() if size is None else (size,) if isinstance(size, int) else size) + (3,)
    assert_namespace(x, xp, np.float64, expected)


@pytest.mark.parametrize("method", METHODS)
def test_multivariate_normal_batch_shapes(xp, method):
    # gpuvec's extension: leading axes of mean and cov broadcast into a batch
    x = gv(xp).multivariate_normal(xp.zeros((4, 1, 2)), xp.broadcast_to(xp.eye(2), (3, 2, 2)), size=5, method=method)
    assert_namespace(x, xp, np.float64, (5, 4, 3, 2))


@pytest.mark.parametrize("method", METHODS)
def test_multivariate_normal_non_psd_warns(xp, method):
    # numpy: "Check that non positive-semidefinite covariance warns with RuntimeWarning".
    # numpy's 'cholesky' raises LinAlgError here instead, and so does gpuvec's; the default falls back to eigh.
    mean, cov = xp.asarray([0.0, 0.0]), xp.asarray([[1.0, 2.0], [2.0, 1.0]])
    if method == "cholesky":
        with pytest.raises(np.linalg.LinAlgError):
            np.random.default_rng(0).multivariate_normal([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]], method=method)
        for check_valid in ("warn", "ignore", "raise"):
            with pytest.raises(np.linalg.LinAlgError):
                gv(xp).multivariate_normal(mean, cov, check_valid=check_valid, method=method)
        return
    with pytest.warns(RuntimeWarning, match="covariance is not symmetric positive-semidefinite"):
        gv(xp).multivariate_normal(mean, cov, method=method)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # and that it doesn't warn with check_valid='ignore'
        gv(xp).multivariate_normal(mean, cov, check_valid="ignore", method=method)
    with pytest.raises(ValueError):  # and that it raises with check_valid='raise'
        gv(xp).multivariate_normal(mean, cov, check_valid="raise", method=method)


def test_multivariate_normal_float32_cov_does_not_warn(xp):
    # numpy's GH10839: a float32 covariance is checked in float64
    cov = xp.asarray([[1, 0.1], [0.1, 1]], dtype=xp.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for method in METHODS:
            gv(xp).multivariate_normal(xp.zeros(2), cov, method=method)


def test_multivariate_normal_bad_arguments(xp):
    mu, cov = xp.zeros(2), xp.eye(2)
    with pytest.raises(ValueError):
        gv(xp).multivariate_normal(mu, cov, check_valid="other")
    with pytest.raises(ValueError):
        gv(xp).multivariate_normal(xp.zeros((2, 1, 1)), cov)
    with pytest.raises(ValueError):
        gv(xp).multivariate_normal(mu, xp.empty((3, 2)))
    with pytest.raises(ValueError):
        gv(xp).multivariate_normal(mu, xp.eye(3))
    with pytest.raises(ValueError):
        gv(xp).multivariate_normal(mu, cov, method="other")


@pytest.mark.parametrize("method", METHODS)
def test_multivariate_normal_basic_stats(xp, method):
    # numpy's test_multivariate_normal_basic_stats
    n_s = 1000
    mean, cov = np.array([1.0, 2.0]), np.array([[2.0, 1.0], [1.0, 2.0]])
    s = to_np(gv(xp).multivariate_normal(xp.asarray(mean), xp.asarray(cov), size=(n_s,), method=method))
    s_center = s - mean
    cov_emp = (s_center.T @ s_center) / (n_s - 1)
    assert np.all(np.abs(s_center.mean(-2)) < 0.1)
    assert np.all(np.abs(cov_emp - cov) < 0.2)


def test_multivariate_normal_methods_agree_in_distribution(xp):
    # same mean and covariance, different factors: the projections on every axis have the same law
    A = np.random.default_rng(2).standard_normal((3, 3))
    cov, mean = A @ A.T + 0.5 * np.eye(3), np.array([1.0, -2.0, 0.5])
    draws = {
        m: to_np(gv(xp, 20 + i).multivariate_normal(xp.asarray(mean), xp.asarray(cov), size=20000, method=m))
        for i, m in enumerate(METHODS)
    }
    for a in METHODS:
        for b in METHODS:
            if str(a) < str(b):
                for axis in range(3):
                    assert stats.ks_2samp(draws[a][:, axis], draws[b][:, axis]).pvalue > 1e-4
    L = np.linalg.cholesky(cov)
    for m in METHODS:  # whitened, each is standard normal
        z = np.linalg.solve(L, (draws[m] - mean).T).ravel()
        assert stats.kstest(z, "norm").pvalue > 1e-4


@pytest.mark.parametrize("method", METHODS)
def test_multivariate_normal_semidefinite(xp, method):
    # rank-deficient covariance: no warning, and the samples lie in its range (numpy's 'cholesky': LinAlgError)
    cov = xp.asarray([[1.0, 1.0], [1.0, 1.0]])
    if method == "cholesky":
        with pytest.raises(np.linalg.LinAlgError):
            gv(xp).multivariate_normal(xp.zeros(2), cov, method=method)
        return
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x = to_np(gv(xp).multivariate_normal(xp.zeros(2), cov, size=2000, method=method))
    assert_allclose(x[:, 0], x[:, 1], atol=1e-6)
    assert 0.9 < x[:, 0].std() < 1.1


@pytest.mark.parametrize("method", METHODS)
def test_multivariate_normal_seeded_reproducibility(xp, method):
    args = (xp.zeros((2, 3)), xp.asarray(np.diag([1.0, 2.0, 3.0])))
    a = to_np(gv(xp, 3).multivariate_normal(*args, size=50, method=method))
    b = to_np(gv(xp, 3).multivariate_normal(*args, size=50, method=method))
    c = to_np(gv(xp, 4).multivariate_normal(*args, size=50, method=method))
    assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_multivariate_normal_zero_covariance_gives_mean(xp):
    mean = xp.asarray([1.5, -2.0, 0.0])
    x = gv(xp).multivariate_normal(mean, xp.zeros((3, 3)), size=4)
    assert_array_equal(to_np(x), np.broadcast_to(to_np(mean), (4, 3)))
