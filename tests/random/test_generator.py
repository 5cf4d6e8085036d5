"""gpuvec.random: seeded generators, batched normal and multivariate normal."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
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
    assert int(i.min()) >= 0 and int(i.max()) <= 9
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


# --------------------------------------------------------------------------- hardening (issue 13)


def rng_for(xp, seed=0):
    return gpuvec.random.default_rng(seed, backend=backend_of(xp))


def first_draw_is_fresh(xp, rng, seed=0):
    """A call that raised left the generator's state as it was."""
    return np.array_equal(to_np(rng.standard_normal(4)), to_np(rng_for(xp, seed).standard_normal(4)))


# -- out aliasing an input


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_normal_out_aliasing_loc_gives_unaliased_numbers(xp, dtype):
    x = xp.arange(12, dtype=dtype).reshape(3, 4)
    expected = rng_for(xp).normal(x.copy(), 1.0, dtype=dtype)
    got = rng_for(xp).normal(x, 1.0, dtype=dtype, out=x)
    assert got is x
    assert np.array_equal(to_np(got), to_np(expected))


def test_normal_out_aliasing_scale_gives_unaliased_numbers(xp):
    s = xp.linspace(0.5, 3.0, 6)
    expected = rng_for(xp).normal(5.0, s.copy())
    assert np.array_equal(to_np(rng_for(xp).normal(5.0, s, out=s)), to_np(expected))


def test_normal_out_overlapping_view_of_loc(xp):
    # out is loc shifted by one element: only a copy made first gives the unaliased numbers
    buf = xp.arange(10.0)
    loc = buf[:-1]
    expected = rng_for(xp).normal(loc.copy(), 0.5)
    got = rng_for(xp).normal(loc, 0.5, out=buf[1:])
    assert np.array_equal(to_np(got), to_np(expected))


def test_normal_out_aliasing_broadcast_loc(xp):
    out = xp.zeros((3, 4))
    loc = out[0]  # (4,) row of out, broadcast over the 3 rows
    expected = rng_for(xp).normal(xp.zeros(4), 2.0, size=(3, 4))
    assert np.array_equal(to_np(rng_for(xp).normal(loc, 2.0, out=out)), to_np(expected))


# -- complex inputs


@pytest.mark.parametrize(
    ("loc", "scale", "name"),
    [(1j, 1.0, "loc"), ([1.0, 2 + 0j], 1.0, "loc"), (0.0, np.array([1 + 0j]), "scale"), (0.0, 1 - 1j, "scale")],
)
def test_normal_complex_is_type_error(loc, scale, name):
    with pytest.raises(TypeError):  # numpy's own verdict
        np.random.default_rng(0).normal(loc, scale)
    with pytest.raises(TypeError, match=f"{name} must not be complex"):
        gpuvec.random.default_rng(0, backend="numpy").normal(loc, scale)


def test_multivariate_normal_complex_is_type_error(xp):
    rng = rng_for(xp)
    with pytest.raises(TypeError, match="mean and cov must not be complex; got mean of dtype complex"):
        rng.multivariate_normal(xp.asarray([1j, 0]), xp.eye(2))
    with pytest.raises(TypeError, match="mean and cov must not be complex; got cov of dtype complex"):
        rng.multivariate_normal(xp.zeros(2), xp.eye(2) * (1 + 0j))
    assert first_draw_is_fresh(xp, rng)


# -- dtype


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.float16, np.complex128, ">f8", "U3", None.__class__])
def test_float_samplers_refuse_other_dtypes(xp, dtype):
    rng = rng_for(xp)
    for call in (
        lambda: rng.normal(0.0, 1.0, size=3, dtype=dtype),
        lambda: rng.standard_normal(3, dtype=dtype),
        lambda: rng.random(3, dtype=dtype),
        lambda: rng.multivariate_normal(xp.zeros(2), xp.eye(2), size=3, dtype=dtype),
    ):
        with pytest.raises(TypeError, match=r"dtype must be float32 or float64"):
            call()
    assert first_draw_is_fresh(xp, rng)


