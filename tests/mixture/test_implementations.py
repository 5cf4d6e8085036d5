"""GaussianMixture's implementation matrix: the numba loops and the blocked GEMMs against the namespace reference.

gpuvec/mixture/_dispatch.py chooses for every pass over X (``pass_implementation``: the E-step with the
M-step's sums, prediction) and for the starts' distances (``compiled``):

- numpy x ``_numba`` (where ``blocked_pays`` is false; GPUVEC_JIT=1, or unset once the work reaches
  NUMBA_PAYS_WORK or numba is loaded): against the reference below (statistics, label statistics,
  prediction, whole fits, k-means starts, the loops' ``exp``), and independent of the thread count;
  chunked fits, float32, memory and forked children with GPUVEC_JIT 0 and 1 in test_cpu.py.
- numpy x ``_blocked`` (where ``blocked_pays``; one GEMM per row block and component):
  test_blocked_statistics_equal_the_reference, test_blocked_prediction_equals_the_reference,
  test_blocked_fit_agrees_with_sklearn, test_blocked_label_statistics_equal_the_reference.
- numpy x reference (``_xp``, ``_em``, ``_starts`` on numpy; GPUVEC_JIT=0 where blocked does not pay): the
  other side of those comparisons. The tests of test_estimator.py, test_core.py and test_hardening.py
  (sklearn's numerics) run with GPUVEC_JIT unset, on whichever the rule picks.
- cupy x reference and cupy x ``_blocked`` (cupy never takes the numba loops): the ``xp=cupy`` cell of
  every test taking the ``xp`` fixture, and test_blocked_statistics_equal_the_reference_on_cupy;
  skipped without a GPU.
- the choice itself: test_compiled_dispatch_table, test_pass_dispatch_table.
- dask: every block runs the in-memory pass; tests/mixture/test_dask.py.

Skipped where numba is not installed.
"""

from __future__ import annotations

import numpy as np
import pytest

import gpuvec
from gpuvec import mixture
from gpuvec._core import dispatch
from gpuvec.mixture import _dispatch, _xp
from gpuvec.mixture import _starts as _mixture_init
from gpuvec.random import default_rng
from tests.mixture.helpers import blobs, quiet_fit, start_params

pytest.importorskip("numba")
COV_TYPES = ["full", "tied", "diag", "spherical"]


# --------------------------------------------------------------------------- compiled vs reference


def assert_tuple_close(a, b, rtol, atol=0.0):
    for name, x, y in zip(type(a)._fields if hasattr(a, "_fields") else range(len(a)), a, b, strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol, err_msg=str(name))


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
    assert not ((out != 0) & (np.abs(out) < np.finfo(np.float64).tiny)).any()  # no subnormal (slow) results
    special = np.array([np.nan, -np.inf, np.inf, 710.0, -1e300])
    out = np.empty_like(special)
    vexp(special, out)
    np.testing.assert_array_equal(out, [np.nan, 0.0, np.inf, np.inf, 0.0])


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


# --------------------------------------------------------------------------- the dispatch choice


def test_compiled_dispatch_table(monkeypatch):
    monkeypatch.setenv("GPUVEC_JIT", "0")
    assert _dispatch.compiled(np, 1 << 40) is None
    monkeypatch.setenv("GPUVEC_JIT", "1")
    assert _dispatch.compiled(np, 1) is not None
    monkeypatch.delenv("GPUVEC_JIT")
    assert _dispatch.compiled(np, dispatch.NUMBA_PAYS_WORK) is not None


