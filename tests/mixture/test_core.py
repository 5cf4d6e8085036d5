"""The mixture core: mergeable sufficient statistics, fit_em, the covariance-type table."""

from __future__ import annotations

import functools
import itertools
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gpuvec import mixture
from gpuvec._core import dispatch
from gpuvec.mixture._covariance import COVARIANCE_TYPES, covariances_from_cholesky
from gpuvec.mixture._em import regularisation_retry
from tests.helpers import assert_namespace, to_np

sklearn_mixture = pytest.importorskip("sklearn.mixture")
COV_TYPES = ["full", "tied", "diag", "spherical"]


def blobs(rng, B=3, n=60, d=3):
    return np.stack([np.concatenate([rng.normal(0, 1, (n, d)), rng.normal(4, 1.5, (n, d))]) for _ in range(B)])


def random_start(rng, X, K, ct):
    B, N, _ = X.shape
    return mixture.m_step(X, np.log(rng.dirichlet(np.ones(K), size=(B, N))), 1e-6, ct)


def assert_params_close(got, want, rtol, atol=0.0):
    for name, a, b in zip(mixture.MixtureParams._fields, got, want, strict=True):
        np.testing.assert_allclose(to_np(a), to_np(b), rtol=rtol, atol=atol, err_msg=name)


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("ct", COV_TYPES)
def test_statistics_of_two_halves_merge_to_em_pass_of_whole(xp, ct, weighted):
    rng = np.random.default_rng(20)
    X = blobs(rng)
    sw = rng.random(X.shape[:2]) if weighted else None
    start = random_start(rng, X, 3, ct)
    whole, lb_whole = mixture.em_pass(X, start, np.full(3, 1e-6), ct, sw)

    Xd = xp.asarray(X)
    swd = None if sw is None else xp.asarray(sw)
    startd = mixture.MixtureParams(*(xp.asarray(a) for a in start))
    shift = Xd.mean(1, keepdims=True)  # any common centre
    halves = [slice(0, 50), slice(50, 120)]  # unequal, each with samples of both blobs
    parts = [
        mixture.sufficient_statistics(Xd[:, h], startd, ct, None if swd is None else swd[:, h], shift=shift)
        for h in halves
    ]
    merged = mixture.merge_statistics(*parts)
    assert_namespace(merged.nk, xp, np.float64, (3, 3))
    params = mixture.params_from_statistics(merged, xp.full(3, 1e-6), ct)
    assert_params_close(params, whole, rtol=1e-12)
    np.testing.assert_allclose(to_np(merged.lower_bound), lb_whole, rtol=1e-12)
    # The operator form is the same merge, not tuple concatenation.
    added = parts[0] + parts[1]
    assert isinstance(added, mixture.SufficientStats)
    np.testing.assert_array_equal(to_np(added.sxx), to_np(merged.sxx))


def test_statistics_shapes_per_covariance_type():
    rng = np.random.default_rng(21)
    X = blobs(rng, B=2, n=10, d=3)
    sxx_shapes = {"full": (2, 4, 3, 3), "tied": (2, 1, 3, 3), "diag": (2, 4, 3), "spherical": (2, 4)}
    for ct, sxx_shape in sxx_shapes.items():
        s = mixture.sufficient_statistics(X, random_start(rng, X, 4, ct), ct)
        assert s.nk.shape == (2, 4) and s.sx.shape == (2, 4, 3) and s.sxx.shape == sxx_shape
        assert s.log_likelihood.shape == s.weight_sum.shape == (2,) and s.shift.shape == (2, 1, 3)
        np.testing.assert_allclose(s.weight_sum, 20.0)
        np.testing.assert_allclose(s.nk.sum(-1), 20.0, rtol=1e-12)


def test_merging_statistics_with_different_shifts_is_refused():
    rng = np.random.default_rng(22)
    X = blobs(rng, B=1)
    start = random_start(rng, X, 2, "diag")
    a = mixture.sufficient_statistics(X[:, :60], start, "diag")
    b = mixture.sufficient_statistics(X[:, 60:], start, "diag")  # each about its own mean
    with pytest.raises(ValueError, match="same shift"):
        mixture.merge_statistics(a, b)