def test_multivariate_normal_int32_is_refused_not_truncated():
    rng = gpuvec.random.default_rng(0, backend="numpy")
    with pytest.raises(TypeError, match=r"dtype must be float32 or float64 .* got int32"):
        rng.multivariate_normal(np.zeros(2), np.eye(2) * 0.1, dtype=np.int32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_requested_dtype_and_namespace(xp, dtype):
    rng = rng_for(xp)
    assert_namespace(rng.normal(xp.zeros(3), 1.0, dtype=dtype), xp, dtype, (3,))
    assert_namespace(rng.standard_normal((2, 3), dtype=dtype), xp, dtype, (2, 3))
    assert_namespace(rng.random((2, 3), dtype=dtype), xp, dtype, (2, 3))
    x = rng.multivariate_normal(xp.zeros((4, 2)), xp.eye(2), size=5, dtype=dtype)
    assert_namespace(x, xp, dtype, (5, 4, 2))


def test_integers_dtype(xp):
    rng = rng_for(xp)
    assert_namespace(rng.integers(0, 5, size=7, dtype=np.int32), xp, np.int32, (7,))
    with pytest.raises(TypeError, match=r"dtype must be an integer dtype for integers .* got float64"):
        rng.integers(0, 5, size=7, dtype=np.float64)


# -- size and out


@pytest.mark.parametrize("size", [5, (5,), (1, 2), 2.0])
def test_size_and_out_must_agree(xp, size):
    rng = rng_for(xp)
    out = xp.empty(2)
    for call in (
        lambda: rng.normal(size=size, out=out),
        lambda: rng.standard_normal(size, out=out),
        lambda: rng.random(size, out=out),
    ):
        with pytest.raises((ValueError, TypeError), match="size"):
            call()
    assert first_draw_is_fresh(xp, rng)


def test_size_and_out_message_names_both():
    with pytest.raises(ValueError, match=r"size \(5,\) and out.shape \(2,\) must agree"):
        gpuvec.random.default_rng(0, backend="numpy").normal(size=5, out=np.empty(2))


def test_size_equal_to_out_shape_is_fine(xp):
    out = xp.empty((2, 3))
    assert rng_for(xp).normal(0.0, 1.0, size=(2, 3), out=out) is out
    assert np.array_equal(to_np(out), to_np(rng_for(xp).normal(0.0, 1.0, size=(2, 3))))


def test_out_checks(xp):
    rng = rng_for(xp)
    with pytest.raises(TypeError, match="out has dtype float32 but dtype=float64"):
        rng.normal(out=xp.empty(3, dtype=xp.float32))
    with pytest.raises(TypeError, match="out must be a"):
        rng.normal(out=[0.0, 0.0])
    with pytest.raises(TypeError, match="out must be a"):
        rng.standard_normal(out=np.float64(0.0))
    assert first_draw_is_fresh(xp, rng)


def test_read_only_out_is_value_error():
    out = np.empty(3)
    out.flags.writeable = False
    with pytest.raises(ValueError, match="out is read-only"):
        gpuvec.random.default_rng(0, backend="numpy").normal(out=out)


def test_non_contiguous_out_gets_fresh_numbers(xp):
    out = xp.zeros((4, 6))[:, ::2]
    expected = rng_for(xp).normal(1.0, 2.0, size=(4, 3))
    assert rng_for(xp).normal(1.0, 2.0, out=out) is out
    assert np.array_equal(to_np(out), to_np(expected))
    out = xp.zeros((3, 4)).T
    assert np.array_equal(to_np(rng_for(xp).standard_normal(out=out)), to_np(rng_for(xp).standard_normal((4, 3))))


@pytest.mark.parametrize(
    ("size", "exc"), [(-1, ValueError), ((2, -3), ValueError), (2.5, TypeError), ("ab", TypeError)]
)
def test_bad_size_names_size(xp, size, exc):
    rng = rng_for(xp)
    for call in (
        lambda: rng.normal(size=size),
        lambda: rng.standard_normal(size),
        lambda: rng.multivariate_normal(xp.zeros(2), xp.eye(2), size=size),
        lambda: rng.integers(0, 3, size=size),
    ):
        with pytest.raises(exc, match="size must"):
            call()


# -- non-finite mean and cov


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("check_valid", ["warn", "raise", "ignore"])
def test_multivariate_normal_non_finite_cov_names_batch_index(xp, bad, check_valid):
    cov = np.stack([np.eye(2)] * 3)
    cov[2, 1, 1] = bad
    rng = rng_for(xp)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a ValueError, not a RuntimeWarning and NaN samples
        with pytest.raises(ValueError, match=r"cov must be finite; cov\[2\] holds NaN or inf"):
            rng.multivariate_normal(xp.zeros(2), xp.asarray(cov), size=4, check_valid=check_valid)
    assert first_draw_is_fresh(xp, rng)


def test_multivariate_normal_non_finite_mean_names_batch_index(xp):
    mean = np.zeros((2, 3, 2))
    mean[1, 0, 1] = np.nan
    with pytest.raises(ValueError, match=r"mean must be finite; mean\[1, 0\] holds NaN or inf"):
        rng_for(xp).multivariate_normal(xp.asarray(mean), xp.eye(2))
    with pytest.raises(ValueError, match=r"mean must be finite; mean holds NaN or inf"):
        rng_for(xp).multivariate_normal(xp.asarray([0.0, np.inf]), xp.eye(2))


# -- broadcast failures name the parameters


def test_normal_broadcast_failure_names_loc_and_scale(xp):
    with pytest.raises(ValueError, match=r"loc and scale must broadcast together; got loc of shape \(3,\) and scale"):
        rng_for(xp).normal(xp.zeros(3), xp.ones(2))
    with pytest.raises(ValueError, match=r"size \(4, 2\) does not broadcast with loc \(3,\) and scale \(\)"):
        rng_for(xp).normal(xp.zeros(3), 1.0, size=(4, 2))
    with pytest.raises(ValueError, match=r"out.shape \(2,\) does not broadcast with loc \(3,\)"):
        rng_for(xp).normal(xp.zeros(3), 1.0, out=xp.empty(2))


def test_multivariate_normal_broadcast_failure_names_mean_and_cov(xp):
    with pytest.raises(ValueError, match=r"mean of shape \(3, 2\) \(batch \(3,\)\) and cov of shape \(4, 2, 2\)"):
        rng_for(xp).multivariate_normal(xp.zeros((3, 2)), xp.broadcast_to(xp.eye(2), (4, 2, 2)))
    with pytest.raises(ValueError, match=r"got mean \(\) and cov \(2, 2\)"):
        rng_for(xp).multivariate_normal(0.0, xp.eye(2))


# -- seeds


@pytest.mark.parametrize(
    ("seed", "exc"),
    [
        (-1, ValueError),
        ([1, -2], ValueError),
        (1.5, TypeError),
        ("abc", TypeError),
        (object(), TypeError),
        (np.array([1.0]), TypeError),
        ({"a": 1}, TypeError),
    ],
)
def test_bad_seed_names_seed_and_what_is_accepted(seed, exc):
    with pytest.raises(exc):  # numpy refuses them too
        np.random.default_rng(seed)
    with pytest.raises(exc, match=r"seed must be None, a non-negative int, .* got "):
        gpuvec.random.default_rng(seed, backend="numpy")


@pytest.mark.parametrize(
    "seed", [0, 2**100, [1, 2, 3], np.array([4, 5], dtype=np.uint32), np.int64(7), np.random.SeedSequence(9)]
)
def test_good_seeds_match_numpy(seed):
    ours = gpuvec.random.default_rng(seed, backend="numpy").random(3)
    assert np.array_equal(ours, np.random.default_rng(seed).random(3))


def test_numpy_generator_and_random_state_seeds():
    # numpy uses their bit generator (shared state), as np.random.default_rng does (numpy >= 1.25 for RandomState)
    for make in (lambda: np.random.RandomState(3), lambda: np.random.default_rng(3), lambda: np.random.PCG64(3)):
        ref = make()
        ref = np.random.default_rng(ref._bit_generator if isinstance(ref, np.random.RandomState) else ref)
        assert np.array_equal(gpuvec.random.default_rng(make(), backend="numpy").random(3), ref.random(3))


# -- numpy's scale < 0 rule


@pytest.mark.parametrize("scale", [-0.0, -1e-300, -np.inf, 0.0, np.nan, -np.nan, np.inf, [1.0, -0.0]])
def test_scale_sign_rule_matches_numpy(scale):
    try:
        expected = np.random.default_rng(0).normal(0.5, scale)
    except ValueError:
        with pytest.raises(ValueError, match="scale must be non-negative"):
            gpuvec.random.default_rng(0, backend="numpy").normal(0.5, scale)
    else:
        got = gpuvec.random.default_rng(0, backend="numpy").normal(0.5, scale)
        np.testing.assert_array_equal(got, expected)


def test_negative_zero_scale_names_its_index(xp):
    with pytest.raises(ValueError, match=r"scale\[1, 0\] = -0.0"):
        rng_for(xp).normal(0.0, xp.asarray([[1.0, 1.0], [-0.0, 1.0]]))


# -- method, check_valid and tol


def test_bad_method_check_valid_tol(xp):
    rng = rng_for(xp)
    mean, cov = xp.zeros(2), xp.eye(2)
    with pytest.raises(ValueError, match=r"method must be one of None, 'cholesky', 'eigh', 'svd'; got 'qr'"):
        rng.multivariate_normal(mean, cov, method="qr")
    with pytest.raises(ValueError, match="check_valid must be one of 'warn', 'raise', 'ignore'; got 'other'"):
        rng.multivariate_normal(mean, cov, check_valid="other")
    with pytest.raises(ValueError, match="tol must be non-negative"):
        rng.multivariate_normal(mean, cov, tol=-1e-8)
    with pytest.raises(TypeError, match="tol must be a real number"):
        rng.multivariate_normal(mean, cov, tol="1e-8")
    assert first_draw_is_fresh(xp, rng)


@pytest.mark.parametrize("method", [None, "eigh", "svd"])
def test_not_psd_warns_like_numpy_and_samples(xp, method):
    cov = xp.asarray([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]])
    with pytest.warns(RuntimeWarning, match=r"^covariance is not symmetric positive-semidefinite\. cov\[1\]"):
        x = rng_for(xp).multivariate_normal(xp.zeros(2), cov, size=20000, method=method)
    x = to_np(x)
    assert np.isfinite(x).all()
    # numpy's 'svd' samples an invalid symmetric cov from |eigenvalues|: here [[2, 1], [1, 2]]
    np.testing.assert_allclose(np.cov(x[:, 1].T), [[2.0, 1.0], [1.0, 2.0]], atol=0.1)
    with pytest.raises(ValueError, match=r"^covariance is not symmetric positive-semidefinite\. cov\[1\]"):
        rng_for(xp).multivariate_normal(xp.zeros(2), cov, method=method, check_valid="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        rng_for(xp).multivariate_normal(xp.zeros(2), cov, method=method, check_valid="ignore")


@pytest.mark.parametrize("cov", [[[1.0, 2.0], [2.0, 1.0]], [[1.0, 0.0], [0.0, 0.0]]], ids=["indefinite", "singular"])
def test_explicit_cholesky_raises_linalgerror_as_numpy(xp, cov):
    with pytest.raises(np.linalg.LinAlgError):
        np.random.default_rng(0).multivariate_normal([0.0, 0.0], cov, method="cholesky")
    rng = rng_for(xp)
    stack = xp.asarray([np.eye(2), cov])
    for check_valid in ("warn", "raise", "ignore"):
        with pytest.raises(np.linalg.LinAlgError, match=r"^cov\[1\] is not positive definite"):
            rng.multivariate_normal(xp.zeros(2), stack, method="cholesky", check_valid=check_valid)
    assert first_draw_is_fresh(xp, rng)


def test_explicit_cholesky_reads_the_lower_triangle_as_numpy():
    cov = np.array([[2.0, 0.6], [0.2, 1.0]])  # asymmetric: numpy's 'cholesky' factors [[2, 0.2], [0.2, 1]]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ours = gpuvec.random.default_rng(3, backend="numpy").multivariate_normal([0.0, 0.0], cov, 5, method="cholesky")
        theirs = np.random.default_rng(3).multivariate_normal([0.0, 0.0], cov, 5, method="cholesky")
    np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("serial_below", [0, 1 << 40], ids=["threads", "one-thread"])
def test_default_method_factors_blocks_as_one_cholesky(monkeypatch, serial_below):
    """The default's common case (symmetric positive-definite stacks, factored in blocks over the
    worker threads) equals one np.linalg.cholesky of the stack, bit for bit, at any block split."""
    from gpuvec._core import dispatch

    monkeypatch.setitem(dispatch.SERIAL_BELOW, "covariances", serial_below)
    A = np.random.default_rng(0).standard_normal((700, 9, 9))
    cov = A @ np.swapaxes(A, -1, -2) + np.eye(9)
    mean = np.zeros((700, 9))
    z = np.random.default_rng(1).standard_normal((3, 700, 9, 1))
    expected = (np.linalg.cholesky(cov) @ z)[..., 0]
    ours = gpuvec.random.default_rng(1, backend="numpy").multivariate_normal(mean, cov, size=3)
    assert np.array_equal(ours, expected)
    bad = cov.copy()
    bad[650] = [[1.0 if i == j else 2.0 for j in range(9)] for i in range(9)]  # one indefinite, late in the stack
    with pytest.warns(RuntimeWarning, match=r"cov\[650\]"):
        gpuvec.random.default_rng(1, backend="numpy").multivariate_normal(mean, bad)


def test_warning_points_at_the_caller():
    with pytest.warns(RuntimeWarning) as record:
        gpuvec.random.default_rng(0, backend="numpy").multivariate_normal([0.0, 0.0], [[1.0, 2.0], [2.0, 1.0]])
    assert record[0].filename == __file__


def random_spd_precisions(n, d, rng, span=6.0):
    """n symmetric positive-definite precisions with eigenvalues over ``span`` decades."""
    Q = np.linalg.qr(rng.standard_normal((n, d, d)))[0]
    w = 10.0 ** rng.uniform(-span / 2, span / 2, (n, 1, d))
    P = (Q * w) @ np.swapaxes(Q, -1, -2)
    return (P + np.swapaxes(P, -1, -2)) / 2


@pytest.mark.parametrize("method", [None, "cholesky", "eigh", "svd"])
def test_covariances_inverted_from_precisions_are_accepted(xp, method):
    covs = np.linalg.inv(random_spd_precisions(50, 3, np.random.default_rng(0)))
    asym = np.abs(covs - np.swapaxes(covs, -1, -2)).max(axis=(-1, -2)) / np.abs(covs).max(axis=(-1, -2))
    assert (asym > 10 * 3 * np.finfo(float).eps).sum() >= 3  # the old rule rejected these
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for c in covs:  # numpy accepts every one
            np.random.default_rng(0).multivariate_normal(np.zeros(3), c, method=method or "cholesky")
        x = rng_for(xp).multivariate_normal(xp.zeros(3), xp.asarray(covs), size=100, method=method, check_valid="raise")
    assert_namespace(x, xp, np.float64, (100, 50, 3))
    assert np.isfinite(to_np(x)).all()


def borderline_covariances(n, rng):
    """Symmetric and asymmetric covariances near the edge of numpy's tol, at scales 1e-9 .. 1e9."""
    out = []
    for i in range(n):
        d = int(rng.integers(1, 5))
        Q = np.linalg.qr(rng.standard_normal((d, d)))[0]
        w = rng.uniform(0, 1, d)
        if i % 4 == 1:
            w[0] = -(10.0 ** rng.uniform(-12, -6))
        if i % 4 == 2:
            w[0] = 0.0
        C = (Q * w) @ Q.T * 10.0 ** rng.integers(-9, 10)
        if i % 4 == 3:
            C[0, -1] += 10.0 ** rng.uniform(-12, -6) * np.abs(C).max()
        out.append(C)
    return out


def warns_not_psd(sample, C, **kwargs):
    """Whether ``sample(seed 0).multivariate_normal(0, C, **kwargs)`` warns that C is invalid."""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        sample(0).multivariate_normal(np.zeros(len(C)), C, **kwargs)
    return any("positive-semidefinite" in str(w.message) for w in record)


def ours(seed):
    return gpuvec.random.default_rng(seed, backend="numpy")


def test_validity_verdicts_match_numpys():
    """Per method on the same matrices, gpuvec warns exactly where numpy does; gpuvec's default
    ('cholesky') exactly where numpy's default ('svd') does. numpy's 'eigh' does not look at the
    upper triangle, so it is compared on symmetric matrices only."""
    theirs = np.random.default_rng
    n_warned = 0
    for C in borderline_covariances(240, np.random.default_rng(1)):
        expected = warns_not_psd(theirs, C)
        n_warned += expected
        assert warns_not_psd(ours, C) == expected
        assert warns_not_psd(ours, C, method="svd") == expected
        if np.array_equal(C, C.T):
            assert warns_not_psd(ours, C, method="eigh") == warns_not_psd(theirs, C, method="eigh")
    assert 10 < n_warned < 200  # the set has both verdicts


def test_tol_is_numpys_tolerance():
    cov = np.array([[1.0, 0.0], [1e-6, 1.0]])  # asymmetric by 1e-6
    rng = gpuvec.random.default_rng(0, backend="numpy")
    for method in (None, "eigh", "svd"):
        with pytest.raises(ValueError, match="not symmetric|SVD"):
            rng.multivariate_normal([0.0, 0.0], cov, method=method, check_valid="raise")
        rng.multivariate_normal([0.0, 0.0], cov, method=method, check_valid="raise", tol=1e-5)
    with pytest.warns(RuntimeWarning):
        np.random.default_rng(0).multivariate_normal([0.0, 0.0], cov)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.random.default_rng(0).multivariate_normal([0.0, 0.0], cov, tol=1e-5)


def test_asymmetric_cov_samples_its_symmetric_part(xp):
    cov = xp.asarray([[2.0, 0.6], [0.2, 1.0]])
    with pytest.warns(RuntimeWarning, match="cov is not symmetric within tol"):
        x = to_np(rng_for(xp).multivariate_normal(xp.zeros(2), cov, size=100000))
    np.testing.assert_allclose(np.cov(x.T), [[2.0, 0.4], [0.4, 1.0]], atol=0.05)


def test_gaussian_mixture_sample_after_precisions_init():
    from sklearn.exceptions import ConvergenceWarning as SkConvergenceWarning

    P = random_spd_precisions(50, 3, np.random.default_rng(0))
    cov = np.linalg.inv(P)
    asym = np.abs(cov - np.swapaxes(cov, -1, -2)).max(axis=(-1, -2)) / np.abs(cov).max(axis=(-1, -2))
    P, cov = P[asym > 30 * np.finfo(float).eps], cov[asym > 30 * np.finfo(float).eps]  # the old rule's rejects
    # what sample() asks of multivariate_normal: (B, K, D) zeros, (B, K, D, D) covariances
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        draws = gpuvec.random.default_rng(0, backend="numpy").multivariate_normal(
            np.zeros((1, len(cov), 3)), cov[None], size=50
        )
    assert draws.shape == (50, 1, len(cov), 3) and np.isfinite(draws).all()
    X = np.random.default_rng(5).standard_normal((300, 3))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SkConvergenceWarning)
        warnings.simplefilter("ignore", getattr(gpuvec.mixture, "ConvergenceWarning", SkConvergenceWarning))
        gm = gpuvec.GaussianMixture(2, precisions_init=P[:2], max_iter=1, random_state=0).fit(X)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Xs, ys = gm.sample(50)
    assert Xs.shape == (50, 3) and ys.shape == (50,)


