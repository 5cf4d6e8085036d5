"""GaussianMixture on dask arrays: both shapes against the in-memory fit, laziness, refusals, real clusters.

Exactness runs on the synchronous scheduler (deterministic) with odd, ragged chunks; the end-to-end
tests run on an in-process LocalCluster and on a real 2-process LocalCluster (module-scoped fixtures).
The ``sync`` fixture (dask's synchronous scheduler) is tests/conftest.py's.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")

import gpuvec  # noqa: E402
from gpuvec.mixture import _dask as _dask_mixture  # noqa: E402
from gpuvec.mixture import _dask_blocks  # noqa: E402
from gpuvec.mixture._covariance import COVARIANCE_TYPES  # noqa: E402

COV_TYPES = ["full", "tied", "diag", "spherical"]
PARAMS = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_")
RTOL = 1e-10


def blobs(rng, n=(230, 181, 140), d=3):
    return np.concatenate([rng.normal(4 * i, 1 + 0.3 * i, (m, d)) for i, m in enumerate(n)])


def explicit_start(rng, X, K, ct, batch=()):
    """A complete start (weights, means, precisions) shaped ``batch + tail``, from random rows of X."""
    D = X.shape[-1]
    means = X.reshape(-1, D)[rng.choice(X.reshape(-1, D).shape[0], int(np.prod(batch, dtype=int)) * K, replace=False)]
    means = means.reshape(batch + (K, D))
    tail = COVARIANCE_TYPES[ct].precision_shape(K, D)
    eye = np.eye(D) * 0.5 if len(tail) >= 2 and tail[-1] == tail[-2] == D and ct != "diag" else None
    prec = np.broadcast_to(eye, batch + tail).copy() if eye is not None else np.full(batch + tail, 0.5)
    return {"weights_init": np.full(batch + (K,), 1.0 / K), "means_init": means, "precisions_init": prec}


def ragged(n, sizes):
    """Chunk sizes cycling through ``sizes`` until n is covered (the last one cut short)."""
    out, i = [], 0
    while sum(out) < n:
        out.append(min(sizes[i % len(sizes)], n - sum(out)))
        i += 1
    return tuple(out)


def assert_fitted_close(got, want, rtol=RTOL):
    for name in PARAMS:
        np.testing.assert_allclose(getattr(got, name), getattr(want, name), rtol=rtol, atol=1e-13, err_msg=name)
        assert isinstance(getattr(got, name), np.ndarray), name
        assert getattr(got, name).dtype == getattr(want, name).dtype, name
    np.testing.assert_array_equal(got.n_iter_, want.n_iter_)
    np.testing.assert_array_equal(got.converged_, want.converged_)
    np.testing.assert_allclose(got.lower_bound_, want.lower_bound_, rtol=1e-12)
    np.testing.assert_allclose(got.lower_bounds_, want.lower_bounds_, rtol=1e-12)
    np.testing.assert_array_equal(got.reg_covar_, want.reg_covar_)


# --------------------------------------------------------------------------- (N, D): N split


@pytest.mark.parametrize("weighted", [False, True], ids=["unweighted", "weighted"])
@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.filterwarnings("ignore:Best performing initialization")
def test_rows_fit_equals_in_memory_fit_from_the_same_start(sync, ct, weighted):
    rng = np.random.default_rng(3)
    X = blobs(rng)
    sw = rng.random(X.shape[0]) * 2 if weighted else None
    params = dict(covariance_type=ct, tol=1e-8, max_iter=60, **explicit_start(rng, X, 3, ct))
    want = gpuvec.GaussianMixture(3, **params).fit(X, sample_weight=sw)
    Xd = da.from_array(X, chunks=(ragged(X.shape[0], (97, 13, 150)), (2, 1)))  # ragged rows, D split too
    swd = None if sw is None else da.from_array(sw, chunks=61)  # chunked unlike X: realigned
    got = gpuvec.GaussianMixture(3, **params).fit(Xd, sample_weight=swd)
    assert_fitted_close(got, want)
    assert isinstance(got.n_iter_, int) and isinstance(got.lower_bound_, float)


@settings(max_examples=12, deadline=None)
@given(
    cuts=st.lists(st.integers(1, 119), max_size=6, unique=True),
    ct=st.sampled_from(COV_TYPES),
    weighted=st.booleans(),
    B=st.sampled_from([None, 1, 2]),
)
def test_any_chunking_of_n_gives_the_in_memory_fit(cuts, ct, weighted, B):
    rng = np.random.default_rng(27)
    X = blobs(rng, n=(50, 40, 30)) if B is None else np.stack([blobs(rng, n=(50, 40, 30)) for _ in range(B)])
    N = X.shape[-2]
    sw = rng.random(X.shape[:-1]) if weighted else None
    start = explicit_start(rng, X, 3, ct, batch=() if B is None else (B,))
    params = {"covariance_type": ct, "tol": 0.0, "max_iter": 4, **start}
    rows = tuple(np.diff([0, *sorted(cuts), N]))  # 1 to 7 chunks of any sizes, single rows included
    chunks = (rows, -1) if B is None else (1, rows, -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter=4, tol=0: the ConvergenceWarning of both fits
        want = gpuvec.GaussianMixture(3, **params).fit(X, sample_weight=sw)
        with dask.config.set(scheduler="sync"):
            got = gpuvec.GaussianMixture(3, **params).fit(
                da.from_array(X, chunks=chunks),
                sample_weight=None if sw is None else da.from_array(sw, chunks=chunks[:-1]),
            )
    assert_fitted_close(got, want)


def test_rows_n_init_and_random_init_equal_in_memory_when_n_fits_the_sample(sync):
    # N below INIT_SAMPLE_ROWS: the sample is all rows, so the starts are the in-memory fit's.
    rng = np.random.default_rng(4)
    X = blobs(rng)
    params = {"n_init": 3, "random_state": 7, "tol": 1e-8, "init_params": "k-means++"}
    want = gpuvec.GaussianMixture(3, **params).fit(X)
    got = gpuvec.GaussianMixture(3, **params).fit(da.from_array(X, chunks=111))
    assert_fitted_close(got, want)


def test_rows_n_init_is_a_batch_axis_of_one_pass_per_iteration(sync, monkeypatch):
    rng = np.random.default_rng(5)
    X = blobs(rng)
    passes = []
    real = _dask_mixture.split_pass

    def counting(X, sw, params, *args):
        passes.append(params.weights.shape[0])
        return real(X, sw, params, *args)

    monkeypatch.setattr(_dask_mixture, "split_pass", counting)
    gpuvec.GaussianMixture(3, n_init=4, random_state=0, tol=1e-6).fit(da.from_array(X, chunks=200))
    assert passes[0] == 4  # every start in the first pass
    assert sorted(passes, reverse=True) == passes  # starts leave as they converge
    assert len(passes) <= 100


def test_rows_random_init_on_a_sample_of_large_n(sync, monkeypatch):
    monkeypatch.setattr(_dask_mixture, "INIT_SAMPLE_ROWS", 90)
    sizes = []
    real = _dask_mixture._sample_starts

    def spy(gm, settings, sample, *args):
        sizes.append(sample.shape)
        return real(gm, settings, sample, *args)

    monkeypatch.setattr(_dask_mixture, "_sample_starts", spy)
    rng = np.random.default_rng(6)
    X = blobs(rng)
    gm = gpuvec.GaussianMixture(3, random_state=0, tol=1e-6, n_init=3).fit(da.from_array(X, chunks=100))
    assert sizes == [(90, 3)]
    assert gm.converged_ and gm.lower_bound_ > gpuvec.GaussianMixture(1).fit(X).lower_bound_
    again = gpuvec.GaussianMixture(3, random_state=0, tol=1e-6, n_init=3).fit(da.from_array(X, chunks=100))
    np.testing.assert_array_equal(gm.means_, again.means_)  # reproducible for a seed


@pytest.mark.filterwarnings("ignore:Best performing initialization")
def test_rows_float32_gives_float32_parameters(sync):
    rng = np.random.default_rng(7)
    X = blobs(rng).astype(np.float32)
    params = dict(tol=1e-8, **explicit_start(rng, X.astype(np.float64), 3, "diag"), covariance_type="diag")
    want = gpuvec.GaussianMixture(3, **params).fit(X)
    got = gpuvec.GaussianMixture(3, **params).fit(da.from_array(X, chunks=170))
    assert_fitted_close(got, want, rtol=1e-6)


def test_rows_warm_start_continues_as_in_memory(sync):
    rng = np.random.default_rng(8)
    X = blobs(rng)
    params = dict(tol=1e-8, max_iter=3, warm_start=True, **explicit_start(rng, X, 3, "full"))
    want, got = gpuvec.GaussianMixture(3, **params), gpuvec.GaussianMixture(3, **params)
    Xd = da.from_array(X, chunks=150)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(3):
            want.fit(X)
            got.fit(Xd)
    assert_fitted_close(got, want)


def test_rows_warnings_and_failures_as_in_memory(sync):
    rng = np.random.default_rng(23)
    X = blobs(rng)
    params = {"max_iter": 2, "tol": 1e-12, **explicit_start(rng, X, 3, "full")}
    with pytest.warns(Warning) as want:
        gpuvec.GaussianMixture(3, **params).fit(X)
    with pytest.warns(Warning) as got:
        gpuvec.GaussianMixture(3, **params).fit(da.from_array(X, chunks=200))
    assert [str(w.message) for w in got] == [str(w.message) for w in want]
    assert got[0].filename == __file__  # points at the caller
    X[:, 1] = X[:, 0]  # a singular covariance, and no regularisation to fix it
    params["reg_covar"] = 0
    with pytest.raises(ValueError) as want_error:
        gpuvec.GaussianMixture(3, **params).fit(X)
    with pytest.raises(ValueError) as got_error:
        gpuvec.GaussianMixture(3, **params).fit(da.from_array(X, chunks=200))
    assert str(got_error.value) == str(want_error.value)


def test_rows_fit_on_the_threaded_scheduler():
    rng = np.random.default_rng(24)
    X = blobs(rng)
    params = {"tol": 1e-8, "covariance_type": "diag", **explicit_start(rng, X, 3, "diag")}
    want = gpuvec.GaussianMixture(3, **params).fit(X)
    with dask.config.set(scheduler="threads", num_workers=2):
        got = gpuvec.GaussianMixture(3, **params).fit(da.from_array(X, chunks=90))
    assert_fitted_close(got, want)


class _ChunkOnlySource:
    """An array-like that serves slices and records how many rows each read takes; np.asarray of it fails."""

    def __init__(self, data):
        self.data, self.shape, self.dtype, self.ndim = data, data.shape, data.dtype, data.ndim
        self.rows_read = []

    def __getitem__(self, key):
        out = self.data[key]
        self.rows_read.append(out.shape[0] if out.ndim else 1)
        return out

    def __array__(self, *args, **kwargs):
        raise AssertionError("the whole source was asked for as one array")


def test_fit_and_predict_never_compute_the_whole_dask_array(sync, monkeypatch):
    rng = np.random.default_rng(9)
    X = blobs(rng)
    source = _ChunkOnlySource(X)
    Xd = da.from_array(source, chunks=(100, -1), meta=np.empty((0, 0)))

    def refuse(*args, **kwargs):
        raise AssertionError("np.asarray was called on the whole dask array")

    monkeypatch.setattr(type(Xd), "__array__", refuse)
    gm = gpuvec.GaussianMixture(3, random_state=0, n_init=2, tol=1e-6)
    labels = gm.fit_predict(Xd)
    assert isinstance(labels, da.Array)  # lazy
    assert max(source.rows_read) <= 100  # one chunk at a time
    assert isinstance(gm.predict(Xd), da.Array) and isinstance(gm.score_samples(Xd), da.Array)
    assert np.isfinite(gm.score(Xd))


@pytest.mark.parametrize("ct", ["full", "spherical"])
def test_predict_methods_lazy_and_equal_to_in_memory(sync, ct):
    rng = np.random.default_rng(10)
    X = blobs(rng)
    gm = gpuvec.GaussianMixture(3, covariance_type=ct, random_state=0).fit(X)
    Xd = da.from_array(X, chunks=(ragged(X.shape[0], (70, 33)), 2))
    for method, kind in (("predict", np.int64), ("predict_proba", np.float64), ("score_samples", np.float64)):
        out = getattr(gm, method)(Xd)
        assert isinstance(out, da.Array) and out.dtype == kind, method
        assert isinstance(out._meta, np.ndarray)
        np.testing.assert_allclose(out.compute(), getattr(gm, method)(X), rtol=1e-12, err_msg=method)
    for method in ("score", "bic", "aic"):
        got = getattr(gm, method)(Xd)
        assert isinstance(got, float)
        np.testing.assert_allclose(got, getattr(gm, method)(X), rtol=1e-12, err_msg=method)
    np.testing.assert_array_equal(gm.fit_predict(Xd).compute(), gm.predict(X))


@pytest.mark.filterwarnings("ignore:Best performing initialization")
def test_blas_is_limited_to_one_thread_inside_the_pass(sync, monkeypatch):
    threadpoolctl = pytest.importorskip("threadpoolctl")
    seen = []
    real = _dask_blocks._stats_block

    def spy(*args, block_info=None, **kwargs):
        seen.extend(p["num_threads"] for p in threadpoolctl.threadpool_info() if p["user_api"] == "blas")
        return real(*args, block_info=block_info, **kwargs)

    monkeypatch.setattr(_dask_blocks, "_stats_block", spy)
    X = blobs(np.random.default_rng(11))
    gpuvec.GaussianMixture(2, random_state=0, max_iter=2, tol=0).fit(da.from_array(X, chunks=200))
    assert seen and set(seen) == {1}


# --------------------------------------------------------------------------- (B, N, D): B split


def batch_data(rng, B=7):
    XB = np.stack([blobs(rng, n=(40, 35)) for _ in range(B)])
    if B > 5:
        XB[5, :, 1] = XB[5, :, 0]  # two equal features: problem 5's full covariance is singular
    return XB


def test_batched_fit_equals_in_memory_with_global_warnings(sync):
    rng = np.random.default_rng(12)
    XB = batch_data(rng)
    sw = rng.random(XB.shape[:2])
    params = dict(max_iter=4, tol=1e-8, **explicit_start(rng, XB, 2, "full", batch=(7,)))
    with pytest.warns(Warning) as want_warnings:
        want = gpuvec.GaussianMixture(2, **params).fit(XB, sample_weight=sw)
    Xd = da.from_array(XB, chunks=((3, 1, 3), -1, 2))  # whole problems in each block
    with pytest.warns(Warning) as got_warnings:
        got = gpuvec.GaussianMixture(2, **params).fit(Xd, sample_weight=da.from_array(sw, chunks=(2, 75)))
    assert_fitted_close(got, want)
    assert sorted(str(w.message) for w in got_warnings) == sorted(str(w.message) for w in want_warnings)
    assert any("problems [" in str(w.message) and "5" in str(w.message) for w in got_warnings)
    labels = got.predict(Xd)
    assert isinstance(labels, da.Array) and labels.shape == (7, XB.shape[1])
    np.testing.assert_array_equal(labels.compute(), want.predict(XB))
    np.testing.assert_allclose(got.bic(Xd), want.bic(XB), rtol=1e-12)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_batched_with_n_split_is_one_pass_per_iteration_and_equals_in_memory(sync, ct):
    # (B, N, D) chunked along N too: the client-driven loop with a B axis in the statistics.
    rng = np.random.default_rng(25)
    XB = batch_data(rng, B=5)
    sw = rng.random(XB.shape[:2])
    params = {"max_iter": 30, "tol": 1e-8, "covariance_type": ct, **explicit_start(rng, XB, 2, ct, batch=(5,))}
    with warnings.catch_warnings(record=True) as want_warnings:
        warnings.simplefilter("always")
        want = gpuvec.GaussianMixture(2, **params).fit(XB, sample_weight=sw)
    Xd = da.from_array(XB, chunks=((2, 3), (33, 42), 3))
    with warnings.catch_warnings(record=True) as got_warnings:
        warnings.simplefilter("always")
        got = gpuvec.GaussianMixture(2, **params).fit(Xd, sample_weight=da.from_array(sw, chunks=(1, 50)))
    assert_fitted_close(got, want)
    assert [str(w.message) for w in got_warnings] == [str(w.message) for w in want_warnings]
    labels = got.predict(Xd)
    assert labels.chunks == ((2, 3), (33, 42))  # N stays split
    np.testing.assert_array_equal(labels.compute(), want.predict(XB))


def test_batched_with_n_split_random_init_and_n_init_equal_in_memory(sync):
    rng = np.random.default_rng(26)
    XB = batch_data(rng, B=3)
    params = {"n_init": 2, "random_state": 5, "tol": 1e-8, "covariance_type": "diag"}
    want = gpuvec.GaussianMixture(2, **params).fit(XB)
    got = gpuvec.GaussianMixture(2, **params).fit(da.from_array(XB, chunks=(2, 40, -1)))
    assert_fitted_close(got, want)


def test_batched_failure_names_the_global_problem(sync):
    rng = np.random.default_rng(13)
    XB = batch_data(rng)
    params = dict(reg_covar=0, max_iter=3, **explicit_start(rng, XB, 2, "full", batch=(7,)))
    with pytest.raises(ValueError, match=r"ill-defined empirical covariance.* in problems \[5\]"):
        gpuvec.GaussianMixture(2, **params).fit(da.from_array(XB, chunks=(3, -1, -1)))


def test_batched_blocks_check_the_starts_against_all_problems(sync):
    """A (2, K, D) means_init for 4 problems in blocks of 2 is the in-memory error, not tiled over the blocks."""
    XB = batch_data(np.random.default_rng(14), B=4)
    means = np.zeros((2, 2, 3))
    with pytest.raises(ValueError, match=r"'means' should have the shape") as in_memory:
        gpuvec.GaussianMixture(2, means_init=means).fit(XB)
    with pytest.raises(ValueError, match=r"'means' should have the shape") as on_dask:
        gpuvec.GaussianMixture(2, means_init=means).fit(da.from_array(XB, chunks=(2, -1, -1)))
    assert str(on_dask.value) == str(in_memory.value)


def test_batched_random_init_fits_every_block(sync):
    rng = np.random.default_rng(14)
    XB = batch_data(rng)[:4]
    gm = gpuvec.GaussianMixture(2, covariance_type="diag", random_state=0).fit(da.from_array(XB, chunks=(3, -1, -1)))
    assert gm.means_.shape == (4, 2, 3) and gm.converged_.all()
    assert gm.lower_bounds_.shape[0] == 4


# --------------------------------------------------------------------------- cupy chunks


@pytest.mark.filterwarnings("ignore:Best performing initialization")
def test_cupy_chunks_keep_their_type_and_parameters_come_back_as_numpy(cp, sync):
    rng = np.random.default_rng(22)
    X = blobs(rng)
    params = {"tol": 1e-8, "covariance_type": "full", **explicit_start(rng, X, 3, "full")}
    want = gpuvec.GaussianMixture(3, **params).fit(X)
    Xd = da.from_array(cp.asarray(X), chunks=(ragged(X.shape[0], (97, 150)), -1))
    got = gpuvec.GaussianMixture(3, **params).fit(Xd)
    assert_fitted_close(got, want, rtol=1e-8)  # numpy attributes; the GPU sums in another order
    labels = got.predict(Xd)
    assert isinstance(labels._meta, cp.ndarray)
    np.testing.assert_array_equal(cp.asnumpy(labels.compute()), want.predict(X))
    proba = got.predict_proba(Xd)
    assert isinstance(proba._meta, cp.ndarray) and proba.shape == (X.shape[0], 3)
    XB = batch_data(rng, B=4)
    gmB = gpuvec.GaussianMixture(2, covariance_type="diag", random_state=0)
    gmB.fit(da.from_array(cp.asarray(XB), chunks=(3, -1, -1)))
    assert isinstance(gmB.means_, np.ndarray) and gmB.means_.shape == (4, 2, 3)
    assert isinstance(gmB.score(da.from_array(cp.asarray(XB), chunks=(3, -1, -1))), np.ndarray)
    with pytest.raises(TypeError):
        gpuvec.GaussianMixture(3).fit(Xd, sample_weight=np.ones(X.shape[0]))


# --------------------------------------------------------------------------- refusals


def test_in_memory_X_with_dask_sample_weight_is_refused():
    X = blobs(np.random.default_rng(15))
    with pytest.raises(TypeError, match="sample_weight is a dask array"):
        gpuvec.GaussianMixture(2).fit(X, sample_weight=da.ones(X.shape[0], chunks=100))


def test_unknown_chunk_sizes_are_refused():
    X = da.from_array(blobs(np.random.default_rng(16)), chunks=100)
    X = X[X[:, 0] > -100]  # unknown row counts
    with pytest.raises(ValueError, match="compute_chunk_sizes"):
        gpuvec.GaussianMixture(2).fit(X)


@pytest.mark.filterwarnings("ignore:Best performing initialization")
def test_batched_warm_start_continues_as_in_memory(sync):
    rng = np.random.default_rng(17)
    XB = batch_data(rng, B=3)
    params = {"covariance_type": "diag", "warm_start": True, "max_iter": 2, "tol": 1e-8}
    params.update(explicit_start(rng, XB, 2, "diag", batch=(3,)))
    want, got = gpuvec.GaussianMixture(2, **params), gpuvec.GaussianMixture(2, **params)
    Xd = da.from_array(XB, chunks=(2, -1, -1))  # whole problems per block: the first fit is per block
    for _ in range(3):
        want.fit(XB)
        got.fit(Xd)
    assert_fitted_close(got, want)


def test_nan_in_dask_X_is_refused(sync):
    X = blobs(np.random.default_rng(18))
    X[300, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        gpuvec.GaussianMixture(2).fit(da.from_array(X, chunks=100))


def test_predict_with_the_wrong_shape_is_refused(sync):
    X = blobs(np.random.default_rng(19))
    gm = gpuvec.GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(ValueError, match="features"):
        gm.predict(da.from_array(X[:, :2], chunks=100))
    with pytest.raises(ValueError, match=r"shape \(N, D\) as in fit"):
        gm.predict(da.from_array(X[None], chunks=100))


# --------------------------------------------------------------------------- clusters


@pytest.fixture(scope="module")
def threads_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=":0")
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def process_client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    with cluster, distributed.Client(cluster) as client:
        yield client


def test_in_process_cluster_end_to_end(threads_client):
    rng = np.random.default_rng(20)
    X = blobs(rng)
    sw = rng.random(X.shape[0])
    params = dict(tol=1e-8, covariance_type="tied", **explicit_start(rng, X, 3, "tied"))
    want = gpuvec.GaussianMixture(3, **params).fit(X, sample_weight=sw)
    Xd = da.from_array(X, chunks=123)
    got = gpuvec.GaussianMixture(3, **params).fit(Xd, sample_weight=da.from_array(sw, chunks=123))
    assert_fitted_close(got, want)
    np.testing.assert_array_equal(got.predict(Xd).compute(), want.predict(X))
    XB = batch_data(rng, B=4)
    gmB = gpuvec.GaussianMixture(2, covariance_type="diag", random_state=1).fit(da.from_array(XB, chunks=(2, -1, -1)))
    assert gmB.means_.shape == (4, 2, 3)
    assert gmB.score(da.from_array(XB, chunks=(2, -1, -1))).shape == (4,)


def test_two_process_cluster_end_to_end(process_client):
    rng = np.random.default_rng(21)
    X = blobs(rng)
    params = {"tol": 1e-8, "n_init": 2, "random_state": 3}
    want = gpuvec.GaussianMixture(3, **params).fit(X)
    Xd = da.from_array(X, chunks=(ragged(X.shape[0], (120, 77)), -1))
    got = gpuvec.GaussianMixture(3, **params).fit(Xd)
    assert_fitted_close(got, want)
    np.testing.assert_allclose(got.score_samples(Xd).compute(), want.score_samples(X), rtol=1e-12)
    XB = batch_data(rng, B=4)
    start = explicit_start(rng, XB, 2, "full", batch=(4,))
    X7 = batch_data(rng)
    with pytest.raises(ValueError, match=r"ill-defined empirical covariance.* in problems \[5\]"):
        gpuvec.GaussianMixture(2, reg_covar=0, **explicit_start(rng, X7, 2, "full", batch=(7,))).fit(
            da.from_array(X7, chunks=(3, -1, -1))
        )
    wantB = gpuvec.GaussianMixture(2, max_iter=5, **start)
    gotB = gpuvec.GaussianMixture(2, max_iter=5, **start)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        wantB.fit(XB)
        gotB.fit(da.from_array(XB, chunks=(3, -1, -1)))
    assert_fitted_close(gotB, wantB)


# --------------------------------------------------------------------------- edge chunks (#23)


@pytest.mark.parametrize("ct", ["full", "diag"])
@pytest.mark.parametrize("D", [3, 40], ids=["small-D", "blocked-D"])
def test_rows_fit_with_edge_chunks_equals_in_memory(sync, edge_chunked, ct, D):
    rng = np.random.default_rng(4)
    X = blobs(rng, d=D)
    params = dict(covariance_type=ct, tol=1e-8, max_iter=20, **explicit_start(rng, X, 3, ct))
    want = gpuvec.GaussianMixture(3, **params).fit(X)
    got = gpuvec.GaussianMixture(3, **params).fit(edge_chunked(X))
    assert_fitted_close(got, want)
    labels = got.predict(edge_chunked(X))
    np.testing.assert_array_equal(labels.compute(), want.predict(X))


@pytest.mark.parametrize("axes", [(0,), (1,)], ids=["edge-B", "edge-N"])
@pytest.mark.filterwarnings("ignore:Best performing initialization did not converge")
def test_batched_fit_with_edge_chunks_equals_in_memory(sync, edge_chunked, axes):
    rng = np.random.default_rng(5)
    X = np.stack([blobs(rng, n=(40, 30, 30)) for _ in range(4)])
    params = dict(tol=1e-8, max_iter=20, **explicit_start(rng, X, 2, "full", batch=(4,)))
    want = gpuvec.GaussianMixture(2, **params).fit(X)
    got = gpuvec.GaussianMixture(2, **params).fit(edge_chunked(X, axes))
    assert_fitted_close(got, want)


@pytest.mark.filterwarnings("ignore:Best performing initialization did not converge")
def test_n_init_picks_the_in_memory_start_on_near_ties(sync):
    """Starts that converge to the same optimum differ only by rounding, which the dask pass sums in
    another order: the pick must not depend on it (the first start within TIE_RTOL, in both paths)."""
    from gpuvec.mixture._fit import TIE_RTOL

    rng = np.random.default_rng(11)
    X = np.concatenate([rng.normal(4 * i, 1 + 0.3 * i, (300, 2)) for i in range(3)])
    for seed in range(6):  # iterated to the fixed point (tol=0): the starts end a rounding apart
        params = dict(n_components=3, n_init=4, tol=0, max_iter=100, random_state=seed)
        want = gpuvec.GaussianMixture(**params).fit(X)
        got = gpuvec.GaussianMixture(**params).fit(da.from_array(X, chunks=(ragged(len(X), (97, 211)), 2)))
        np.testing.assert_allclose(got.means_, want.means_, rtol=1e-8)  # same start: same component order
        np.testing.assert_array_equal(got.predict(X), want.predict(X))
        assert abs(got.lower_bound_ - want.lower_bound_) <= TIE_RTOL * abs(want.lower_bound_)


def test_chunks_of_another_library_are_a_type_error():
    xps = pytest.importorskip("array_api_strict")
    X = da.from_array(np.random.default_rng(0).random((20, 2)), chunks=5)
    Xs = X.map_blocks(xps.asarray, meta=xps.asarray(np.ones((0, 0))))
    ws = da.ones(20, chunks=5).map_blocks(xps.asarray, meta=xps.asarray(np.ones(0)))
    for call in (
        lambda: gpuvec.GaussianMixture(2).fit(Xs),
        lambda: gpuvec.GaussianMixture(2).fit(X, sample_weight=ws),
        lambda: gpuvec.GaussianMixture(2).fit(X.compute()).predict(Xs),
    ):
        with pytest.raises(TypeError, match=r"must be a dask array of numpy or cupy chunks; its chunks are array_api"):
            call()