def test_pass_dispatch_table(monkeypatch):
    from gpuvec.mixture import _blocked

    monkeypatch.setenv("GPUVEC_JIT", "1")
    for ct in COV_TYPES:
        assert _dispatch.pass_implementation(np, 1, 1000, 16, 512, ct) is _blocked
        assert _dispatch.pass_implementation(np, 1, 1000, 16, 4, ct).__name__ == "gpuvec.mixture._numba"
    assert _dispatch.pass_implementation(np, 1, 1000, 2, 512, "diag").__name__ == "gpuvec.mixture._numba"
    # 'diag' and 'spherical': the loop keeps more of them where it has the rows to spread over both cores
    assert _dispatch.pass_implementation(np, 1, 5000, 16, 256, "diag") is _blocked
    assert _dispatch.pass_implementation(np, 4, 5000, 16, 256, "diag").__name__ == "gpuvec.mixture._numba"
    assert _dispatch.pass_implementation(np, 1, 50000, 16, 128, "spherical").__name__ == "gpuvec.mixture._numba"
    assert _dispatch.pass_implementation(np, 1, 20000, 16, 256, "spherical") is _blocked
    assert _dispatch.pass_implementation(np, 1, 20000, 2, 1024, "spherical").__name__ == "gpuvec.mixture._numba"
    assert _dispatch.pass_implementation(np, 1, 1000, 16, 32, "tied") is _blocked
    assert _dispatch.pass_implementation(np, 1, 1000, 16, 32, "full").__name__ == "gpuvec.mixture._numba"
    monkeypatch.setenv("GPUVEC_JIT", "0")  # no compiled code; the blocked GEMMs are namespace code
    assert _dispatch.pass_implementation(np, 1, 1000, 4, 2, "full") is None
    assert _dispatch.pass_implementation(np, 1, 1000, 4, 512, "full") is _blocked
    # without the loop the rows do not matter: many rows of large K D go to the blocked GEMMs, not the reference
    assert _dispatch.pass_implementation(np, 1, 40000, 16, 512, "diag") is _blocked
    assert _dispatch.pass_implementation(np, 1, 100000, 16, 128, "spherical") is _blocked


# --------------------------------------------------------------------------- blocked GEMMs vs reference


def _reference_statistics(X, params, ct, sw, monkeypatch):
    """The namespace reference's statistics, whatever D (the blocked formulation switched off); then blocked on."""
    monkeypatch.setenv("GPUVEC_JIT", "0")
    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: False)
    ref = mixture.sufficient_statistics(X, params, ct, sw)
    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: True)
    return ref


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(
    ("stacked_rows", "K"), [(None, 5), (8, 5), (8, 3)], ids=["per-component", "stacked", "stacked-few"]
)
def test_blocked_statistics_equal_the_reference(monkeypatch, ct, weighted, dtype, stacked_rows, K):
    from gpuvec._core import dispatch as core_dispatch
    from gpuvec.mixture import _blocked

    if stacked_rows is None:  # 'full' one GEMM per component (blocks too small to stack)
        monkeypatch.setattr(_blocked, "_STACKED_ROWS", 10**9)
    else:  # 'full' all components in one GEMM per block of 20 rows
        monkeypatch.setattr(_blocked, "_STACKED_ROWS", stacked_rows)

    rng = np.random.default_rng(43)
    X = (blobs(rng, B=2, n=700, D=20) + 30.0).astype(dtype)  # away from the origin: the shift matters
    params = start_params(rng, X.astype(np.float64), K, ct)
    sw = rng.random(X.shape[:2]) if weighted else None
    if weighted:
        sw[:, :7] = 0.0
    ref = _reference_statistics(X, params, ct, sw, monkeypatch)
    # several row blocks per problem (the budget allows ~100 rows at D=20)
    monkeypatch.setitem(core_dispatch._CHUNK_ELEMENTS, "mixture", (2500, 2500))
    monkeypatch.setattr(_dispatch, "held_fraction", lambda xp, D, ct: 0.0)  # the GEMMs (the sparse sums: below)
    assert _blocked._stacked(K, 20, ct, 2500) == (ct == "full" and stacked_rows is not None)
    assert (K <= _blocked._FEW_STACKED) == (K == 3)
    got = mixture.sufficient_statistics(X, params, ct, sw)
    for name, a, b in zip(mixture.SufficientStats._fields, got, ref, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-9, err_msg=name)