# -- nothing mutates its inputs


def test_inputs_are_not_mutated(xp):
    rng = rng_for(xp)
    loc, scale = xp.linspace(-1, 1, 6).reshape(2, 3), xp.full(3, 2.0)
    mean, cov = (
        xp.ones((2, 3)),
        xp.asarray([[[2.0, 0.5, 0], [0.5, 1, 0], [0, 0, 1]], [[1.0, 1, 0], [1, 1, 0], [0, 0, 1]]]),
    )
    cov_asym = xp.asarray([[1.0, 0.5], [0.3, 1.0]])
    copies = [to_np(a).copy() for a in (loc, scale, mean, cov, cov_asym)]
    rng.normal(loc, scale, size=(4, 2, 3))
    rng.normal(loc, scale, dtype=np.float32)
    for method in (None, "cholesky", "eigh", "svd"):
        rng.multivariate_normal(mean, cov + 0.1 * xp.eye(3), size=5, method=method)
        rng.multivariate_normal(mean[0, :2], cov_asym, method=method, check_valid="ignore")
    for a, c in zip((loc, scale, mean, cov, cov_asym), copies):
        assert np.array_equal(to_np(a), c)


def test_read_only_broadcast_inputs(xp):
    cov = xp.broadcast_to(xp.eye(2), (3, 2, 2))
    loc = xp.broadcast_to(xp.zeros(2), (3, 2))
    assert rng_for(xp).multivariate_normal(loc, cov, size=4).shape == (4, 3, 2)
    assert rng_for(xp).normal(loc, 1.0).shape == (3, 2)


