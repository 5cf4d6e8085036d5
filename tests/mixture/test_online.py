"""GaussianMixture.partial_fit: stepwise EM on the running sufficient statistics.

The step schedule, the first call, partial_fit after fit, every covariance type, batches of problems,
float32, streams (stationary and drifting, with the memory they cost), dask chunks in order, bad values.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import linear_sum_assignment

import gpuvec
from gpuvec.mixture import MixtureParams, params_from_statistics
from gpuvec.mixture._covariance import COVARIANCE_TYPES
from gpuvec.mixture._online import per_unit_weight, stats_from_params, step_size

COV_TYPES = ["full", "tied", "diag", "spherical"]


def clusters(K=4, D=3, seed=0, spread=6.0):
    return np.random.default_rng(seed).normal(0, spread, (K, D))


def draw(centers, n, rng, shift=0.0):
    return centers[rng.integers(0, len(centers), n)] + shift + rng.normal(size=(n, centers.shape[1]))


def matched_error(means, truth):
    """The largest distance between a fitted mean and its true centre, under the best matching."""
    cost = np.linalg.norm(means[:, None] - truth[None], axis=-1)
    rows, cols = linear_sum_assignment(cost)
    return cost[rows, cols].max()


def explicit_start(X, K, ct, rng):
    D = X.shape[-1]
    tail = COVARIANCE_TYPES[ct].precision_shape(K, D)
    prec = np.broadcast_to(np.eye(D), tail).copy() if ct in ("full", "tied") else np.ones(tail)
    means = X[rng.choice(len(X), K, replace=False)]
    return {"weights_init": np.full(K, 1 / K), "means_init": means, "precisions_init": prec}


# --------------------------------------------------------------------------- the step schedule


def test_step_size_is_ldas_schedule():
    assert step_size(1, 10.0, 0.7) == pytest.approx(11.0**-0.7)
    assert step_size(5, 0.0, 1.0) == pytest.approx(0.2)
    steps = [step_size(t, 10.0, 0.7) for t in range(1, 100)]
    assert all(a > b for a, b in zip(steps, steps[1:]))  # decreasing


@pytest.mark.parametrize("ct", COV_TYPES)
def test_each_call_moves_the_running_statistics_by_the_step(ct):
    rng = np.random.default_rng(1)
    centers = clusters()
    gm = gpuvec.GaussianMixture(4, covariance_type=ct, random_state=0, learning_offset=3.0, learning_decay=0.8)
    gm.partial_fit(draw(centers, 500, rng))
    assert gm.n_steps_ == 1
    old = gm.sufficient_stats_
    params = MixtureParams(
        *(
            np.asarray(a, dtype=np.float64)[None]
            for a in (gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)
        )
    )
    batch = draw(centers, 700, rng)
    expected_batch = per_unit_weight(np, gpuvec.mixture.sufficient_statistics(batch[None], params, ct, None, old.shift))
    gm.partial_fit(batch)
    rho = (3.0 + 1) ** -0.8
    assert gm.n_steps_ == 2
    for name in ("nk", "sx", "sxx"):
        want = (1 - rho) * getattr(old, name) + rho * getattr(expected_batch, name)
        np.testing.assert_allclose(getattr(gm.sufficient_stats_, name), want, rtol=1e-12, atol=1e-14)
    new = params_from_statistics(gm.sufficient_stats_, gm.reg_covar_, ct)
    np.testing.assert_allclose(gm.means_, new.means[0], rtol=1e-12)
    assert gm.lower_bound_ == pytest.approx(float(expected_batch.log_likelihood[0]), rel=1e-12)


# --------------------------------------------------------------------------- first call, after fit


@pytest.mark.parametrize("ct", COV_TYPES)
def test_first_call_fits_its_batch_then_takes_its_statistics_whole(ct):
    """From the same explicit start, partial_fit(max_iter=m) is fit's m iterations on the batch and one more
    (the batch's statistics under that fit, rho = 1): fit(max_iter=m + 1, tol=0)."""
    rng = np.random.default_rng(2)
    X = draw(clusters(), 800, rng)
    start = explicit_start(X, 4, ct, rng)
    with pytest.warns(gpuvec.mixture.ConvergenceWarning):
        online = gpuvec.GaussianMixture(4, covariance_type=ct, max_iter=2, tol=0, **start).partial_fit(X)
    with pytest.warns(gpuvec.mixture.ConvergenceWarning):
        batch = gpuvec.GaussianMixture(4, covariance_type=ct, max_iter=3, tol=0, **start).fit(X)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(online, name), getattr(batch, name), rtol=1e-9, atol=1e-12, err_msg=name)
    assert online.n_steps_ == 1


