"""GaussianMixture: sklearn's numerics from the same start, batches, the seed's example, errors."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpuvec
from gpuvec import mixture
from gpuvec._core import dispatch
from gpuvec.tools.baselines import seed_em_data
from tests.helpers import assert_namespace, to_np

sklearn_mixture = pytest.importorskip("sklearn.mixture")
COV_TYPES = ["full", "tied", "diag", "spherical"]


def two_blobs(rng, n=300, d=3):
    return np.concatenate([rng.normal(0, 1, (n, d)), rng.normal(4, 1.5, (n, d))])


def sklearn_start(X, K, ct):
    warm = sklearn_mixture.GaussianMixture(K, covariance_type=ct, random_state=0, max_iter=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warm.fit(X)
    return dict(weights_init=warm.weights_, means_init=warm.means_, precisions_init=warm.precisions_)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_follows_sklearn_em_from_same_start(xp, ct):
    X = two_blobs(np.random.default_rng(0))
    start = sklearn_start(X, 3, ct)
    sk = sklearn_mixture.GaussianMixture(3, covariance_type=ct, tol=1e-8, max_iter=60, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sk.fit(X)
        ours = gpuvec.GaussianMixture(
            3, covariance_type=ct, tol=1e-8, max_iter=60, **{k: xp.asarray(v) for k, v in start.items()}
        ).fit(xp.asarray(X))
    assert ours.n_iter_ == sk.n_iter_ and ours.converged_ == sk.converged_
    np.testing.assert_allclose(ours.lower_bounds_, sk.lower_bounds_, rtol=1e-10)
    assert abs(ours.lower_bound_ - sk.lower_bound_) <= 1e-10 * abs(sk.lower_bound_)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        got = getattr(ours, name)
        assert_namespace(got, xp, np.float64, getattr(sk, name).shape)
        np.testing.assert_allclose(to_np(got), getattr(sk, name), rtol=1e-8, atol=1e-10, err_msg=name)
    np.testing.assert_allclose(to_np(ours.score_samples(xp.asarray(X))), sk.score_samples(X), rtol=1e-9)
    assert np.array_equal(to_np(ours.predict(xp.asarray(X))), sk.predict(X))
    np.testing.assert_allclose(to_np(ours.predict_proba(xp.asarray(X))), sk.predict_proba(X), atol=1e-9)
    np.testing.assert_allclose(ours.bic(xp.asarray(X)), sk.bic(X), rtol=1e-10)
    np.testing.assert_allclose(ours.aic(xp.asarray(X)), sk.aic(X), rtol=1e-10)


def test_seed_example_is_solved_by_default_init(xp):
    X = seed_em_data().T  # the seed keeps features in rows
    gm = gpuvec.GaussianMixture(2, random_state=0).fit(xp.asarray(X))
    means = to_np(gm.means_)
    order = np.argsort(means[:, 0])
    np.testing.assert_allclose(means[order], [[0, 0], [5, 5]], atol=0.1)
    np.testing.assert_allclose(to_np(gm.covariances_), [np.eye(2)] * 2, atol=0.1)
    assert gm.converged_


def test_seed_start_warns_identical_components(xp):
    X = xp.asarray(seed_em_data().T)
    start = dict(weights_init=[0.5, 0.5], means_init=[[10, 10], [10, 10]], precisions_init=[np.eye(2) / 10] * 2)
    with pytest.warns(UserWarning, match=r"problems \[0\] start with identical components"):
        gm = gpuvec.GaussianMixture(2, **start).fit(X)
    # ...and reproduces the seed's stuck answer, as EM must from that start.
    np.testing.assert_allclose(to_np(gm.means_), [[2.50832195, 2.51546208]] * 2, atol=1e-7)


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_identical_components_found_beyond_the_leading_features(xp, ct):
    """The warning's first look compares 8 features: components differing only beyond them must not
    warn, identical ones at D = 20 must, and equal means with other precisions must not."""
    rng = np.random.default_rng(5)
    X = xp.asarray(rng.normal(size=(60, 20)))
    means = np.zeros((3, 20))
    means[1, 15] = 1.0  # the same as component 0 in the first 15 features
    means[2, 0] = 5.0
    prec = np.ones((3, 20)) if ct == "diag" else np.broadcast_to(np.eye(20), (3, 20, 20)).copy()
    start = dict(covariance_type=ct, max_iter=1, weights_init=[1 / 3] * 3, precisions_init=prec)
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message=".*identical components")
        gpuvec.GaussianMixture(3, means_init=means, **start).fit(X)
        means[2] = means[0]
        other = prec.copy()
        other[2] *= 2.0  # equal means, other precisions: EM can separate them
        gpuvec.GaussianMixture(3, means_init=means, **{**start, "precisions_init": other}).fit(X)
    with pytest.warns(UserWarning, match="identical components"):
        gpuvec.GaussianMixture(3, means_init=means, **start).fit(X)


def test_batch_equals_separate_fits(xp):
    rng = np.random.default_rng(1)
    Xb = np.stack([two_blobs(rng, 100, 2) for _ in range(5)])
    starts = [sklearn_start(x, 2, "full") for x in Xb]
    batched_init = {k: xp.asarray(np.stack([s[k] for s in starts])) for k in starts[0]}
    gb = gpuvec.GaussianMixture(2, tol=1e-6, **batched_init).fit(xp.asarray(Xb))
    assert_namespace(gb.means_, xp, np.float64, (5, 2, 2))
    assert_namespace(gb.converged_, xp, bool, (5,))
    rtol = 1e-12 if xp is np else 1e-9  # the GPU's reductions sum in another order
    for b in range(5):
        g1 = gpuvec.GaussianMixture(2, tol=1e-6, **starts[b]).fit(Xb[b])
        assert int(gb.n_iter_[b]) == g1.n_iter_
        np.testing.assert_allclose(to_np(gb.means_[b]), g1.means_, rtol=rtol)
        np.testing.assert_allclose(float(gb.lower_bound_[b]), g1.lower_bound_, rtol=rtol)
        np.testing.assert_allclose(to_np(gb.lower_bounds_[b, : g1.n_iter_]), g1.lower_bounds_, rtol=rtol)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("init", mixture.INIT_PARAMS)
def test_lower_bound_never_decreases(xp, ct, init):
    rng = np.random.default_rng(2)
    Xb = xp.asarray(np.stack([two_blobs(rng, 80, 2) for _ in range(3)]))
    gm = gpuvec.GaussianMixture(3, covariance_type=ct, init_params=init, random_state=0, tol=1e-9, max_iter=40)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mixture.ConvergenceWarning)
        gm.fit(Xb)
    hist = to_np(gm.lower_bounds_)
    for b in range(3):
        h = hist[b, : int(gm.n_iter_[b])]
        assert np.all(np.diff(h) >= -1e-9 * np.abs(h[1:]))


def test_sample_weight_padding_equals_unpadded_fit():
    rng = np.random.default_rng(3)
    X = two_blobs(rng, 60, 2)
    start = sklearn_start(X, 2, "full")
    padded = np.concatenate([X, rng.normal(size=(30, 2)) * 100])
    sw = np.r_[np.ones(len(X)), np.zeros(30)]
    a = gpuvec.GaussianMixture(2, tol=1e-8, **start).fit(X)
    b = gpuvec.GaussianMixture(2, tol=1e-8, **start).fit(padded, sample_weight=sw)
    np.testing.assert_allclose(b.means_, a.means_, rtol=1e-10)
    np.testing.assert_allclose(b.covariances_, a.covariances_, rtol=1e-9)
    assert a.n_iter_ == b.n_iter_


def test_n_init_keeps_best_start():
    X = two_blobs(np.random.default_rng(4), 100, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", mixture.ConvergenceWarning)
        one = [
            gpuvec.GaussianMixture(3, init_params="random", random_state=s, max_iter=20).fit(X).lower_bound_
            for s in range(3)
        ]
        best = gpuvec.GaussianMixture(3, init_params="random", n_init=4, random_state=0, max_iter=20).fit(X)
    assert best.lower_bound_ >= min(one) - 1e-9
    assert best.means_.shape == (3, 2)


def test_float32_input_accumulates_in_float64(xp):
    X = two_blobs(np.random.default_rng(5))
    start = sklearn_start(X, 2, "full")
    a = gpuvec.GaussianMixture(2, **start).fit(xp.asarray(X))
    b = gpuvec.GaussianMixture(2, **start).fit(xp.asarray(X.astype(np.float32)))
    assert abs(a.lower_bound_ - b.lower_bound_) <= 1e-6 * abs(a.lower_bound_)


def test_degenerate_problem_gets_more_regularisation_with_a_warning():
    rng = np.random.default_rng(6)
    good = two_blobs(rng, 50, 2)
    bad = good.copy()
    bad[:, 1] = bad[:, 0]  # two equal features: a singular covariance, below 1e-15 of regularisation
    gm = gpuvec.GaussianMixture(2, reg_covar=1e-16, random_state=0)
    with pytest.warns(UserWarning, match=r"reg_covar raised from \[1e-16\] to \[1e-15\] in problems \[1\]"):
        gm.fit(np.stack([good, bad]))
    assert np.isfinite(gm.means_).all()
    assert gm.reg_covar_[1] == 1e-15 and gm.reg_covar_[0] == 1e-16


def test_reg_covar_zero_on_degenerate_data_raises_as_sklearn():
    rng = np.random.default_rng(6)
    X = two_blobs(rng, 50, 2)
    X[:, 1] = 0.0  # a constant feature
    with pytest.raises(ValueError, match="ill-defined empirical covariance") as sk_error:
        sklearn_mixture.GaussianMixture(2, reg_covar=0.0, random_state=0).fit(X)
    with pytest.raises(ValueError, match="ill-defined empirical covariance") as ours:
        gpuvec.GaussianMixture(2, reg_covar=0.0, random_state=0).fit(X)
    assert str(ours.value) == str(sk_error.value)  # unbatched: sklearn's words exactly


def test_sample_shapes_and_labels(xp):
    X = xp.asarray(two_blobs(np.random.default_rng(7), 200, 2))
    gm = gpuvec.GaussianMixture(2, random_state=0).fit(X)
    S, y = gm.sample(500)
    assert_namespace(S, xp, np.float64, (500, 2))
    assert_namespace(y, xp, None, (500,))
    assert bool((y[1:] >= y[:-1]).all())


def test_sklearn_clone_and_params():
    from sklearn.base import clone

    gm = gpuvec.GaussianMixture(3, covariance_type="diag", tol=1e-4)
    c = clone(gm)
    assert c.get_params() == gm.get_params() and c is not gm
    assert gm.set_params(n_components=4).n_components == 4
    with pytest.raises(ValueError, match="Invalid parameter 'bogus'"):
        gm.set_params(bogus=1)
    assert "covariance_type='diag'" in repr(gm)


def test_usable_in_sklearn_pipeline():
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = two_blobs(np.random.default_rng(8))
    pipe = make_pipeline(StandardScaler(), gpuvec.GaussianMixture(2, random_state=0)).fit(X)
    assert pipe.predict(X).shape == (len(X),)


@pytest.mark.parametrize(
    "kwargs,X,match",
    [
        (dict(covariance_type="block"), None, "covariance_type must be one of"),
        (dict(init_params="magic"), None, "init_params must be one of"),
        (dict(n_components=0), None, r"n_components must be an integer in \[1, inf\]"),
        (dict(), np.array([[np.nan, 1.0]] * 5), "Input X contains NaN"),
        (dict(), np.array([[np.inf, 1.0]] * 5), "Input X contains infinity"),
        (dict(n_components=3), np.zeros((2, 2)), "Expected n_samples >= n_components"),
        (dict(weights_init=[0.5, 0.6]), None, "should be normalized"),
        (dict(means_init=np.zeros((3, 2))), None, r"'means' should have the shape of \(2, 2\)"),
        (dict(precisions_init=np.zeros((2, 2))), None, "'full precision' should have the shape"),
        (dict(), np.zeros(5), "Expected 2D array"),
    ],
)
def test_bad_input_messages(kwargs, X, match):
    params = dict(n_components=2)
    params.update(kwargs)
    X = np.random.default_rng(0).normal(size=(20, 2)) if X is None else X
    with pytest.raises(ValueError, match=match):
        gpuvec.GaussianMixture(**params).fit(X)


def test_predict_before_fit_is_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        gpuvec.GaussianMixture(2).predict(np.zeros((3, 2)))


def test_functional_core_e_and_m_steps_round_trip(xp):
    X = xp.asarray(two_blobs(np.random.default_rng(9))[None])
    resp = np.zeros((1, X.shape[1], 2))
    resp[0, :300, 0] = resp[0, 300:, 1] = 1
    params = mixture.m_step(X, xp.log(xp.asarray(resp) + 1e-300), 1e-6, "full")
    log_resp, log_norm = mixture.e_step(X, params.weights, params.means, params.precisions_cholesky, "full")
    assert_namespace(log_resp, xp, np.float64, (1, 600, 2))
    assert_namespace(log_norm, xp, np.float64, (1, 600))
    new, lb = mixture.em_pass(X, params, xp.asarray([1e-6]), "full")
    np.testing.assert_allclose(to_np(lb), to_np(log_norm.mean(-1)), rtol=1e-12)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_chunked_pass_equals_one_pass(monkeypatch, ct):
    rng = np.random.default_rng(10)
    X = np.stack([two_blobs(rng, 40, 3) for _ in range(4)])
    sw = rng.random((4, 80))
    start = mixture.m_step(X, np.log(rng.dirichlet(np.ones(3), size=(4, 80))), 1e-6, ct)
    whole, lb_whole = mixture.em_pass(X, start, np.full(4, 1e-6), ct, sw)
    for budget in (50, 300, 2000):  # slices of one problem's samples; groups of problems
        monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "mixture", (budget, budget))
        part, lb_part = mixture.em_pass(X, start, np.full(4, 1e-6), ct, sw)
        np.testing.assert_allclose(lb_part, lb_whole, rtol=1e-12)
        for a, b in zip(part, whole):
            np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-12)


def test_sklearn_check_estimator_passes():
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(gpuvec.GaussianMixture(), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results if r["status"] == "failed"]
    assert len(results) > 30 and failed == []


def test_sparse_and_complex_inputs_are_refused_clearly():
    import scipy.sparse

    with pytest.raises(TypeError, match=r"Sparse data.*X\.toarray\(\)"):
        gpuvec.GaussianMixture(1).fit(scipy.sparse.csr_matrix(np.eye(3)))
    with pytest.raises(ValueError, match="Complex data not supported"):
        gpuvec.GaussianMixture(1).fit(np.eye(3) + 1j)


def test_problem_that_overflows_raises_naming_it_and_saying_how_to_fix():
    rng = np.random.default_rng(13)
    good = two_blobs(rng, 50, 2)
    bad = good * 1e160  # its covariances overflow to inf: no regularisation rescues them
    gm = gpuvec.GaussianMixture(2, random_state=0)
    with pytest.raises(ValueError, match=r"problems \[1\].*scale the input data"):
        gm.fit(np.stack([good, bad]))
    assert not hasattr(gm, "means_")  # nothing half-fitted to predict with


def test_greedy_kmeans_plus_plus_finds_separated_clusters_for_every_seed():
    """One D^2 draw per centre put two centres in one cluster for 4 seeds in 10 here (EM then ends 0.17 to
    0.3 nats worse); the best of 2 + log(K) candidates finds the eight clusters for all ten."""
    centers = np.random.default_rng(0).normal(0, 6, (8, 8))
    rng = np.random.default_rng(1)
    X = centers[rng.integers(0, 8, 10_000)] + rng.normal(size=(10_000, 8))
    scores = [gpuvec.GaussianMixture(8, random_state=seed).fit(X).score(X) for seed in range(10)]
    assert max(scores) - min(scores) < 1e-6, scores