def test_blocked_statistics_equal_the_reference_on_cupy(cp, monkeypatch):
    rng = np.random.default_rng(44)
    X = blobs(rng, B=2, n=500, D=24)
    params = start_params(rng, X, 4, "full")
    Xc = cp.asarray(X)
    params_c = mixture.MixtureParams(*(None if a is None else cp.asarray(a) for a in params))
    ref = _reference_statistics(Xc, params_c, "full", None, monkeypatch)
    got = mixture.sufficient_statistics(Xc, params_c, "full")
    for name, a, b in zip(mixture.SufficientStats._fields, got, ref, strict=True):
        assert type(a).__module__.startswith("cupy"), name
        np.testing.assert_allclose(cp.asnumpy(a), cp.asnumpy(b), rtol=1e-10, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("stacked_rows", [10**9, 256], ids=["per-component", "stacked"])
def test_blocked_prediction_equals_the_reference(monkeypatch, ct, stacked_rows):
    from gpuvec.mixture import _blocked

    monkeypatch.setattr(_blocked, "_STACKED_ROWS", stacked_rows)
    rng = np.random.default_rng(45)
    X = blobs(rng, B=2, n=300, D=18) - 40.0
    monkeypatch.setenv("GPUVEC_JIT", "0")
    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: False)
    gm = quiet_fit(gpuvec.GaussianMixture(3, covariance_type=ct, random_state=0, max_iter=5), X)
    ref = (gm.predict(X), gm.predict_proba(X), gm.score_samples(X))
    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: True)
    got = (gm.predict(X), gm.predict_proba(X), gm.score_samples(X))
    np.testing.assert_array_equal(got[0], ref[0])
    np.testing.assert_allclose(got[1], ref[1], rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(got[2], ref[2], rtol=1e-11)


@pytest.mark.parametrize("ct", COV_TYPES)
def test_blocked_fit_agrees_with_sklearn(monkeypatch, ct):
    sklearn_mixture = pytest.importorskip("sklearn.mixture")
    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: True)  # 'diag' would take the loop
    rng = np.random.default_rng(46)
    N, D, K = 3000, 128, 8
    X = rng.normal(size=(N, D)) + 8.0 * rng.normal(size=(K, D))[rng.integers(0, K, N)] + 5.0
    start = dict(
        weights_init=np.full(K, 1 / K),
        means_init=X[rng.choice(N, K, replace=False)],
        precisions_init={"full": np.stack([np.eye(D)] * K), "tied": np.eye(D), "diag": np.ones((K, D)),
                         "spherical": np.ones(K)}[ct],
    )  # fmt: skip
    kw = dict(n_components=K, covariance_type=ct, max_iter=4, tol=0.0, reg_covar=1e-3, **start)
    ours = quiet_fit(gpuvec.GaussianMixture(**kw), X)
    theirs = quiet_fit(sklearn_mixture.GaussianMixture(**kw), X)
    np.testing.assert_allclose(ours.lower_bound_, theirs.lower_bound_, rtol=1e-10)
    np.testing.assert_allclose(ours.means_, theirs.means_, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(ours.covariances_, theirs.covariances_, rtol=1e-7, atol=1e-9)
    # float32 data is fitted in float64 arithmetic: sklearn's fit of the same numbers in float64, not its
    # float32 fit (whose own rounding puts its lower bound 1e-9 to 1e-6 away on the bench's grid)
    X32 = X.astype(np.float32)
    ours32 = quiet_fit(gpuvec.GaussianMixture(**kw), X32)
    theirs64 = quiet_fit(sklearn_mixture.GaussianMixture(**kw), X32.astype(np.float64))
    np.testing.assert_allclose(ours32.lower_bound_, theirs64.lower_bound_, rtol=1e-10)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_blocked_label_statistics_equal_the_reference(monkeypatch, ct, weighted):
    rng = np.random.default_rng(47)
    X = blobs(rng, B=2, n=600, D=20) + 12.0
    labels = rng.integers(0, 5, X.shape[:2])
    sw = rng.random(X.shape[:2]) if weighted else None
    monkeypatch.setenv("GPUVEC_JIT", "0")
    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: False)
    ref = _xp.label_statistics(X, labels, 5, ct, sw)
    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: True)
    got = _xp.label_statistics(X, labels, 5, ct, sw)
    with np.errstate(divide="ignore"):  # log of the one-hot zeros
        log_resp = np.log(labels[..., None] == np.arange(5))
    also = _xp.resp_statistics(X, log_resp, ct, sw)  # per-component grams
    for name, a, b, c in zip(mixture.SufficientStats._fields, got, ref, also, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-9, err_msg=name)
        np.testing.assert_allclose(np.asarray(c), np.asarray(b), rtol=1e-10, atol=1e-9, err_msg=name)