def test_em_pass_with_given_shift_equals_default_shift():
    rng = np.random.default_rng(23)
    X = blobs(rng)
    start = random_start(rng, X, 3, "full")
    a, lb_a = mixture.em_pass(X, start, np.full(3, 1e-6), "full")
    b, lb_b = mixture.em_pass(X, start, np.full(3, 1e-6), "full", shift=np.zeros((3, 1, 3)))
    assert_params_close(b, a, rtol=1e-10)
    np.testing.assert_allclose(lb_b, lb_a, rtol=1e-13)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_fit_em_follows_sklearn_from_same_start(xp, ct):
    rng = np.random.default_rng(24)
    X = blobs(rng, B=1, n=150)[0]
    warm = sklearn_mixture.GaussianMixture(3, covariance_type=ct, random_state=0, max_iter=2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm.fit(X)
    sk = sklearn_mixture.GaussianMixture(
        3,
        covariance_type=ct,
        tol=1e-8,
        max_iter=50,
        weights_init=warm.weights_,
        means_init=warm.means_,
        precisions_init=warm.precisions_,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(X)
    P = warm.precisions_cholesky_
    cov = covariances_from_cholesky(np, P[None], ct)
    start = mixture.MixtureParams(*(xp.asarray(a) for a in (warm.weights_[None], warm.means_[None], cov, P[None])))
    result = mixture.fit_em(xp.asarray(X[None]), start, 1e-6, ct, tol=1e-8, max_iter=50)
    assert isinstance(result, mixture.EMResult)
    assert int(result.n_iter[0]) == sk.n_iter_ and bool(result.converged[0]) == sk.converged_
    assert not bool(result.failed[0])
    np.testing.assert_allclose(to_np(result.history[0]), sk.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(to_np(result.params.means[0]), sk.means_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(to_np(result.params.covariances[0]), sk.covariances_, rtol=1e-8, atol=1e-10)
    assert_namespace(result.lower_bound, xp, np.float64, (1,))


def test_fit_em_does_not_change_its_start():
    rng = np.random.default_rng(25)
    X = blobs(rng)
    start = random_start(rng, X, 2, "diag")
    before = [a.copy() for a in start]
    reg = np.full(3, 1e-6)
    result = mixture.fit_em(X, start, reg, "diag", max_iter=5)
    for a, b in zip(start, before, strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(reg, 1e-6)
    assert result.history.shape == (3, 5)


def test_fit_em_converged_problems_leave_and_keep_their_history():
    rng = np.random.default_rng(26)
    X = blobs(rng, B=4)
    result = mixture.fit_em(X, random_start(rng, X, 3, "full"), 1e-6, "full", tol=1e-4, max_iter=200)
    n_iter = result.n_iter
    assert result.converged.all() and len(set(n_iter.tolist())) > 1
    for b in range(4):
        h = result.history[b]
        assert np.isfinite(h[: n_iter[b]]).all() and np.isnan(h[n_iter[b] :]).all()
        assert h[n_iter[b] - 1] == result.lower_bound[b]


def test_fit_em_batch_equals_one_problem_at_a_time():
    rng = np.random.default_rng(27)
    X = blobs(rng, B=3)
    start = random_start(rng, X, 3, "tied")
    whole = mixture.fit_em(X, start, 1e-6, "tied", tol=1e-6)
    for b in range(3):
        start_b = mixture.MixtureParams(*(a[b : b + 1] for a in start))
        one = mixture.fit_em(X[b : b + 1], start_b, 1e-6, "tied", tol=1e-6)
        assert one.n_iter[0] == whole.n_iter[b]
        assert_params_close([a[0] for a in one.params], [a[b] for a in whole.params], rtol=1e-12)


def test_fit_em_chunking_does_not_change_the_answer(monkeypatch):
    rng = np.random.default_rng(28)
    X = blobs(rng, B=3)
    start = random_start(rng, X, 3, "full")
    whole = mixture.fit_em(X, start, 1e-6, "full", tol=1e-6)
    monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "mixture", (100, 100))
    chunked = mixture.fit_em(X, start, 1e-6, "full", tol=1e-6)
    np.testing.assert_array_equal(chunked.n_iter, whole.n_iter)
    assert_params_close(chunked.params, whole.params, rtol=1e-10, atol=1e-13)


def test_regularisation_retry_raises_reg_covar_only_where_needed_and_positive():
    X = np.zeros((3, 3, 2))
    X[0] = [[0, 0], [1, 2], [2, 1]]  # a proper covariance
    X[1:, :, 0] = X[1:, :, 1] = [0, 1, 2]  # two equal features: singular without regularisation
    log_resp = np.zeros((3, 3, 1))

    def step(reg):
        return mixture.m_step(X, log_resp, reg, "full")

    tiny = 2.0**-60
    reg0 = np.array([tiny, tiny, 0.0])
    params, reg, failed = regularisation_retry(step, step(reg0), reg0, 6)
    assert reg[0] == tiny and reg[1] > tiny and reg[2] == 0  # reg_covar=0: no retry
    assert failed.tolist() == [False, False, True]
    assert np.isfinite(params.precisions_cholesky[:2]).all()
    np.testing.assert_array_equal(reg0, [tiny, tiny, 0.0])  # not modified


def test_covariance_table_row_per_type():
    assert tuple(COVARIANCE_TYPES) == tuple(COV_TYPES) == tuple(mixture.COVARIANCE_TYPES)
    K, D = 3, 4
    assert [COVARIANCE_TYPES[t].precision_shape(K, D) for t in COV_TYPES] == [(3, 4, 4), (4, 4), (3, 4), (3,)]
    assert [COVARIANCE_TYPES[t].n_parameters(K, D) for t in COV_TYPES] == [30, 10, 12, 3]
    assert [t for t in COV_TYPES if COVARIANCE_TYPES[t].shared] == ["tied"]
    assert [t for t in COV_TYPES if COVARIANCE_TYPES[t].full_matrix] == ["full", "tied"]


def test_public_names_of_the_mixture_module():
    for name in (
        "GaussianMixture",
        "MixtureParams",
        "e_step",
        "em_pass",
        "estimate_log_prob",
        "m_step",
        "SufficientStats",
        "sufficient_statistics",
        "params_from_statistics",
        "merge_statistics",
        "fit_em",
        "EMResult",
    ):
        assert name in mixture.__all__ and hasattr(mixture, name), name


@pytest.mark.parametrize("budget", [30, 500, 1 << 20])  # slices of one problem's samples; groups; everything
def test_prediction_in_blocks_equals_one_e_step(monkeypatch, budget):
    rng = np.random.default_rng(29)
    X = blobs(rng, B=3, n=50)
    gm = mixture.GaussianMixture(3, random_state=0, tol=1e-2).fit(X)
    log_resp, log_norm = mixture.e_step(X, gm.weights_, gm.means_, gm.precisions_cholesky_, "full")
    monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "mixture", (budget, budget))
    np.testing.assert_array_equal(gm.predict(X), log_resp.argmax(-1))
    np.testing.assert_allclose(gm.score_samples(X), log_norm, rtol=1e-13)
    np.testing.assert_allclose(gm.predict_proba(X), np.exp(log_resp), rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_float32_data_is_summed_in_float64(ct):
    rng = np.random.default_rng(30)
    X32 = (blobs(rng, B=2, n=40) + 1e3).astype(np.float32)  # an offset that float32 sums would lose
    X64 = X32.astype(np.float64)
    start = random_start(rng, X64, 2, ct)
    s32 = mixture.sufficient_statistics(X32, start, ct)
    s64 = mixture.sufficient_statistics(X64, start, ct)
    for name, a, b in zip(mixture.SufficientStats._fields, s32, s64, strict=True):
        assert a.dtype == np.float64, name
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-9, err_msg=name)
    m32 = mixture.m_step(X32, np.log(rng.dirichlet(np.ones(2), size=(2, 80))), 1e-6, ct)
    assert m32.means.dtype == np.float64


@settings(max_examples=30, deadline=None)
@given(
    ct=st.sampled_from(COV_TYPES),
    cuts=st.lists(st.integers(1, 119), min_size=1, max_size=4, unique=True),
    weighted=st.booleans(),
)
def test_statistics_of_any_split_merge_to_those_of_the_whole(ct, cuts, weighted):
    rng = np.random.default_rng(31)
    X = blobs(rng, B=2)
    sw = rng.random(X.shape[:2]) if weighted else None
    start = random_start(rng, X, 3, ct)
    shift = X.mean(1, keepdims=True)
    whole = mixture.sufficient_statistics(X, start, ct, sw, shift=shift)
    edges = [0, *sorted(cuts), X.shape[1]]
    parts = [
        mixture.sufficient_statistics(X[:, a:b], start, ct, None if sw is None else sw[:, a:b], shift=shift)
        for a, b in itertools.pairwise(edges)
    ]
    merged = functools.reduce(mixture.merge_statistics, parts)
    for name, a, b in zip(mixture.SufficientStats._fields, merged, whole, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-10, err_msg=name)


def test_exp_nonpositive_is_exp_down_to_1e_304_and_zero_below(xp):
    """The responsibilities' exp: numpy's exp where the result is a normal float above e^-700, exact 0 below
    (numpy's own is 10x slower there); NaN and -inf as exp has them, in place when asked."""
    from gpuvec.mixture._covariance import exp_nonpositive

    rng = np.random.default_rng(5)
    a = -np.abs(rng.normal(size=(400, 7))) * rng.choice([1.0, 300.0, 2000.0], size=(400, 1))
    a[0, 0], a[1, 1], a[2, 2], a[3] = np.nan, -np.inf, -700.0, 0.0
    got = to_np(exp_nonpositive(xp, xp.asarray(a)))
    with np.errstate(under="ignore"):
        want = np.where(np.isnan(a) | (a >= -700.0), np.exp(a), 0.0)
    np.testing.assert_array_equal(got, want)  # NaN where a is NaN, equal elsewhere
    assert (a < -700.0).sum() > 100 and got[a < -700.0].max() == 0.0
    b = xp.asarray(a[4:])  # no argument below the floor (the numpy branch without the clamp)
    b = xp.maximum(b, -650.0)
    out = exp_nonpositive(xp, b, out=b)
    assert out is b
    np.testing.assert_array_equal(to_np(b), np.exp(np.maximum(a[4:], -650.0)))


@pytest.mark.parametrize("K", [1, 2, 31, 33, 128])
def test_row_max_and_logsumexp_over_few_and_many_components(xp, K):
    """Both forms of the row maximum (a loop over K below 33 columns, one reduce from there) give the max where
    finite and 0 where not; the log-sum-exp equals scipy's, rows of far-apart entries (exp's underflow) too."""
    from scipy.special import logsumexp

    from gpuvec.mixture._covariance import logsumexp_last, row_max

    rng = np.random.default_rng(6)
    a = rng.normal(size=(3, 50, K)) * rng.choice([1.0, 1e3], size=(3, 50, 1))
    a[0, 0] = -np.inf
    a[0, 1, 0] = np.nan
    got = to_np(row_max(xp, xp.asarray(a)))
    with np.errstate(invalid="ignore"):
        want = a.max(-1)
    np.testing.assert_array_equal(got, np.where(np.isfinite(want), want, 0.0))
    with np.errstate(invalid="ignore", over="ignore"):  # the NaN row: no finite shift, its exp overflows
        want = logsumexp(a, axis=-1)
        got = to_np(logsumexp_last(xp, xp.asarray(a)))
    np.testing.assert_allclose(got, want, rtol=1e-15, atol=2e-16)
