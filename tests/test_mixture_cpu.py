"""GaussianMixture on the CPU: the compiled loops against the numpy reference, chunking, float32, threads."""

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
from gpuvec._core import threads as _threads
from gpuvec.mixture import _dispatch, _xp
from gpuvec.mixture import _starts as _mixture_init
from gpuvec.random import default_rng

pytest.importorskip("numba")
COV_TYPES = ["full", "tied", "diag", "spherical"]


def blobs(rng, B=2, n=400, D=3, K=3, dtype=np.float64):
    centres = rng.normal(0, 4, (B, K, D))
    X = centres[np.arange(B)[:, None], rng.integers(0, K, (B, n))] + rng.normal(size=(B, n, D))
    return X.astype(dtype)


def start_params(rng, X, K, ct):
    return mixture.m_step(X, np.log(rng.dirichlet(np.ones(K), size=X.shape[:2])), 1e-6, ct)


def quiet_fit(gm, X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gm.fit(X, **kw)


def assert_tuple_close(a, b, rtol, atol=0.0):
    for name, x, y in zip(type(a)._fields if hasattr(a, "_fields") else range(len(a)), a, b, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, err_msg=str(name))


# --------------------------------------------------------------------------- compiled vs reference


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_statistics_equal_the_numpy_reference(monkeypatch, ct, weighted, dtype):
    rng = np.random.default_rng(40)
    X = blobs(rng, B=3, n=300, D=4, dtype=dtype)
    params = start_params(rng, X.astype(np.float64), 3, ct)
    sw = rng.random(X.shape[:2]) if weighted else None
    if weighted:
        sw[:, :5] = 0.0  # zero-weight (padding) samples
    monkeypatch.setenv("GPUVEC_JIT", "0")
    ref = mixture.sufficient_statistics(X, params, ct, sw)
    monkeypatch.setenv("GPUVEC_JIT", "1")
    got = mixture.sufficient_statistics(X, params, ct, sw)
    for name, a, b in zip(mixture.SufficientStats._fields, got, ref, strict=True):
        assert a.dtype == np.float64, name
        scale = np.abs(b).max() if b.size else 1.0
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-13 * scale, err_msg=name)
    assert got.sxx.shape == ref.sxx.shape
    if got.sxx.ndim == 4:
        np.testing.assert_array_equal(got.sxx, np.swapaxes(got.sxx, -1, -2))  # mirrored: exactly symmetric


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_label_statistics_equal_the_numpy_reference(monkeypatch, ct, weighted):
    rng = np.random.default_rng(41)
    X = blobs(rng, B=2, n=500, D=3)
    labels = rng.integers(0, 4, X.shape[:2])
    sw = rng.random(X.shape[:2]) if weighted else None
    monkeypatch.setenv("GPUVEC_JIT", "0")
    ref = _xp.label_statistics(X, labels, 4, ct, sw)
    monkeypatch.setenv("GPUVEC_JIT", "1")
    got = _xp.label_statistics(X, labels, 4, ct, sw)
    assert_tuple_close(got, ref, rtol=1e-12, atol=1e-11)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_compiled_prediction_equals_the_numpy_reference(monkeypatch, ct, dtype):
    rng = np.random.default_rng(42)
    X = blobs(rng, B=2, n=300, D=3, dtype=dtype)
    gm = quiet_fit(gpuvec.GaussianMixture(3, covariance_type=ct, random_state=0, max_iter=20), X)
    results = {}
    for jit in ("0", "1"):
        monkeypatch.setenv("GPUVEC_JIT", jit)
        results[jit] = (gm.predict(X), gm.predict_proba(X), gm.score_samples(X))
    (l0, p0, s0), (l1, p1, s1) = results["0"], results["1"]
    np.testing.assert_array_equal(l1, l0)
    tol = 1e-12 if dtype == np.float64 else 2e-5
    assert p1.dtype == p0.dtype == s1.dtype == s0.dtype == dtype
    np.testing.assert_allclose(p1, p0, rtol=tol, atol=tol)
    np.testing.assert_allclose(s1, s0, rtol=tol)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_fits_with_and_without_the_compiled_loops_agree(monkeypatch, ct):
    rng = np.random.default_rng(43)
    X = blobs(rng, B=3, n=300, D=3)
    fits = {}
    for jit in ("0", "1"):
        monkeypatch.setenv("GPUVEC_JIT", jit)
        fits[jit] = quiet_fit(gpuvec.GaussianMixture(3, covariance_type=ct, random_state=1, tol=1e-8, max_iter=30), X)
    a, b = fits["0"], fits["1"]
    np.testing.assert_array_equal(a.n_iter_, b.n_iter_)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "lower_bound_"):
        np.testing.assert_allclose(getattr(b, name), getattr(a, name), rtol=1e-9, atol=1e-11, err_msg=name)


def test_compiled_result_does_not_depend_on_the_thread_count(monkeypatch):
    rng = np.random.default_rng(44)
    X = blobs(rng, B=1, n=20_000, D=3)
    params = start_params(rng, X, 3, "full")
    monkeypatch.setenv("GPUVEC_JIT", "1")
    monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "mixture", (1 << 10, 1 << 10))  # many items per problem
    out = []
    for threads in ("1", "2", "3"):
        monkeypatch.setenv("GPUVEC_NUM_THREADS", threads)
        out.append(mixture.sufficient_statistics(X, params, "full"))
    for other in out[1:]:
        for a, b in zip(other, out[0], strict=True):
            np.testing.assert_array_equal(a, b)


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


