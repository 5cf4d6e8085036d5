"""GaussianMixture on the CPU: chunking, float32, memory, thread pools and forked children.

The compiled loops against the numpy reference: test_implementations.py. gpuvec._core.threads' BLAS
limiter and thread count: tests/core/test_threads.py.
"""

from __future__ import annotations

import threading
import tracemalloc
import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

import gpuvec
from gpuvec import mixture
from gpuvec._core import dispatch
from gpuvec.mixture import _starts as _mixture_init
from gpuvec.random import default_rng
from tests.mixture.helpers import blobs, quiet_fit, start_params

pytest.importorskip("numba")
COV_TYPES = ["full", "tied", "diag", "spherical"]


# --------------------------------------------------------------------------- chunking


@pytest.mark.parametrize("jit", ["0", "1"])
@pytest.mark.parametrize("init", ["k-means++", "kmeans", "random"])
def test_chunked_and_unchunked_fits_agree(monkeypatch, jit, init):
    rng = np.random.default_rng(45)
    X = blobs(rng, B=2, n=300, D=3)
    sw = rng.random(X.shape[:2])
    monkeypatch.setenv("GPUVEC_JIT", jit)
    fits = []
    for budget in (1 << 30, 200):  # everything at once; a few samples per chunk
        monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "mixture", (budget, budget))
        gm = quiet_fit(
            gpuvec.GaussianMixture(3, init_params=init, random_state=2, tol=1e-8, max_iter=40), X, sample_weight=sw
        )
        fits.append((gm, gm.predict(X), gm.predict_proba(X), gm.score_samples(X)))
    (a, la, pa, sa), (b, lb, pb, sb) = fits
    np.testing.assert_array_equal(a.n_iter_, b.n_iter_)
    for name in ("weights_", "means_", "covariances_", "lower_bound_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-9, atol=1e-11, err_msg=name)
    np.testing.assert_array_equal(lb, la)
    np.testing.assert_allclose(pb, pa, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(sb, sa, rtol=1e-12)


def test_chunked_sampling_index_is_the_cumsum_rule_bit_for_bit(monkeypatch):
    rng = np.random.default_rng(46)
    p = rng.random((3, 1000))
    p[1] = 0.0  # sums to zero: uniform
    expected_rng, got_rng = default_rng(5), default_rng(5)
    pp = np.where(p.sum(1, keepdims=True) > 0, p, 1.0)
    cdf = np.cumsum(pp, axis=1)
    u = expected_rng.random((3, 1)) * cdf[:, -1:]
    expected = np.minimum((cdf <= u).sum(1), 999)
    monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "mixture", (97, 97))  # chunks of 32 samples
    np.testing.assert_array_equal(_mixture_init._sample_index(np, p, got_rng), expected)


def test_initial_resp_is_the_one_hot_of_initial_labels():
    X = blobs(np.random.default_rng(47), B=2, n=100)
    for method in _mixture_init.LABEL_METHODS:
        labels = _mixture_init.initial_labels(np, X, 3, method, default_rng(3))
        resp = _mixture_init.initial_resp(np, X, 3, method, default_rng(3))
        np.testing.assert_array_equal(resp, labels[..., None] == np.arange(3))


def test_fit_predict_memory_stays_below_the_data(monkeypatch):
    # No copy of X, no (N, K, D) or (N, D, D) temporaries: numpy's traced allocations stay under X's size
    # (labels, k-means++ distances and the chunks; numba's compiled code is not traced).
    X = blobs(np.random.default_rng(48), B=1, n=400_000, D=4, K=3)[0]
    gm = gpuvec.GaussianMixture(3, random_state=0, max_iter=2)
    quiet_fit(gm, X[:1000])
    monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "mixture", (1 << 14, 1 << 14))  # chunks small next to X
    for jit in ("0", "1"):
        monkeypatch.setenv("GPUVEC_JIT", jit)
        quiet_fit(gm, X[:1000])  # compiled code loaded before tracing
        gm.predict_proba(X[:1000])
        tracemalloc.start()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm.fit_predict(X)
            fit_peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.reset_peak()
            proba = gm.predict_proba(X)
            proba_peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert fit_peak < 0.8 * X.nbytes, (jit, fit_peak / X.nbytes)
        assert proba_peak < proba.nbytes + 0.1 * X.nbytes, (jit, proba_peak / X.nbytes)