@pytest.mark.parametrize(("ct", "D"), [("full", 100), ("tied", 50), ("diag", 80), ("full", 6)])
@pytest.mark.parametrize("jit", ["0", "1"])
def test_a_float32_model_predicts_in_float64(monkeypatch, ct, D, jit):
    """A model fitted on float32 data keeps float32 attributes; its predictions are computed from them in
    float64 on every path (in float32, distances of clusters far from the origin lost nats)."""
    monkeypatch.setenv("GPUVEC_JIT", jit)
    rng = np.random.default_rng(0)
    centres = np.stack([np.full(D, 100.0), np.full(D, 5000.0)])
    X = (centres[rng.integers(0, 2, 600)] + 1e-3 * rng.normal(size=(600, D))).astype(np.float32)
    gm = quiet_fit(gpuvec.GaussianMixture(2, covariance_type=ct, means_init=centres, max_iter=10, reg_covar=1e-9), X)
    assert gm.means_.dtype == np.float32
    same = gpuvec.GaussianMixture(2, covariance_type=ct)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "converged_",
                 "n_iter_", "lower_bound_", "n_features_in_"):  # fmt: skip
        value = getattr(gm, name)
        setattr(same, name, value.astype(np.float64) if isinstance(value, np.ndarray) else value)
    np.testing.assert_allclose(gm.score_samples(X), same.score_samples(X), rtol=1e-6)  # the output is float32
    np.testing.assert_array_equal(gm.predict(X), same.predict(X))


@pytest.mark.parametrize("far_component", [False, True])
def test_blocked_tied_distances_where_the_expansion_cancels(far_component):
    """'tied' distances are |y|^2 - 2 y.dP + |dP|^2 in one GEMM; far from the shift that loses digits, so pairs
    below 1e-4 of |y|^2 + |dP|^2 are recomputed by subtraction: rows at a mean get exactly 0, rows 1e-3 from
    one their distance to 1e-9 (y and dP are each rounded; the expanded form is 2e-3 off there). With one
    component far away (so the first filter passes many pairs), the same."""
    from gpuvec.mixture import _blocked

    rng = np.random.default_rng(48)
    D, K = 12, 5
    d = 1e3 + rng.normal(size=(K, D))  # means 1e3 from the shift, near each other
    if far_component:
        d[-1] = 1e6
    Z = np.concatenate([d[:3], d[1] + 1e-3 * rng.normal(size=(40, D)), d[2] + rng.normal(size=(40, D))])
    L = np.linalg.cholesky(np.cov(rng.normal(size=(D, 3 * D))))
    P = np.linalg.inv(L).T  # a precision Cholesky factor, upper triangular
    constant = np.zeros(K)
    lp = _blocked._weighted_log_prob(np, Z, d, P, constant, "tied", stacked=_blocked._triangle_groups(np, P))
    exact = np.einsum("nkd,nkd->nk", *(2 * [np.einsum("nkd,de->nke", Z[:, None, :] - d, P)]))
    np.testing.assert_allclose(-2.0 * lp, exact, rtol=1e-9)
    assert (lp[np.arange(3), np.arange(3)] == 0.0).all()


@pytest.mark.parametrize("ct", ["full", "tied"])
@pytest.mark.parametrize("stacked_rows", [None, 8], ids=["per-component", "stacked"])
@pytest.mark.parametrize("factor", ["upper", "lower"])
def test_blocked_products_by_triangle_groups_equal_the_reference(monkeypatch, ct, stacked_rows, factor):
    """At D = 100 the products with upper-triangular factors run in three column groups (each group's
    outputs from the leading rows only); a lower factor (P P^T the precision, as the public functions take
    it) runs as one GEMM: both equal the reference's statistics and prediction."""
    from gpuvec._core import dispatch as core_dispatch
    from gpuvec.mixture import _blocked

    if ct == "tied" and stacked_rows is not None:
        pytest.skip("'tied' has one factor: nothing to stack")
    monkeypatch.setattr(_blocked, "_STACKED_ROWS", 10**9 if stacked_rows is None else stacked_rows)
    rng = np.random.default_rng(49)
    X = blobs(rng, B=2, n=400, D=100) + 3.0
    params = start_params(rng, X, 3, ct)
    if factor == "lower":
        P = np.linalg.cholesky(np.linalg.inv(params.covariances))
        params = params._replace(precisions_cholesky=P)
    P = params.precisions_cholesky
    assert len(_blocked._triangle_groups(np, P)) == (3 if factor == "upper" else 1)
    ref = _reference_statistics(X, params, ct, None, monkeypatch)
    monkeypatch.setitem(core_dispatch._CHUNK_ELEMENTS, "mixture", (40000, 40000))
    assert _blocked._stacked(3, 100, ct, 40000) == (ct == "full" and stacked_rows is not None)
    got = mixture.sufficient_statistics(X, params, ct)
    for name, a, b in zip(mixture.SufficientStats._fields, got, ref, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-10, atol=1e-9, err_msg=name)
    log_resp, log_norm = mixture.e_step(X, params.weights, params.means, P, ct)
    out = np.empty(X.shape[:2])
    _blocked.e_step_outputs(X, params.weights, params.means, P, ct, "log_norm", out)
    np.testing.assert_allclose(out, log_norm, rtol=1e-11)