def test_generator_from_a_gpuvec_generator_shares_its_stream():
    g = gpuvec.random.default_rng(4, backend="numpy")
    h = gpuvec.random.Generator(g, "numpy")
    both = np.concatenate([g.random(2), h.random(2)])
    assert np.array_equal(both, np.random.default_rng(4).random(4))


# -- properties


@settings(max_examples=40, deadline=None)
@given(
    shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=5),
    which=st.sampled_from(["loc", "scale", "both"]),
    dtype=st.sampled_from([np.float32, np.float64]),
)
def test_out_aliasing_never_changes_the_numbers(shape, which, dtype):
    x = np.abs(np.random.default_rng(1).standard_normal(shape)).astype(dtype)
    loc, scale = (x if which != "scale" else 0.5), (x if which != "loc" else 2.0)
    expected = gpuvec.random.default_rng(2, backend="numpy").normal(
        np.copy(loc), np.copy(scale), size=shape, dtype=dtype
    )
    got = gpuvec.random.default_rng(2, backend="numpy").normal(loc, scale, dtype=dtype, out=x)
    assert got is x and np.array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("size", [None, 7, (2, 3)])
def test_normal_with_python_numbers_is_the_array_path_bit_for_bit(dtype, size):
    """The fast path for Python-number loc and scale gives the numbers of the general path (0-d arrays in)."""
    fast = gpuvec.random.default_rng(11, backend="numpy").normal(1.5, 2, size, dtype=dtype)
    general = gpuvec.random.default_rng(11, backend="numpy").normal(np.array(1.5), np.array(2.0), size, dtype=dtype)
    assert fast.dtype == general.dtype == dtype and fast.shape == general.shape
    np.testing.assert_array_equal(fast, general)
    with pytest.raises(ValueError, match=r"scale must be non-negative everywhere; got scale = -0.0"):
        gpuvec.random.default_rng(0, backend="numpy").normal(0.0, -0.0, size)