def test_first_call_takes_n_init_starts():
    """A bad start on the first batch is what online EM cannot leave: the first call honours n_init."""
    centers = clusters(8, 8)
    X = draw(centers, 5000, np.random.default_rng(1))
    scores = {
        n_init: gpuvec.GaussianMixture(8, n_init=n_init, random_state=0).partial_fit(X).score(X) for n_init in (1, 4)
    }
    best = gpuvec.GaussianMixture(8, n_init=4, random_state=0).fit(X)
    assert scores[4] >= scores[1] - 1e-9
    assert scores[4] == pytest.approx(best.score(X), abs=1e-3)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_the_statistics_a_model_stands_for_give_it_back(ct):
    X = draw(clusters(), 2000, np.random.default_rng(3))
    gm = gpuvec.GaussianMixture(4, covariance_type=ct, random_state=0, reg_covar=1e-3).fit(X)
    params = MixtureParams(*(a[None] for a in (gm.weights_, gm.means_, gm.covariances_, gm.precisions_cholesky_)))
    reg = np.array([gm.reg_covar_])
    stats = stats_from_params(np, params, reg, ct, np.full((1, 1, 3), 0.5))
    back = params_from_statistics(stats, reg, ct)
    np.testing.assert_allclose(back.weights[0], gm.weights_, rtol=1e-12)
    np.testing.assert_allclose(back.means[0], gm.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(back.covariances[0], gm.covariances_, rtol=1e-10, atol=1e-12)


def test_partial_fit_after_fit_goes_on_from_the_fitted_model():
    rng = np.random.default_rng(4)
    centers = clusters()
    X = draw(centers, 5000, rng)
    gm = gpuvec.GaussianMixture(4, random_state=0).fit(X)
    fitted = gm.means_.copy()
    gm.partial_fit(draw(centers, 200, rng))  # one small batch moves the model by a step of 11**-0.7
    assert gm.n_steps_ == 2
    assert matched_error(gm.means_, fitted) < 0.15
    gm.fit(X)  # a fit ends the stream: its state is gone
    assert not hasattr(gm, "sufficient_stats_") and not hasattr(gm, "n_steps_")


# --------------------------------------------------------------------------- streams


def test_stationary_stream_reaches_the_batch_fit():
    K, D = 8, 8
    centers = clusters(K, D)
    test = draw(centers, 20_000, np.random.default_rng(99))
    rng = np.random.default_rng(1)
    gm = gpuvec.GaussianMixture(K, n_init=3, random_state=0)
    seen = []
    for _ in range(40):
        batch = draw(centers, 5000, rng)
        seen.append(batch)
        gm.partial_fit(batch)
    batch_fit = gpuvec.GaussianMixture(K, n_init=3, random_state=0).fit(np.concatenate(seen))
    assert gm.score(test) > batch_fit.score(test) - 0.02


def test_drifting_stream_is_followed():
    centers = np.array([[0.0, 0.0, 0.0], [8.0, 0.0, 0.0], [0.0, 8.0, 0.0], [0.0, 0.0, 8.0]])
    rng = np.random.default_rng(2)
    lag = {}
    for decay in (0.7, 0.6):  # the default keeps ~15% of the first half after 30 more steps; 0.6 ~3%
        gm = gpuvec.GaussianMixture(4, random_state=0, learning_decay=decay)
        for i in range(60):
            gm.partial_fit(draw(centers, 3000, rng, shift=0.0 if i < 30 else 2.0))
        lag[decay] = matched_error(gm.means_, centers + 2.0)
    assert lag[0.6] < 0.25 < lag[0.7] < 0.75, lag
    batch = gpuvec.GaussianMixture(4, random_state=0).fit(
        np.concatenate([draw(centers, 20_000, rng), draw(centers, 20_000, rng, 2.0)])
    )
    assert matched_error(batch.means_, centers + 2.0) > 0.5  # the batch fit averages the two halves


def test_a_stream_costs_what_one_batch_costs():
    import tracemalloc

    centers = clusters(8, 8)
    rng = np.random.default_rng(5)
    gm = gpuvec.GaussianMixture(8, random_state=0).partial_fit(draw(centers, 10_000, rng))
    batches = [draw(centers, 10_000, rng) for _ in range(3)]
    tracemalloc.start()
    for i in range(30):
        gm.partial_fit(batches[i % 3])
        if i == 0:
            after_one = tracemalloc.get_traced_memory()[0]
    grown = tracemalloc.get_traced_memory()[0] - after_one
    tracemalloc.stop()
    assert grown < 100_000, grown  # bytes kept across 29 more steps: nothing of past batches


@pytest.mark.parametrize("ct", COV_TYPES)
def test_batched_minibatches_recover_each_problems_means(ct):
    B, K, D = 20, 2, 2
    rng = np.random.default_rng(6)
    truth = rng.normal(0, 3, (B, 1, D)) + np.array([[-4.0, 0.0], [4.0, 0.0]])  # two clusters 8 apart
    gm = gpuvec.GaussianMixture(K, covariance_type=ct, random_state=0)
    for _ in range(15):
        labels = rng.integers(0, K, (B, 400))
        X = np.take_along_axis(truth, labels[..., None], axis=1) + rng.normal(size=(B, 400, D))
        gm.partial_fit(X)
    errors = [matched_error(gm.means_[b], truth[b]) for b in range(B)]
    assert max(errors) < 0.3, errors


def test_zero_weight_problems_stay_as_they_were():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(3, 300, 2)) + np.array([0.0, 5.0, 10.0])[:, None, None]
    gm = gpuvec.GaussianMixture(2, random_state=0).partial_fit(X)
    before = gm.means_.copy()
    w = np.ones((3, 300))
    w[1] = 0.0  # problem 1 has nothing in this batch
    gm.partial_fit(rng.normal(size=(3, 300, 2)) + 20.0, sample_weight=w)
    np.testing.assert_array_equal(gm.means_[1], before[1])
    assert not np.allclose(gm.means_[0], before[0])