def _record_nonzero_blocks(monkeypatch) -> list[bool]:
    """A list that records, block by block, whether the blocked pass took the sums over nonzero responsibilities."""
    from gpuvec.mixture import _blocked

    taken: list[bool] = []
    nonzero_by_component = _blocked._nonzero_by_component

    def recorded(*args):
        nonzero = nonzero_by_component(*args)
        taken.append(nonzero is not None)
        return nonzero

    monkeypatch.setattr(_blocked, "_nonzero_by_component", recorded)
    return taken


@pytest.mark.parametrize("ct", ["full", "diag", "spherical"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("stacked_rows", [None, 8], ids=["per-component", "stacked"])
def test_blocked_sums_over_nonzero_responsibilities_equal_the_gemms(monkeypatch, ct, weighted, stacked_rows):
    """Components far apart leave exact zeros in the responsibilities; the M-step's sums over each
    component's nonzero rows (``held``) equal the GEMMs over all rows to rounding, with an empty component
    (its mean far from every row), zero-weight rows, and blocks dense enough to take the GEMMs beside
    blocks that take the sparse sums."""
    from gpuvec._core import dispatch as core_dispatch
    from gpuvec.mixture import _blocked

    monkeypatch.setattr(_blocked, "_STACKED_ROWS", 10**9 if stacked_rows is None else stacked_rows)
    rng = np.random.default_rng(51)
    D, K = 20, 5
    centres = 60.0 * rng.normal(size=(2, K, D))  # far apart: most responsibilities underflow to exactly 0
    labels = rng.integers(0, K - 1, (2, 600))  # nobody near the last component
    X = centres[np.arange(2)[:, None], labels] + rng.normal(size=(2, 600, D))
    X[:, :300] = centres[:, :1] * 0.5 + centres[:, 1:2] * 0.5 + rng.normal(size=(2, 300, D))  # between two
    unit = {"full": np.broadcast_to(np.eye(D), (2, K, D, D)), "diag": np.ones((2, K, D)), "spherical": np.ones((2, K))}
    params = start_params(rng, X, K, ct)._replace(means=centres.copy(), precisions_cholesky=unit[ct].copy())
    sw = rng.random(X.shape[:2]) if weighted else None
    if weighted:
        sw[:, 50:60] = 0.0
    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: True)
    monkeypatch.setitem(core_dispatch._CHUNK_ELEMENTS, "mixture", (1500, 1500))  # several blocks per problem
    monkeypatch.setattr(_dispatch, "held_fraction", lambda xp, D, ct: 0.0)
    dense = mixture.sufficient_statistics(X, params, ct, sw)
    taken = _record_nonzero_blocks(monkeypatch)
    monkeypatch.setattr(_dispatch, "held_fraction", lambda xp, D, ct: 0.3)
    held = mixture.sufficient_statistics(X, params, ct, sw)
    assert True in taken and False in taken  # sparse blocks, and the dense first ones (rows between two)
    assert float(np.asarray(dense.nk)[:, -1].max()) == 0.0  # the empty component
    for name, a, b in zip(mixture.SufficientStats._fields, held, dense, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-12, atol=1e-9, err_msg=name)


@pytest.mark.parametrize(("ct", "D", "K"), [("full", 128, 4), ("diag", 512, 8), ("spherical", 1024, 8)])
def test_fits_with_the_dispatch_held_fraction_equal_the_dense_sums(monkeypatch, ct, D, K):
    """The dispatch's own held_fraction, whole fits on clusters far apart: some blocks take the sums over
    nonzero responsibilities, and the fit equals the one with the GEMMs over every row to rounding."""
    rng = np.random.default_rng(7)
    centres = 3.0 * rng.normal(size=(K, D))
    X = centres[rng.integers(0, K, 1200)] + rng.normal(size=(1200, D))
    means = centres + 0.1 * rng.normal(size=(K, D))
    taken = _record_nonzero_blocks(monkeypatch)

    def fit():
        gm = mixture.GaussianMixture(
            K, covariance_type=ct, means_init=means, max_iter=4, tol=0, reg_covar=1e-3, random_state=0
        )  # the same start for both fits (random_state=None drew a new k-means start for each)
        return gm.fit(X)

    held = fit()
    assert any(taken)
    monkeypatch.setattr(_dispatch, "held_fraction", lambda xp, D, ct: 0.0)
    taken.clear()
    dense = fit()
    assert not any(taken)
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(getattr(held, name), getattr(dense, name), rtol=1e-10, atol=1e-12, err_msg=name)
    assert held.lower_bound_ == pytest.approx(dense.lower_bound_, rel=1e-12)


@pytest.mark.parametrize("ct", COV_TYPES)
@pytest.mark.parametrize("weighted", [False, True])
def test_blocked_halves_sum_the_same_on_one_thread_and_two(monkeypatch, ct, weighted):
    """Large problems' rows go in two halves, on two threads where there are two: the halves are fixed by the
    shape, so one thread (GPUVEC_NUM_THREADS=1) gives the same statistics to the bit, and both equal those
    of one range of rows to rounding."""
    from gpuvec._core import dispatch as core_dispatch

    rng = np.random.default_rng(50)
    X = blobs(rng, B=2, n=500, D=40) + 5.0
    params = start_params(rng, X, 4, ct)
    sw = rng.random(X.shape[:2]) if weighted else None
    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: True)
    monkeypatch.setitem(core_dispatch._CHUNK_ELEMENTS, "mixture", (4000, 4000))  # several blocks per half
    whole = mixture.sufficient_statistics(X, params, ct, sw)
    monkeypatch.setattr(_dispatch, "HALVES_FROM", 1000)
    assert len(_dispatch.row_spans(np, 1000, 40, 4, ct)) == 2
    from gpuvec.mixture import _blocked

    threaded = []
    run_parallel = _blocked.run_parallel
    monkeypatch.setattr(_blocked, "run_parallel", lambda *a: threaded.append(a[2]) or run_parallel(*a))
    two = mixture.sufficient_statistics(X, params, ct, sw)
    assert threaded == [2, 2] or gpuvec._core.threads.worker_threads() == 1  # two problems, two threads each
    monkeypatch.setenv("GPUVEC_NUM_THREADS", "1")
    one = mixture.sufficient_statistics(X, params, ct, sw)
    for name, a, b, c in zip(mixture.SufficientStats._fields, two, one, whole, strict=True):
        np.testing.assert_array_equal(a, b, err_msg=name)
        np.testing.assert_allclose(a, c, rtol=1e-11, atol=1e-10, err_msg=name)