# --------------------------------------------------------------------------- float32


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("jit", ["0", "1"])
def test_float32_fits_stay_float32(monkeypatch, ct, jit):
    monkeypatch.setenv("GPUVEC_JIT", jit)
    X32 = blobs(np.random.default_rng(49), B=1, n=500, D=3, dtype=np.float32)[0] + np.float32(1e3)
    gm = quiet_fit(gpuvec.GaussianMixture(3, covariance_type=ct, random_state=0, max_iter=30), X32)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        assert getattr(gm, name).dtype == np.float32, name
    assert gm.predict_proba(X32).dtype == np.float32
    assert gm.score_samples(X32).dtype == np.float32
    gm64 = quiet_fit(gpuvec.GaussianMixture(3, covariance_type=ct, random_state=0, max_iter=30), X32.astype(np.float64))
    np.testing.assert_allclose(gm.means_, gm64.means_, rtol=1e-5)  # the same fit: EM sums in float64 either way


def test_float32_data_is_not_copied_to_float64(monkeypatch):
    X32 = blobs(np.random.default_rng(50), B=1, n=200_000, D=4, dtype=np.float32)[0]
    monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "mixture", (1 << 14, 1 << 14))  # chunks small next to X
    gm = gpuvec.GaussianMixture(3, random_state=0, max_iter=2)
    quiet_fit(gm, X32)  # compiled code loaded before tracing
    tracemalloc.start()
    try:
        quiet_fit(gm, X32)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < X32.nbytes * 2  # a float64 copy alone would be twice X


# --------------------------------------------------------------------------- threads


@pytest.mark.filterwarnings("ignore:Best performing initialization")  # catch_warnings is not thread-safe
def test_fits_in_a_thread_pool_equal_the_main_thread_fit(monkeypatch):
    monkeypatch.setenv("GPUVEC_JIT", "1")
    rng = np.random.default_rng(51)
    data = [blobs(rng, B=1, n=3000, D=3)[0] for _ in range(4)]

    def fit(X):
        gm = quiet_fit(gpuvec.GaussianMixture(3, random_state=0, max_iter=20), X)
        return gm.means_, threading.current_thread() is threading.main_thread()

    main = [fit(X)[0] for X in data]
    with ThreadPoolExecutor(4) as pool:
        pooled = list(pool.map(fit, data))
    for m, (p, was_main) in zip(main, pooled, strict=True):
        assert not was_main
        np.testing.assert_allclose(p, m, rtol=1e-12)


def test_first_kmeans_pp_centre_without_weights_is_the_uniform_cumsum_draw():
    X = blobs(np.random.default_rng(52), B=4, n=333)
    got = _mixture_init._kmeans_pp_centers(np, X, 1, default_rng(6), None)[:, 0]
    expected = _mixture_init._sample_index(np, np.ones(X.shape[:2]), default_rng(6))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_compiled_loops_run_in_a_forked_child(monkeypatch):
    import multiprocessing

    monkeypatch.setenv("GPUVEC_JIT", "1")
    monkeypatch.setenv("GPUVEC_NUM_THREADS", "2")
    X = blobs(np.random.default_rng(55), B=1, n=50_000, D=3)
    params = start_params(np.random.default_rng(56), X, 3, "full")
    expected = mixture.sufficient_statistics(X, params, "full").nk  # the parent's pool exists now
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # fork with threads
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(1) as pool:
            got = pool.apply_async(_child_nk, (X, params)).get(timeout=120)
    np.testing.assert_array_equal(got, expected)


def _child_nk(X, params):
    return mixture.sufficient_statistics(X, params, "full").nk