# -- round 3 (#23): hostile cases


def test_generators_pickle_and_copy_with_their_stream():
    import copy
    import pickle

    g = gpuvec.random.default_rng(0, backend="numpy")
    g.random(3)
    for other in (copy.deepcopy(g), pickle.loads(pickle.dumps(g))):
        assert other.backend == "numpy" and other.xp is np
        assert np.array_equal(other.random(4), copy.deepcopy(g).random(4))
    assert np.array_equal(pickle.loads(pickle.dumps(g)).normal(np.zeros(2), 1.0), g.normal(np.zeros(2), 1.0))


def test_numpy_argument_rules_kept():
    assert np.array_equal(
        gpuvec.random.default_rng(np.array(3), backend="numpy").random(2), np.random.default_rng(3).random(2)
    )
    with pytest.raises(TypeError, match="size must be None, an int or a tuple of ints; got True"):
        gpuvec.random.default_rng(0, backend="numpy").normal(size=True)


def test_float32_samples_beyond_range_are_inf_without_a_warning():
    rng = gpuvec.random.default_rng(0, backend="numpy")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert np.isinf(rng.normal(1e300, 1.0, size=2, dtype=np.float32)).all()
        assert np.isinf(rng.normal(np.array([1e300]), 1.0, size=2, dtype=np.float32)).all()