@pytest.mark.parametrize("ct", ["diag", "spherical", "tied"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("halves", [False, True])
def test_kept_rows_give_the_fit_of_rows_made_every_pass(monkeypatch, ct, weighted, halves):
    """'diag' and 'spherical' fits keep their rows ([Z | Z^2], or Z and |z|^2) from the first pass for the
    others, and 'tied' its rows' grams: the same numbers as making them each pass, so the same fit to the
    bit, problems that converge early included (the rows of those left are made again), with the rows in
    two halves on two threads too."""
    from gpuvec.mixture import _blocked, _em

    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: True)
    monkeypatch.setattr(_dispatch, "expanded_tied", lambda N, D: False)  # its own test, below
    if halves:
        monkeypatch.setattr(_dispatch, "HALVES_FROM", 1000)
    rng = np.random.default_rng(51)
    X = blobs(rng, B=3, n=400, D=48) + 4.0
    X[1] = rng.normal(size=X[1].shape)  # one problem converges at once, the others later
    sw = rng.random(X.shape[:2]) if weighted else None
    made, grams = [], []
    monkeypatch.setattr(_blocked, "KeptRows", type("Spy", (_blocked.KeptRows,), {}))
    real_init = _blocked.KeptRows.__init__

    def spy(self, xp, B, *args):
        made.append(B)
        real_init(self, xp, B, *args)

    monkeypatch.setattr(_blocked.KeptRows, "__init__", spy)
    for name in ("_add_gram", "_add_weighted_gram"):  # 'tied': every pass's grams, or the first's only
        real = getattr(_blocked, name)
        monkeypatch.setattr(_blocked, name, lambda *a, real=real: grams.append(1) or real(*a))
    kw = dict(n_components=3, covariance_type=ct, random_state=0, max_iter=30, tol=1e-4)
    kept = quiet_fit(gpuvec.GaussianMixture(**kw), X, sample_weight=sw)
    assert made[0] == 3 and len(made) >= 2 and made[-1] < 3  # rows kept, and made again for those left
    kept_grams = len(grams)
    monkeypatch.setattr(_dispatch, "KEEP_ROWS_ELEMENTS", 0)
    monkeypatch.setattr(_em, "keep_grams", lambda *a: False)
    made.clear()
    grams.clear()
    fresh = quiet_fit(gpuvec.GaussianMixture(**kw), X, sample_weight=sw)
    assert made == []
    if ct == "tied":  # the passes after each problem set's first added no grams
        assert 0 < kept_grams < len(grams) / 3, (kept_grams, len(grams))
    for name in ("lower_bound_", "n_iter_", "weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(kept, name), getattr(fresh, name), err_msg=name)


@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("halves", [False, True])
@pytest.mark.parametrize("data", ["near", "far", "collinear"])
def test_tied_passes_without_the_whitened_rows(monkeypatch, weighted, halves, data):
    """A 'tied' fit's passes after the first score the rows as z . (Lambda d_k) + c_k, the whitened norms'
    sum taken as tr(Lambda S) from the kept grams: the same fit as the whitened form to rounding (problems
    that converge early included). Where that rounding could pass 1e-10 nats a row, the whitened form runs:
    the same fit to the bit. That is rows far from the shift, and collinear features (standardized
    near-duplicate columns: the trace's terms cancel; 6.5e-10 nats a row in one such case)."""
    from gpuvec.mixture import _blocked

    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: True)
    if halves:
        monkeypatch.setattr(_dispatch, "HALVES_FROM", 1000)
    rng = np.random.default_rng(54)
    X = blobs(rng, B=3, n=400, D=48) + 4.0
    X[1] = rng.normal(size=X[1].shape)  # one problem converges at once, the others later
    if data == "far":  # two groups of rows 2e4 apart: both far from the data's mean
        X[:, ::2] += 2e4
    if data == "collinear":
        X[:, :, 24:] = X[:, :, :24] + 1e-3 * rng.normal(size=X[:, :, :24].shape)
        X = (X - X.mean(1, keepdims=True)) / X.std(1, keepdims=True)
    sw = rng.random(X.shape[:2]) if weighted else None
    scored = []
    real = _blocked._tied_expanded
    monkeypatch.setattr(_blocked, "_tied_expanded", lambda *a: scored.append(1) or real(*a))
    kw = dict(n_components=3, covariance_type="tied", random_state=0, max_iter=30, tol=1e-4, reg_covar=1e-6)
    expanded = quiet_fit(gpuvec.GaussianMixture(**kw), X, sample_weight=sw)
    assert len(scored) >= 3  # every pass after the first (of each problem set)
    monkeypatch.setattr(_dispatch, "expanded_tied", lambda N, D: False)
    whitened = quiet_fit(gpuvec.GaussianMixture(**kw), X, sample_weight=sw)
    for name in ("lower_bound_", "n_iter_", "weights_", "means_", "covariances_", "precisions_cholesky_"):
        a, b = getattr(expanded, name), getattr(whitened, name)
        if data != "near":  # the products were made, the guard kept the whitened form
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11, err_msg=name)
    if data == "near":  # rounding apart, not the same computation
        assert not np.array_equal(expanded.covariances_, whitened.covariances_)


