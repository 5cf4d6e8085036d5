"""BayesianGaussianMixture on dask arrays against the in-memory fit: (N, D) split along N (the client-driven
variational loop), (B, N, D) split along B (one in-memory fit per block) and along N, the predictions, a
real 2-process cluster. Exactness runs on the synchronous scheduler (tests/conftest.py's ``sync``)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

da = pytest.importorskip("dask.array")

import gpuvec  # noqa: E402
from gpuvec.mixture import _dask as _dask_mixture  # noqa: E402

COV_TYPES = ["full", "tied", "diag", "spherical"]
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]
ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_cholesky_", "mean_precision_",
              "degrees_of_freedom_", "mean_prior_", "covariance_prior_")  # fmt: skip


def blobs(D=3, seed=0, n=(150, 110, 90), spread=6.0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(rng.normal(0, spread, D), 1.0 + 0.2 * i, (m, D)) for i, m in enumerate(n)])


def fit_quietly(est, X, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return est.fit(X, **kwargs)


def assert_same_fit(got, want, rtol=1e-8):
    for name in ATTRIBUTES:
        g, w = getattr(got, name), getattr(want, name)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=1e-10, err_msg=name)
        assert isinstance(g, (np.ndarray, float)), name
    for g, w in zip(np.atleast_2d(got.weight_concentration_), np.atleast_2d(want.weight_concentration_)):
        np.testing.assert_allclose(g, w, rtol=rtol)
    np.testing.assert_array_equal(got.n_iter_, want.n_iter_)
    np.testing.assert_array_equal(got.converged_, want.converged_)
    np.testing.assert_allclose(got.lower_bound_, want.lower_bound_, rtol=1e-10)


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
def test_rows_split_equals_the_in_memory_fit(sync, ct, prior_type, weighted):
    X = blobs()
    w = np.random.default_rng(5).uniform(0.2, 3.0, len(X)) if weighted else None
    params = dict(covariance_type=ct, weight_concentration_prior_type=prior_type, random_state=0, n_init=2)
    want = fit_quietly(gpuvec.BayesianGaussianMixture(5, **params), X, sample_weight=w)
    dw = None if w is None else da.from_array(w, chunks=97)
    got = fit_quietly(gpuvec.BayesianGaussianMixture(5, **params), da.from_array(X, chunks=(97, 3)), sample_weight=dw)
    assert_same_fit(got, want)
    assert got.lower_bounds_ == pytest.approx(want.lower_bounds_, rel=1e-10)


def test_rows_split_with_edge_chunks(sync, edge_chunked):
    X = blobs(seed=2)
    want = fit_quietly(gpuvec.BayesianGaussianMixture(4, random_state=1), X)
    got = fit_quietly(gpuvec.BayesianGaussianMixture(4, random_state=1), edge_chunked(X))
    assert_same_fit(got, want)


def test_rows_split_passes_once_per_iteration(sync, monkeypatch):
    X = blobs(seed=4)
    calls = []
    real = _dask_mixture.split_pass
    monkeypatch.setattr(_dask_mixture, "split_pass", lambda *a: calls.append(1) or real(*a))
    got = fit_quietly(gpuvec.BayesianGaussianMixture(3, random_state=0, max_iter=7, tol=0), da.from_array(X, chunks=80))
    assert got.n_iter_ == 7 and len(calls) == 7 + 1  # the iterations and the data's covariance (default prior)
    calls.clear()
    fit_quietly(gpuvec.BayesianGaussianMixture(3, random_state=0, max_iter=7, tol=0, covariance_prior=np.eye(3)),
                da.from_array(X, chunks=80))  # fmt: skip
    assert len(calls) == 7


def test_rows_random_init_on_a_sample_of_large_n(sync, monkeypatch):
    X = blobs(seed=6, n=(400, 300, 200))
    monkeypatch.setattr(_dask_mixture, "INIT_SAMPLE_ROWS", 120)
    got = fit_quietly(gpuvec.BayesianGaussianMixture(6, random_state=0, max_iter=300), da.from_array(X, chunks=211))
    want = fit_quietly(gpuvec.BayesianGaussianMixture(6, random_state=0, max_iter=300), X)
    assert got.converged_
    assert (got.weights_ > 0.05).sum() == (want.weights_ > 0.05).sum() == 3
    assert got.lower_bound_ >= want.lower_bound_ - 1e-3 * abs(want.lower_bound_)  # another start, as good
    # the start's sums stand for all 900 rows, not the 120 of the sample: sum(mean_precision_) = K + N
    start = fit_quietly(gpuvec.BayesianGaussianMixture(6, random_state=0, max_iter=0), da.from_array(X, chunks=211))
    assert start.mean_precision_.sum() == pytest.approx(6 + 900, rel=1e-12)


@pytest.mark.parametrize("ct", ["full", "diag"])
def test_batched_blocks_equal_the_in_memory_fit_with_per_problem_priors(sync, ct):
    X = np.stack([blobs(2, seed=s, n=(60, 50, 40)) for s in range(5)])
    mean_prior = X.mean(1) + 0.5  # given per problem: each block takes its problems' rows
    params = dict(covariance_type=ct, mean_prior=mean_prior, degrees_of_freedom_prior=np.arange(5) + 2.0)
    # explicit starts are not BayesianGaussianMixture's: a block fits with its own seed, so compare per
    # block against the in-memory fit of that block with the seed the dask fit gave it
    got = fit_quietly(gpuvec.BayesianGaussianMixture(4, init_params="k-means++", random_state=3, **params),
                      da.from_array(X, chunks=(2, -1, -1)))  # fmt: skip
    seeds = np.random.default_rng(3).integers(0, 2**62, size=3)
    for block, (lo, hi) in enumerate([(0, 2), (2, 4), (4, 5)]):
        part = {**params, "mean_prior": mean_prior[lo:hi], "degrees_of_freedom_prior": np.arange(5)[lo:hi] + 2.0}
        want = fit_quietly(gpuvec.BayesianGaussianMixture(4, init_params="k-means++", random_state=int(seeds[block]),
                                                          **part), X[lo:hi])  # fmt: skip
        for name in ATTRIBUTES + ("lower_bound_", "n_iter_"):
            np.testing.assert_allclose(getattr(got, name)[lo:hi], getattr(want, name), rtol=1e-12, err_msg=name)
    assert got.degrees_of_freedom_prior_.tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]


def test_batched_dirichlet_process_blocks_keep_both_concentrations(sync):
    X = np.stack([blobs(2, seed=s, n=(50, 40, 30)) for s in range(3)])
    got = fit_quietly(gpuvec.BayesianGaussianMixture(3, random_state=0), da.from_array(X, chunks=(1, -1, -1)))
    a, b = got.weight_concentration_
    assert a.shape == b.shape == (3, 3) and got.lower_bounds_.shape[0] == 3
    assert got.predict(X).shape == (3, 120)


@pytest.mark.parametrize("ct", ["tied", "spherical"])
def test_batched_with_n_split_equals_in_memory(sync, ct):
    X = np.stack([blobs(2, seed=s, n=(60, 50, 40)) for s in range(3)])
    params = dict(covariance_type=ct, random_state=2, weight_concentration_prior_type="dirichlet_distribution")
    want = fit_quietly(gpuvec.BayesianGaussianMixture(4, **params), X)
    got = fit_quietly(gpuvec.BayesianGaussianMixture(4, **params), da.from_array(X, chunks=(2, 70, -1)))
    assert_same_fit(got, want)


def test_warm_start_goes_on_by_the_rows_loop(sync):
    X = blobs(seed=8)
    want = gpuvec.BayesianGaussianMixture(3, random_state=0, max_iter=3, warm_start=True)
    got = gpuvec.BayesianGaussianMixture(3, random_state=0, max_iter=3, warm_start=True)
    for _ in range(2):
        fit_quietly(want, X)
        fit_quietly(got, da.from_array(X, chunks=101))
    assert_same_fit(got, want)


@pytest.mark.parametrize("batched", [False, True])
def test_predictions_are_lazy_and_equal_in_memory(sync, batched):
    X = np.stack([blobs(seed=s) for s in range(2)]) if batched else blobs()
    bgm = fit_quietly(gpuvec.BayesianGaussianMixture(4, random_state=0), X)
    dX = da.from_array(X, chunks=(1, 90, 3) if batched else (90, 3))
    for method in ("predict", "predict_proba", "score_samples"):
        lazy = getattr(bgm, method)(dX)
        assert isinstance(lazy, da.Array), method
        np.testing.assert_allclose(lazy.compute(), getattr(bgm, method)(X), rtol=1e-12, err_msg=method)
    np.testing.assert_allclose(bgm.score(dX), bgm.score(X), rtol=1e-12)
    np.testing.assert_array_equal(bgm.fit_predict(dX).compute(), bgm.predict(X))


def test_float32_gives_float32_attributes(sync):
    X = blobs().astype(np.float32)
    got = fit_quietly(gpuvec.BayesianGaussianMixture(3, random_state=0), da.from_array(X, chunks=100))
    want = fit_quietly(gpuvec.BayesianGaussianMixture(3, random_state=0), X)
    assert got.means_.dtype == want.means_.dtype == np.float32
    np.testing.assert_allclose(got.means_, want.means_, rtol=1e-6)


def test_refusals_name_the_problem(sync):
    X = da.from_array(blobs(), chunks=100)
    with pytest.raises(ValueError, match="weight_concentration_prior_type must be one of"):
        gpuvec.BayesianGaussianMixture(2, weight_concentration_prior_type="beta").fit(X)
    with pytest.raises(ValueError, match="minimum of 2 is required"):
        gpuvec.BayesianGaussianMixture(1).fit(X[:1])
    with pytest.raises(ValueError, match="at least 2 samples"):
        gpuvec.BayesianGaussianMixture(1).fit(X, sample_weight=np.where(np.arange(X.shape[0]) == 3, 1.0, 0.0))
    with pytest.raises(ValueError, match="contains NaN"):
        gpuvec.BayesianGaussianMixture(2).fit(da.from_array(np.full((10, 2), np.nan), chunks=5))
    with pytest.raises(ValueError, match="features"):
        gpuvec.BayesianGaussianMixture(2, random_state=0).fit(X).predict(da.ones((5, 4), chunks=5))


def test_two_process_cluster_equals_in_memory():
    distributed = pytest.importorskip("distributed")
    X = blobs(seed=9)
    want = fit_quietly(gpuvec.BayesianGaussianMixture(3, random_state=0), X)
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None)
    with cluster, distributed.Client(cluster):
        got = fit_quietly(gpuvec.BayesianGaussianMixture(3, random_state=0), da.from_array(X, chunks=120))
        labels = got.predict(da.from_array(X, chunks=120)).compute()
    assert_same_fit(got, want)
    np.testing.assert_array_equal(labels, want.predict(X))


def test_cupy_chunks_fit_on_the_device_and_come_back_as_numpy(cp, sync):
    X = blobs(seed=10)
    want = fit_quietly(gpuvec.BayesianGaussianMixture(3, random_state=0), X)
    Xd = da.from_array(cp.asarray(X), chunks=(130, -1))
    got = fit_quietly(gpuvec.BayesianGaussianMixture(3, random_state=0), Xd)
    assert_same_fit(got, want, rtol=1e-7)  # numpy attributes; the device sums in another order
    labels = got.predict(Xd)
    assert isinstance(labels._meta, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(labels.compute()), want.predict(X))
    XB = np.stack([blobs(2, seed=s) for s in range(3)])
    batch = fit_quietly(
        gpuvec.BayesianGaussianMixture(3, random_state=0), da.from_array(cp.asarray(XB), chunks=(2, -1, -1))
    )
    assert isinstance(batch.means_, np.ndarray) and batch.means_.shape == (3, 3, 2)


@pytest.mark.parametrize(
    ("params", "error", "match"),
    [
        (
            {"mean_prior": np.array([[9.0, 9.0], [-9.0, -9.0]])},
            ValueError,
            r"mean_prior must have shape \(2,\) or \(4, 2\)",
        ),
        ({"mean_prior": np.zeros((5, 2))}, ValueError, r"shape \(2,\) or \(4, 2\); got shape \(5, 2\)"),
        ({"weight_concentration_prior": np.array([0.5])}, ValueError, r"shape \(\) or \(4,\)"),
        ({"weight_concentration_prior": [0.5] * 4}, TypeError, "must be a real number"),
        ({"mean_precision_prior": 1 + 2j}, TypeError, "must be a real number"),
        ({"mean_precision_prior": np.array([1 + 2j] * 4)}, TypeError, "must be real"),
        (
            {"covariance_prior": np.ones((4, 3))},
            ValueError,
            r"diag covariance_prior must have shape \(2,\) or \(4, 2\)",
        ),
    ],
)
def test_batched_blocks_check_the_priors_as_the_in_memory_fit(sync, params, error, match):
    """Checked on the client against all B problems: a block of 2 problems must not take a (2, ...) prior
    meant for nobody, nor name its own shapes."""
    X = np.random.default_rng(0).normal(size=(4, 100, 2))
    params = {"covariance_type": "diag", **params}
    with pytest.raises(error, match=match):
        gpuvec.BayesianGaussianMixture(2, **params).fit(X)
    with pytest.raises(error, match=match):
        gpuvec.BayesianGaussianMixture(2, **params).fit(da.from_array(X, chunks=(2, -1, -1)))


def test_random_from_data_start_on_a_sample_is_not_scaled(sync, monkeypatch):
    """random_from_data starts from K rows, one each, whatever N: its sums stand for no other rows."""
    X = blobs(seed=11, n=(300, 300, 300))
    monkeypatch.setattr(_dask_mixture, "INIT_SAMPLE_ROWS", 90)
    got = fit_quietly(gpuvec.BayesianGaussianMixture(4, init_params="random_from_data", max_iter=0, random_state=0),
                      da.from_array(X, chunks=300))  # fmt: skip
    np.testing.assert_allclose(got.mean_precision_, [2.0] * 4, rtol=1e-12)  # 1 (the prior) + 1 row, not 10