def test_blas_is_limited_to_one_thread_inside_a_pool_thread_and_restored():
    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()

    def in_thread():
        with _threads.blas_limited():
            inside = blas_threads()
            with _threads.blas_limited():  # nested: still one, restored only by the outer exit
                nested = blas_threads()
            after_nested = blas_threads()
        return inside, nested, after_nested, _threads.worker_threads()

    with ThreadPoolExecutor(2) as pool:
        inside, nested, after_nested, workers = pool.submit(in_thread).result()
    assert before, "threadpoolctl finds no BLAS library: nothing to limit"
    assert inside == nested == after_nested == [1] * len(before)
    assert workers == 1
    assert blas_threads() == before
    with _threads.blas_limited():  # the main thread: untouched
        assert blas_threads() == before


def test_overlapping_pool_threads_restore_blas_when_the_last_one_leaves():
    """Thread A sets the limit, thread B leaves last: B's restore must take effect (threadpoolctl binds
    OpenBLAS to the thread that set it, which gpuvec._core.threads.blas_limited releases)."""
    import threading

    threadpoolctl = pytest.importorskip("threadpoolctl")

    def blas_threads():
        return [i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"]

    before = blas_threads()
    assert before, "threadpoolctl finds no BLAS library: nothing to limit"
    a_in, b_in, a_out = threading.Event(), threading.Event(), threading.Event()

    def first():
        with _threads.blas_limited():
            a_in.set()
            b_in.wait(5)
        a_out.set()

    def second():
        a_in.wait(5)
        with _threads.blas_limited():
            b_in.set()
            a_out.wait(5)
            assert blas_threads() == [1] * len(before)  # still limited after A left

    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(first), pool.submit(second)]:
            f.result()
        assert blas_threads() == before
        assert pool.submit(blas_threads).result() == before
        with threadpoolctl.threadpool_limits(1, "blas"):  # and the main thread can still set limits
            assert blas_threads() == [1] * len(before)
    assert blas_threads() == before


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


def test_gpuvec_num_threads_is_read(monkeypatch):
    monkeypatch.setenv("GPUVEC_NUM_THREADS", "3")
    assert _threads.worker_threads() == 3
    monkeypatch.delenv("GPUVEC_NUM_THREADS")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # as dask's process workers set it
    assert _threads.worker_threads() == 1
    for bad in ("many", "0", "-3"):
        monkeypatch.setenv("GPUVEC_NUM_THREADS", bad)
        with pytest.raises(ValueError, match=f"GPUVEC_NUM_THREADS must be a positive integer; got '{bad}'"):
            _threads.worker_threads()


def test_compiled_dispatch_table(monkeypatch):
    monkeypatch.setenv("GPUVEC_JIT", "0")
    assert _dispatch.compiled(np, 1 << 40) is None
    monkeypatch.setenv("GPUVEC_JIT", "1")
    assert _dispatch.compiled(np, 1) is not None
    monkeypatch.delenv("GPUVEC_JIT")
    assert _dispatch.compiled(np, dispatch.NUMBA_PAYS_WORK) is not None


def test_compiled_exp_is_within_3_ulp_and_keeps_the_special_values():
    import numba

    from gpuvec.mixture import _numba as _mixture_numba

    @numba.njit
    def vexp(a, out):
        for i in range(a.size):
            out[i] = _mixture_numba._exp(a[i])

    x = np.concatenate([-np.logspace(-20, np.log10(745), 100_000), np.linspace(-50, 709, 10_000), [-0.0, 0.0]])
    out = np.empty_like(x)
    vexp(x, out)
    ref = np.exp(x)
    normal = ref > np.finfo(np.float64).tiny
    assert np.max(np.abs(out - ref)[normal] / np.spacing(ref[normal])) <= 3
    assert np.max(np.abs(out - ref)[~normal]) <= 1e-307
    special = np.array([np.nan, -np.inf, np.inf, 710.0, -1e300])
    out = np.empty_like(special)
    vexp(special, out)
    np.testing.assert_array_equal(out, [np.nan, 0.0, np.inf, np.inf, 0.0])


def test_first_kmeans_pp_centre_without_weights_is_the_uniform_cumsum_draw():
    X = blobs(np.random.default_rng(52), B=4, n=333)
    got = _mixture_init._kmeans_pp_centers(np, X, 1, default_rng(6), None)[:, 0]
    expected = _mixture_init._sample_index(np, np.ones(X.shape[:2]), default_rng(6))
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("weighted", [False, True])
def test_compiled_kmeans_starts_equal_the_numpy_reference(monkeypatch, dtype, weighted):
    X = blobs(np.random.default_rng(53), B=3, n=400, D=3, K=4, dtype=dtype)
    sw = np.random.default_rng(54).random(X.shape[:2]) if weighted else None
    for method in _mixture_init.LABEL_METHODS:
        out = {}
        for jit in ("0", "1"):
            monkeypatch.setenv("GPUVEC_JIT", jit)
            out[jit] = _mixture_init.initial_labels(np, X, 4, method, default_rng(7), sw)
        np.testing.assert_array_equal(out["1"], out["0"])


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