def test_tied_passes_without_the_whitened_rows_on_cupy(cp, monkeypatch):
    """On cupy too (kept grams, the expanded scores and their guards): the fit of the whitened form to
    rounding, in cupy arrays."""
    from gpuvec.mixture import _blocked

    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: True)
    rng = np.random.default_rng(55)
    X = cp.asarray(blobs(rng, B=2, n=400, D=48) + 4.0)
    scored = []
    real = _blocked._tied_expanded
    monkeypatch.setattr(_blocked, "_tied_expanded", lambda *a: scored.append(1) or real(*a))
    kw = dict(n_components=3, covariance_type="tied", random_state=0, max_iter=10, tol=0.0)
    expanded = quiet_fit(gpuvec.GaussianMixture(**kw), X)
    assert len(scored) >= 9 and type(expanded.means_).__module__.startswith("cupy")
    monkeypatch.setattr(_dispatch, "expanded_tied", lambda N, D: False)
    whitened = quiet_fit(gpuvec.GaussianMixture(**kw), X)
    for name in ("lower_bound_", "weights_", "means_", "covariances_"):
        a, b = (cp.asnumpy(cp.asarray(getattr(m, name))) for m in (expanded, whitened))
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-11, err_msg=name)


def test_the_halves_threads_keep_the_callers_error_callback(monkeypatch):
    """numpy's error state does not reach a pool's threads: the halves take the caller's, its callback too."""
    import threading

    from gpuvec.mixture._covariance import precision_cholesky

    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=0: True)
    monkeypatch.setattr(_dispatch, "HALVES_FROM", 1000)
    rng = np.random.default_rng(52)
    B, N, D, K = 1, 2000, 64, 4
    X = rng.normal(size=(B, N, D))
    X[0, 0] = X[0, -1] = 1e200  # overflows in both halves' products
    cov = np.ones((B, K, D))
    params = mixture.MixtureParams(np.full((B, K), 1 / K), X[:, :K].copy(), cov, precision_cholesky(np, cov, "diag"))
    from concurrent.futures import ThreadPoolExecutor

    from gpuvec.mixture import _blocked

    def each_on_a_thread(fn, spans, threads):  # every span on a pool thread (run_parallel may take both itself)
        with ThreadPoolExecutor(len(spans)) as pool:
            for future in [pool.submit(fn, lo, hi) for lo, hi in spans]:
                future.result()

    monkeypatch.setattr(_blocked, "run_parallel", each_on_a_thread)
    seen = []
    with np.errstate(over="call", invalid="call", call=lambda kind, flag: seen.append(threading.current_thread())):
        mixture.sufficient_statistics(X, params, "diag", shift=np.zeros((B, 1, D)))
    assert any(t is not threading.main_thread() for t in seen)  # the pool threads called it, no NameError