def test_float32_is_kept():
    X = draw(clusters(), 1000, np.random.default_rng(8)).astype(np.float32)
    gm = gpuvec.GaussianMixture(4, random_state=0).partial_fit(X).partial_fit(X)
    assert gm.means_.dtype == gm.covariances_.dtype == np.float32
    assert gm.sufficient_stats_.sxx.dtype == np.float64


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"learning_decay": 0.5}, r"learning_decay must be a float in the range \(0\.5, 1\.0\]; got 0\.5"),
        ({"learning_decay": 1.5}, r"learning_decay must be a float in the range \(0\.5, 1\.0\]"),
        ({"learning_offset": -1.0}, r"learning_offset must be a float >= 0; got -1\.0"),
    ],
)
def test_bad_schedule_values_are_refused(params, match):
    X = np.random.default_rng(0).normal(size=(50, 2))
    with pytest.raises(ValueError, match=match):
        gpuvec.GaussianMixture(2, **params).partial_fit(X)
    with pytest.raises(TypeError, match="learning_decay must be a real number"):
        gpuvec.GaussianMixture(2, learning_decay="fast").partial_fit(X)


def test_later_batches_must_match_the_first():
    gm = gpuvec.GaussianMixture(2, random_state=0).partial_fit(np.random.default_rng(0).normal(size=(50, 2)))
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        gm.partial_fit(np.zeros((10, 3)))
    with pytest.raises(ValueError, match=r"X must have shape \(N, D\) as in fit"):
        gm.partial_fit(np.zeros((2, 10, 2)))


# --------------------------------------------------------------------------- dask


def test_dask_array_is_one_step_per_chunk_in_order(sync):
    da = pytest.importorskip("dask.array")
    X = draw(clusters(), 3000, np.random.default_rng(9))
    w = np.random.default_rng(10).random(3000)
    chunks = (700, 300, 1200, 800)
    lazy = gpuvec.GaussianMixture(4, random_state=0).partial_fit(
        da.from_array(X, chunks=(chunks, 3)), sample_weight=da.from_array(w, chunks=1000)
    )
    eager = gpuvec.GaussianMixture(4, random_state=0)
    start = 0
    for n in chunks:
        eager.partial_fit(X[start : start + n], sample_weight=w[start : start + n])
        start += n
    assert lazy.n_steps_ == eager.n_steps_ == 4
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(lazy, name), getattr(eager, name), rtol=1e-10, err_msg=name)


def test_dask_batched_minibatches(sync):
    da = pytest.importorskip("dask.array")
    X = np.random.default_rng(11).normal(size=(4, 900, 2)) + np.arange(4.0)[:, None, None] * 10
    lazy = gpuvec.GaussianMixture(2, random_state=0).partial_fit(da.from_array(X, chunks=(2, 300, 2)))
    eager = gpuvec.GaussianMixture(2, random_state=0)
    for s in range(0, 900, 300):
        eager.partial_fit(X[:, s : s + 300])
    np.testing.assert_allclose(lazy.means_, eager.means_, rtol=1e-10)


def test_running_statistics_of_another_shape_are_refused_by_name():
    rng = np.random.default_rng(71)
    X = rng.normal(size=(200, 3))
    gm = gpuvec.GaussianMixture(2, covariance_type="spherical", random_state=0).partial_fit(X)
    stats = gm.sufficient_stats_
    # 'spherical' statistics keep sum r |z|^2 per component (K,); per-feature ones (K, D) are not theirs
    gm.sufficient_stats_ = type(stats)(*stats[:2], np.repeat(np.asarray(stats.sxx)[..., None], 3, -1), *stats[3:])
    with pytest.raises(ValueError, match=r"sufficient_stats_.sxx has shape \(1, 2, 3\); expected \(1, 2\)"):
        gm.partial_fit(X)
