"""gpuvec.random: seeded generators, batched normal and multivariate normal."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import gpuvec
from tests.helpers import assert_namespace, to_np


def backend_of(xp):
    return xp.__name__


def test_same_seed_same_numbers(xp):
    a = gpuvec.random.default_rng(42, backend=backend_of(xp)).normal(1.0, 2.0, size=(100, 3))
    b = gpuvec.random.default_rng(42, backend=backend_of(xp)).normal(1.0, 2.0, size=(100, 3))
    assert_namespace(a, xp, np.float64, (100, 3))
    assert np.array_equal(to_np(a), to_np(b))
    c = gpuvec.random.default_rng(43, backend=backend_of(xp)).normal(1.0, 2.0, size=(100, 3))
    assert not np.array_equal(to_np(a), to_np(c))


def test_normal_is_bitwise_numpys_generator_normal():
    means = np.random.default_rng(1).random((50, 3))
    stds = np.random.default_rng(2).random((50, 3))
    ours = gpuvec.random.default_rng(7, backend="numpy").normal(means, stds, size=(1000, 50, 3))
    theirs = np.random.default_rng(7).normal(means, stds, size=(1000, 50, 3))
    assert np.array_equal(ours, theirs)


def test_seed_question_shape_and_moments(xp):
    means = xp.asarray([[0.0, 0, 0], [1, 1, 1]])
    stds = xp.asarray([[1.0, 1, 1], [2, 2, 2]])
    x = gpuvec.random.default_rng(0, backend=backend_of(xp)).normal(means, stds, size=(20000, 2, 3))
    assert_namespace(x, xp, np.float64, (20000, 2, 3))
    x = to_np(x)
    np.testing.assert_allclose(x.mean(0), to_np(means), atol=0.05)
    np.testing.assert_allclose(x.std(0), to_np(stds), rtol=0.03)
    z = ((x - to_np(means)) / to_np(stds)).ravel()
    assert stats.kstest(z, "norm").statistic < 0.01


def test_normal_broadcast_shape_without_size(xp):
    x = gpuvec.random.default_rng(0, backend=backend_of(xp)).normal(xp.zeros((4, 1)), xp.ones(3))
    assert_namespace(x, xp, np.float64, (4, 3))


def test_normal_float32_and_out(xp):
    rng = gpuvec.random.default_rng(0, backend=backend_of(xp))
    out = xp.empty((10, 2), dtype=xp.float32)
    x = rng.normal(xp.zeros(2, dtype=xp.float32), 1.0, dtype=np.float32, out=out)
    assert x is out and x.dtype == np.float32


def test_negative_scale_is_value_error(xp):
    rng = gpuvec.random.default_rng(0, backend=backend_of(xp))
    with pytest.raises(ValueError, match="scale must be non-negative"):
        rng.normal(0.0, xp.asarray([1.0, -1.0]))


def test_size_must_broadcast():
    with pytest.raises(ValueError, match=r"size \(5, 2\) does not broadcast"):
        gpuvec.random.default_rng(0, backend="numpy").normal(np.zeros(3), 1.0, size=(5, 2))


def test_wrong_device_is_type_error(cp):
    rng = gpuvec.random.default_rng(0, backend="numpy")
    with pytest.raises(TypeError, match="loc is a cupy"):
        rng.normal(cp.zeros(3), 1.0)
    with pytest.raises(TypeError, match="generator is on cupy"):
        gpuvec.random.default_rng(0, backend="cupy").normal(np.zeros(3), 1.0)


def test_seed_forms():
    ss = np.random.SeedSequence(5)
    a = gpuvec.random.default_rng(ss, backend="numpy").random(3)
    assert np.array_equal(a, np.random.default_rng(np.random.SeedSequence(5)).random(3))
    g = gpuvec.random.default_rng(1, backend="numpy")
    assert gpuvec.random.default_rng(g) is g
    with pytest.raises(ValueError, match="backend must be"):
        gpuvec.random.default_rng(1, backend="tpu")


def test_integers_and_random(xp):
    rng = gpuvec.random.default_rng(3, backend=backend_of(xp))
    i = rng.integers(0, 10, size=1000)
    assert_namespace(i, xp, np.int64, (1000,))
    assert 0 <= int(i.min()) and int(i.max()) <= 9
    u = to_np(rng.random(5000))
    assert stats.kstest(u, "uniform").statistic < 0.03


def test_multivariate_normal_batched_moments(xp):
    rng = gpuvec.random.default_rng(0, backend=backend_of(xp))
    mean = xp.asarray([[0.0, 0.0], [5.0, 5.0]])
    cov = xp.asarray([np.eye(2), [[2.0, 0.5], [0.5, 1.0]]])
    x = rng.multivariate_normal(mean, cov, size=200000)
    assert_namespace(x, xp, np.float64, (200000, 2, 2))
    x = to_np(x)
    np.testing.assert_allclose(x.mean(0), to_np(mean), atol=0.02)
    np.testing.assert_allclose(np.cov(x[:, 1].T), to_np(cov)[1], atol=0.03)
    # whitened samples are standard normal
    L = np.linalg.cholesky(to_np(cov)[1])
    z = np.linalg.solve(L, (x[:, 1] - 5.0).T).ravel()
    assert stats.kstest(z, "norm").statistic < 0.01


def test_multivariate_normal_semidefinite_uses_eigh(xp):
    x = gpuvec.random.default_rng(0, backend=backend_of(xp)).multivariate_normal(
        xp.zeros(2), xp.asarray([[1.0, 1.0], [1.0, 1.0]]), size=1000
    )
    x = to_np(x)
    np.testing.assert_allclose(x[:, 0], x[:, 1], atol=1e-7)
    assert 0.9 < x[:, 0].std() < 1.1


def test_multivariate_normal_bad_cov_names_batch_index():
    rng = gpuvec.random.default_rng(0, backend="numpy")
    with pytest.raises(ValueError, match=r"cov\[1\] has a negative eigenvalue"):
        rng.multivariate_normal(np.zeros((2, 2)), [np.eye(2), [[1.0, 2.0], [2.0, 1.0]]], check_valid="raise")
    with pytest.raises(ValueError, match=r"cov is not symmetric within tol"):
        rng.multivariate_normal(np.zeros(2), [[1.0, 0.5], [0.0, 1.0]], check_valid="raise")
    with pytest.raises(ValueError, match="cov must have shape"):
        rng.multivariate_normal(np.zeros(3), np.eye(2))