def test_kept_rows_survive_the_pass_moving_to_the_loop_mid_fit(monkeypatch):
    """The implementation is chosen every pass (numba loaded by another thread, GPUVEC_JIT changed): a fit that
    keeps its rows goes on through the loop (or the reference) when the choice moves, and back."""
    calls = []

    def flipping(K, D, ct, samples=None):
        calls.append(len(calls) < 3 or len(calls) % 2 == 1)  # the start, rows kept, blocked passes, alternating
        return calls[-1]

    pytest.importorskip("gpuvec.mixture._numba")  # loaded: the other pass is the loop
    monkeypatch.setattr(_dispatch, "blocked_pays", flipping)
    rng = np.random.default_rng(53)
    X = blobs(rng, B=1, n=300, D=40)[0] + 2.0
    kw = dict(n_components=3, covariance_type="diag", random_state=0, max_iter=8, tol=0.0)
    fit = quiet_fit(gpuvec.GaussianMixture(**kw), X)
    assert calls[:4] == [True, True, True, True] and calls.count(False) >= 3  # the choice moved mid-fit, twice
    monkeypatch.setattr(_dispatch, "blocked_pays", lambda K, D, ct, samples=None: True)
    monkeypatch.setattr(_dispatch, "KEEP_ROWS_ELEMENTS", 0)
    plain = quiet_fit(gpuvec.GaussianMixture(**kw), X)
    np.testing.assert_allclose(fit.lower_bound_, plain.lower_bound_, rtol=1e-12)
    np.testing.assert_allclose(fit.means_, plain.means_, rtol=1e-10, atol=1e-12)
