"""Compiled CPU loops of the Gaussian mixtures (numba): the E-step and its sufficient statistics, fused.

For every covariance type on numpy data, one pass over a block of samples
computes every sample's log density under every component (sklearn's
``y = z P_k - mu'_k P_k``, ``|y|^2``; 'diag' and 'spherical' factors are
diagonal matrices here, and only their diagonal is multiplied), the
log-sum-exp over components, the responsibilities, and adds them straight
into the weighted sums ``nk``, ``sum r z`` and ``sum r z z^T`` (upper
triangle, mirrored at the end; the diagonal only for 'diag' and 'spherical', whose
statistics keep its sum). Nothing
of size (samples x components x features) is ever built, every sum runs in
float64 whatever X's dtype, and X is read once per pass.

The loops run over blocks of ``_NB`` samples with the sample index innermost,
so that LLVM vectorises them; the only fast-math flags are ``reassoc`` (the
block sums vectorise) and ``contract`` (multiply-adds fuse): the results agree
with :mod:`gpuvec.mixture._em`'s numpy reference to rounding (a test compares
them).

Work is split into *items* (one problem, a range of its samples) whose partial
sums are written separately and added in item order: the result does not
depend on how many threads ran. The functions are module-level
``numba.njit(cache=True, nogil=True)`` (:func:`gpuvec._core.jit.cached_njit`):
a new process loads them from numba's on-disk cache (where numba has a writable
cache directory), and the Python threads of :func:`run_items` run them in
parallel without the GIL (one thread from a non-main thread, see
:func:`gpuvec._core.threads.worker_threads`).

Same names and signatures as the numpy reference in :mod:`gpuvec.mixture._em`:
:func:`moments` (sufficient statistics) and :func:`e_step_outputs` (labels,
log-likelihoods or responsibilities of prediction).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gpuvec._core.jit import cached_njit
from gpuvec._core.threads import run_parallel, threads_for
from gpuvec.mixture._covariance import COVARIANCE_TYPES, per_component

__all__ = ["e_step_outputs", "label_moments", "min_sq_dist", "moments", "nearest"]

_NB = 64  # samples per vector block
_FAST = {"reassoc", "contract"}
_LOG_2PI = math.log(2 * math.pi)


# exp in arithmetic that vectorises (numba calls libm's scalar exp otherwise, ~40% of a pass).
_POW2 = np.array([2.0**k if k >= -1074 else 0.0 for k in range(-1100, 1024)])  # 2**n, n in [-1100, 1023]
_LOG2E = 1.4426950408889634
_LN2_HI = 0.6931471803691238  # ln 2 in two parts: n * _LN2_HI is exact for |n| < 2**11
_LN2_LO = 1.9082149292705877e-10
_INV_FACT = tuple(1.0 / math.factorial(i) for i in range(13))


@cached_njit(nogil=True, error_model="numpy", fastmath=_FAST, inline="always")
def _exp(x):
    """exp(x) within 3 ulp for -708.39 < x <= 709 (the callers pass x <= 0): x = n ln2 + r with |r| <= ln2 / 2,
    a degree-12 Taylor polynomial of exp(r) (truncation < 2e-16), times 2**n from a table. Below -708.39
    (where exp is subnormal) 0: subnormal responsibilities made every operation touching them ~7x slower
    (data with far-apart components), and one below 2.3e-308 beside the leading component's 1 changes no
    sum. NaN gives NaN, -inf 0, x > 709.78 inf; branch-free, so that the loops around it vectorise."""
    xc = x if x > -708.39 else -745.2  # 2**-1075 below: 0; NaN too: the index below stays in the table
    xc = xc if xc < 709.0 else 709.0
    n = np.floor(xc * _LOG2E + 0.5)
    r = (xc - n * _LN2_HI) - n * _LN2_LO
    p = _INV_FACT[12]
    p = p * r + _INV_FACT[11]
    p = p * r + _INV_FACT[10]
    p = p * r + _INV_FACT[9]
    p = p * r + _INV_FACT[8]
    p = p * r + _INV_FACT[7]
    p = p * r + _INV_FACT[6]
    p = p * r + _INV_FACT[5]
    p = p * r + _INV_FACT[4]
    p = p * r + _INV_FACT[3]
    p = p * r + _INV_FACT[2]
    p = p * r + 1.0
    p = p * r + 1.0
    res = p * _POW2[int(n) + 1100]
    res = res if x < 709.78 else np.inf
    return res if x == x else x


@cached_njit(nogil=True, error_model="numpy", fastmath=_FAST, inline="always")
def _block_log_prob(X, b, start, m, shift, P, mup, c, structure, zt, y, maha, lp):
    """Log density plus log weight of samples ``start:start+m`` of problem b under every component into lp (K, NB).

    ``structure`` of the precision factors P: 0 dense, 1 upper triangular (both (B, K, D, D)), 2 diagonal
    (P (B, K, D, 1): the diagonal only)."""
    D = X.shape[2]
    K = P.shape[1]
    for i in range(D):
        sh = shift[b, i]
        for s in range(m):
            zt[i, s] = X[b, start + s, i] - sh
    for k in range(K):
        for s in range(m):
            maha[s] = 0.0
        if structure == 2:  # diagonal factors: one multiply-add a feature, no y to keep
            for j in range(D):
                mj = mup[b, k, j]
                p = P[b, k, j, 0]
                for s in range(m):
                    t = zt[j, s] * p - mj
                    maha[s] += t * t
            ck = c[b, k]
            for s in range(m):
                lp[k, s] = ck - 0.5 * maha[s]
            continue
        for j in range(D):
            mj = mup[b, k, j]
            for s in range(m):
                y[s] = -mj
            first = j if structure == 2 else 0
            last = j + 1 if structure >= 1 else D
            for i in range(first, last):
                p = P[b, k, i, 0] if structure == 2 else P[b, k, i, j]
                for s in range(m):
                    y[s] += zt[i, s] * p
            for s in range(m):
                maha[s] += y[s] * y[s]
        ck = c[b, k]
        for s in range(m):
            lp[k, s] = ck - 0.5 * maha[s]


@cached_njit(nogil=True, error_model="numpy", fastmath=_FAST, inline="always")
def _block_log_norm(K, m, lp, lse, mx, tot):
    """log-sum-exp over components of lp (K, NB) into lse (NB), shifted by the max as scipy's; lp becomes
    ``exp(lp - max)`` and tot its sum over components (so that responsibilities cost no second exp)."""
    for s in range(m):
        mx[s] = lp[0, s]
    for k in range(1, K):
        for s in range(m):
            mx[s] = max(mx[s], lp[k, s])
    for s in range(m):
        if not np.isfinite(mx[s]):
            mx[s] = 0.0
        tot[s] = 0.0
    for k in range(K):
        for s in range(m):
            e = _exp(lp[k, s] - mx[s])
            lp[k, s] = e
            tot[s] += e
    for s in range(m):
        lse[s] = np.log(tot[s]) + mx[s]


@cached_njit(nogil=True, error_model="numpy", fastmath=_FAST)
def _moments_items(X, sw, has_sw, shift, P, mup, c, structure, items, lo, hi, nk_out, sx_out, sxx_out, ll_out, ws_out):
    """Items ``lo:hi`` (rows of ``items``: problem, first sample, end) into their own partial sums; with diagonal
    factors (``structure`` 2) only the diagonal of sxx, in sxx_out (n, K, D, 1)."""
    D = X.shape[2]
    K = P.shape[1]
    zt = np.empty((D, _NB))
    y = np.empty(_NB)
    maha = np.empty(_NB)
    lp = np.empty((K, _NB))
    lse = np.empty(_NB)
    mx = np.empty(_NB)
    tot = np.empty(_NB)
    w = np.empty(_NB)
    rz = np.empty(_NB)
    for it in range(lo, hi):
        b = items[it, 0]
        s0 = items[it, 1]
        s1 = items[it, 2]
        nk = nk_out[it]
        sx = sx_out[it]
        sxx = sxx_out[it]
        nk[:] = 0.0
        sx[:] = 0.0
        sxx[:] = 0.0
        ll = 0.0
        ws = 0.0
        for start in range(s0, s1, _NB):
            m = min(_NB, s1 - start)
            _block_log_prob(X, b, start, m, shift, P, mup, c, structure, zt, y, maha, lp)
            _block_log_norm(K, m, lp, lse, mx, tot)
            for s in range(m):
                w[s] = sw[b, start + s] if has_sw else 1.0
            for s in range(m):
                if w[s] > 0:
                    ll += w[s] * lse[s]
                    tot[s] = w[s] / tot[s]
                else:  # a zero-weight row touches no sum, whatever it holds (0 * inf is NaN)
                    tot[s] = 0.0
                    for k in range(K):
                        lp[k, s] = 0.0
                    for i in range(D):
                        zt[i, s] = 0.0
                ws += w[s]
            for k in range(K):
                for s in range(m):
                    lp[k, s] *= tot[s]  # the responsibilities, weighted
                acc = 0.0
                for s in range(m):
                    acc += lp[k, s]
                nk[k] += acc
                for i in range(D):
                    acc = 0.0
                    if structure == 2:  # the first and second moments in one sweep
                        acc2 = 0.0
                        for s in range(m):
                            r = lp[k, s] * zt[i, s]
                            acc += r
                            acc2 += r * zt[i, s]
                        sx[k, i] += acc
                        sxx[k, i, 0] += acc2
                        continue
                    for s in range(m):
                        rz[s] = lp[k, s] * zt[i, s]
                        acc += rz[s]
                    sx[k, i] += acc
                    for j in range(i, D):
                        acc = 0.0
                        for s in range(m):
                            acc += rz[s] * zt[j, s]
                        sxx[k, i, j] += acc
        if structure != 2:
            for k in range(K):
                for i in range(D):
                    for j in range(i + 1, D):
                        sxx[k, j, i] = sxx[k, i, j]
        ll_out[it] = ll
        ws_out[it] = ws


@cached_njit(nogil=True, error_model="numpy", fastmath=_FAST)
def _e_step_items(X, shift, P, mup, c, structure, items, lo, hi, what, labels, log_norm, proba):
    """Items ``lo:hi`` into labels (what 0), log p(x) (1) or responsibilities (2), at the items' samples."""
    D = X.shape[2]
    K = P.shape[1]
    zt = np.empty((D, _NB))
    y = np.empty(_NB)
    maha = np.empty(_NB)
    lp = np.empty((K, _NB))
    lse = np.empty(_NB)
    mx = np.empty(_NB)
    tot = np.empty(_NB)
    for it in range(lo, hi):
        b = items[it, 0]
        for start in range(items[it, 1], items[it, 2], _NB):
            m = min(_NB, items[it, 2] - start)
            _block_log_prob(X, b, start, m, shift, P, mup, c, structure, zt, y, maha, lp)
            if what == 0:  # argmax of the log responsibilities: of lp itself (the first of equals)
                for s in range(m):
                    best = 0
                    for k in range(1, K):
                        if lp[k, s] > lp[best, s]:
                            best = k
                    labels[b, start + s] = best
                continue
            _block_log_norm(K, m, lp, lse, mx, tot)
            if what == 1:
                for s in range(m):
                    log_norm[b, start + s] = lse[s]
            else:
                for s in range(m):
                    for k in range(K):
                        proba[b, start + s, k] = lp[k, s] / tot[s]


@cached_njit(nogil=True, error_model="numpy", fastmath=_FAST)
def _label_items(X, labels, sw, has_sw, shift, items, lo, hi, nk_out, sx_out, sxx_out, ws_out):
    """One-hot statistics (each sample's weight to its label's component) of items ``lo:hi``; sxx_out is
    (n, K, D, D), or (n, K, D) for the diagonal only."""
    D = X.shape[2]
    full = sxx_out.ndim == 4
    z = np.empty(D)
    for it in range(lo, hi):
        b = items[it, 0]
        nk = nk_out[it]
        sx = sx_out[it]
        sxx = sxx_out[it]
        nk[:] = 0.0
        sx[:] = 0.0
        sxx[:] = 0.0
        ws = 0.0
        for n in range(items[it, 1], items[it, 2]):
            w = sw[b, n] if has_sw else 1.0
            if w == 0.0:  # a zero-weight row touches no sum, whatever it holds
                continue
            ws += w
            k = labels[b, n]
            nk[k] += w
            for i in range(D):
                z[i] = X[b, n, i] - shift[b, i]
                sx[k, i] += w * z[i]
            if full:
                for i in range(D):
                    wz = w * z[i]
                    for j in range(i, D):
                        sxx[k, i, j] += wz * z[j]
            else:
                for i in range(D):
                    sxx[k, i] += w * z[i] * z[i]
        if full:
            K = nk.shape[0]
            for k in range(K):
                for i in range(D):
                    for j in range(i + 1, D):
                        sxx[k, j, i] = sxx[k, i, j]
        ws_out[it] = ws


@cached_njit(nogil=True, error_model="numpy")
def _nearest_items(X, centers, items, lo, hi, labels):
    """Label of the nearest centre (squared distance in float64, the first of equals) of the items' samples."""
    D = X.shape[2]
    K = centers.shape[1]
    for it in range(lo, hi):
        b = items[it, 0]
        for n in range(items[it, 1], items[it, 2]):
            best = 0
            best_d = np.inf
            for k in range(K):
                d2 = 0.0
                for i in range(D):
                    t = np.float64(X[b, n, i]) - centers[b, k, i]
                    d2 += t * t
                if d2 < best_d:
                    best_d = d2
                    best = k
            labels[b, n] = best


@cached_njit(nogil=True, error_model="numpy")
def _min_sq_dist_items(X, center, items, lo, hi, d2, first):
    """d2 = min(d2, |x - centre|^2) (or the distance itself where ``first``) for the items' samples."""
    D = X.shape[2]
    for it in range(lo, hi):
        b = items[it, 0]
        for n in range(items[it, 1], items[it, 2]):
            acc = 0.0
            for i in range(D):
                t = np.float64(X[b, n, i]) - center[b, i]
                acc += t * t
            if first or acc < d2[b, n]:
                d2[b, n] = acc


# --------------------------------------------------------------------------- host side


def _prepare(X, weights, means, P, covariance_type, shift):
    """Float64 contiguous per-component factors: shift (B, D), P, mu'P (B, K, D), constants (B, K), and the
    structure of P: 0 dense or 1 upper triangular, P (B, K, D, D); 2 diagonal ('diag', 'spherical'), P
    (B, K, D, 1) holding the diagonal only (O(K D) memory, as the factors themselves)."""
    B, _, D = X.shape
    K = means.shape[1]
    P = np.asarray(P, dtype=np.float64)
    shift = np.ascontiguousarray(np.asarray(shift, dtype=np.float64).reshape(B, D))
    dmu = np.asarray(means, dtype=np.float64) - shift[:, None, :]
    P = per_component(np, P, covariance_type, K, D)
    if not COVARIANCE_TYPES[covariance_type].full_matrix:  # diagonal factors, (B, K, D)
        diagonal = P
        P = np.ascontiguousarray(diagonal[..., None])
        mup = np.ascontiguousarray(dmu * diagonal)
        structure = 2
    else:
        P = np.ascontiguousarray(P)
        mup = np.ascontiguousarray(np.matmul(dmu[:, :, None, :], P)[:, :, 0, :])
        diagonal = np.diagonal(P, axis1=-2, axis2=-1)
        structure = 1 if bool((np.tril(P, -1) == 0).all()) else 0
    with np.errstate(divide="ignore", invalid="ignore"):
        log_det = np.log(diagonal).sum(-1)
        c = np.ascontiguousarray(-0.5 * D * _LOG_2PI + log_det + np.log(np.asarray(weights, dtype=np.float64)))
    return shift, P, mup, c, structure


# Samples of the smallest range with its own partial sums: ranges are fixed by the data's size (never by the
# thread count: the sums are the same on any number of threads), and ranges of 4096 left fits of N < 8192 on
# one thread of two (N = 5000, D = 256, K = 5 'diag': 17.5 -> 13.7 ms a fit with 1024).
_MIN_ITEM = 1024


def _items(B: int, N: int, per_problem: int, budget: int) -> np.ndarray:
    """(problem, first sample, end) rows: a problem's samples in ranges of ~budget / (K D) samples, at most
    64 ranges per problem and ~budget partial-sum elements in all."""
    step = max(_MIN_ITEM, -(-N // 64), -(-N * B * per_problem // max(1, budget)))
    starts = np.arange(0, N, step)
    rows = np.empty((B * starts.size, 3), dtype=np.int64)
    rows[:, 0] = np.repeat(np.arange(B), starts.size)
    rows[:, 1] = np.tile(starts, B)
    rows[:, 2] = np.minimum(rows[:, 1] + step, N)
    return rows


def _spans(items: np.ndarray, parts: int) -> list[tuple[int, int]]:
    """``parts`` contiguous ranges of item rows with about equal numbers of samples."""
    cost = np.cumsum(items[:, 2] - items[:, 1])
    cuts = np.searchsorted(cost, cost[-1] * np.arange(1, parts) / parts, side="right") if items.shape[0] else []
    edges = [0, *(int(c) for c in cuts), items.shape[0]]
    return [(a, b) for a, b in zip(edges[:-1], edges[1:]) if b > a]


def _contiguous_X(X):
    """X as a C-contiguous float32 or float64 array (a copy only where it is not one already)."""
    dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
    return np.ascontiguousarray(X, dtype=dtype)


def moments(X: Any, params: Any, covariance_type: str, sample_weight: Any, shift: Any, budget: int) -> tuple[Any, ...]:
    """Sufficient statistics of one E-step: ``(nk, sx, sxx, log_likelihood, weight_sum)`` as the reference's.

    Parameters
    ----------
    X : ndarray, shape (B, N, D), float32 or float64
    params : MixtureParams
        Precision Cholesky factors of ``covariance_type``.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    sample_weight : ndarray, shape (B, N), or None
    shift : ndarray, shape (B, 1, D)
    budget : int
        Elements of partial sums to allow (the mixture chunk budget).

    Returns
    -------
    nk (B, K), sx (B, K, D), sxx (B, K, D, D) (for 'tied' their total, (B, 1, D, D); for 'diag' its
    diagonal, (B, K, D); for 'spherical' the diagonal's sum, (B, K)), log_likelihood (B,), weight_sum (B,),
    all float64.
    """
    X = _contiguous_X(X)
    B, N, D = X.shape
    K = params.means.shape[1]
    shift_, P, mup, c, structure = _prepare(
        X, params.weights, params.means, params.precisions_cholesky, covariance_type, shift
    )
    width = P.shape[-1]  # D, or 1 for diagonal factors
    items = _items(B, N, K * D * width, budget)
    n = items.shape[0]
    nk, sx, sxx = np.empty((n, K)), np.empty((n, K, D)), np.empty((n, K, D, width))
    ll, ws = np.empty(n), np.empty(n)
    has_sw = sample_weight is not None
    sw = np.ascontiguousarray(sample_weight, dtype=np.float64) if has_sw else np.ones((1, 1))

    def run(lo, hi):
        _moments_items(X, sw, has_sw, shift_, P, mup, c, structure, items, lo, hi, nk, sx, sxx, ll, ws)

    run_parallel(run, _spans(items, threads_for("mixture", N * B * K * D * width)))
    per = n // B
    if per > 1:  # the ranges of each problem, added in order
        nk, sx, sxx, ll, ws = (a.reshape((B, per) + a.shape[1:]).sum(1) for a in (nk, sx, sxx, ll, ws))
    if structure == 2:
        sxx = sxx[..., 0].sum(-1) if covariance_type == "spherical" else np.ascontiguousarray(sxx[..., 0])
    if COVARIANCE_TYPES[covariance_type].shared:
        sxx = sxx.sum(1, keepdims=True)
    return nk, sx, sxx, ll, ws


def label_moments(
    X: Any, labels: Any, n_components: int, covariance_type: str, sample_weight: Any, shift: Any, budget: int
) -> tuple[Any, ...]:
    """Statistics of one-hot responsibilities given as labels: ``(nk, sx, sxx, weight_sum)`` (float64).

    ``sxx`` is shaped as :func:`moments` gives it for ``covariance_type``.
    """
    full_matrix = COVARIANCE_TYPES[covariance_type].full_matrix
    X = _contiguous_X(X)
    B, N, D = X.shape
    K = n_components
    labels = np.ascontiguousarray(labels)  # any integer type (int8 from the k-means++ start)
    shift_ = np.ascontiguousarray(np.asarray(shift, dtype=np.float64).reshape(B, D))
    items = _items(B, N, K * D * D, budget)
    n = items.shape[0]
    nk, sx, ws = np.empty((n, K)), np.empty((n, K, D)), np.empty(n)
    sxx = np.empty((n, K, D, D) if full_matrix else (n, K, D))
    has_sw = sample_weight is not None
    sw = np.ascontiguousarray(sample_weight, dtype=np.float64) if has_sw else np.ones((1, 1))

    def run(lo, hi):
        _label_items(X, labels, sw, has_sw, shift_, items, lo, hi, nk, sx, sxx, ws)

    run_parallel(run, _spans(items, threads_for("mixture", N * B * D * D)))
    per = n // B
    if per > 1:
        nk, sx, sxx, ws = (a.reshape((B, per) + a.shape[1:]).sum(1) for a in (nk, sx, sxx, ws))
    if COVARIANCE_TYPES[covariance_type].shared:
        sxx = sxx.sum(1, keepdims=True)
    elif covariance_type == "spherical":
        sxx = sxx.sum(-1)
    return nk, sx, sxx, ws


def e_step_outputs(
    X: Any, weights: Any, means: Any, precisions_cholesky: Any, covariance_type: str, what: str, out: Any
) -> Any:
    """Fill ``out`` with 'labels' (B, N) int64, 'log_norm' (B, N) or 'proba' (B, N, K) of X (float32 or float64 out)."""
    X = _contiguous_X(X)
    B, N, D = X.shape
    K = means.shape[1]
    zero = np.zeros((B, 1, D))
    shift_, P, mup, c, structure = _prepare(X, weights, means, precisions_cholesky, covariance_type, zero)
    items = _items(B, N, 1, 1 << 62)
    code = {"labels": 0, "log_norm": 1, "proba": 2}[what]
    dummy2, dummy3 = np.empty((1, 1)), np.empty((1, 1, 1))
    labels = out if code == 0 else np.empty((1, 1), dtype=np.int64)
    log_norm = out if code == 1 else dummy2
    proba = out if code == 2 else dummy3

    def run(lo, hi):
        _e_step_items(X, shift_, P, mup, c, structure, items, lo, hi, code, labels, log_norm, proba)

    run_parallel(run, _spans(items, threads_for("mixture", N * B * K * D * P.shape[-1])))
    return out


def nearest(X: Any, centers: Any, out: Any) -> Any:
    """Fill ``out`` (B, N), any integer type, with the index of each sample's nearest centre (B, K, D)."""
    X = _contiguous_X(X)
    B, N, D = X.shape
    centers = np.ascontiguousarray(centers, dtype=np.float64)
    items = _items(B, N, 1, 1 << 62)

    def run(lo, hi):
        _nearest_items(X, centers, items, lo, hi, out)

    run_parallel(run, _spans(items, threads_for("mixture", N * B * centers.shape[1] * D)))
    return out


def min_sq_dist(X: Any, center: Any, d2: Any, first: bool) -> Any:
    """``d2 = minimum(d2, |x - center|^2)`` in place (``first``: the distances themselves); center (B, D)."""
    X = _contiguous_X(X)
    B, N, D = X.shape
    center = np.ascontiguousarray(center, dtype=np.float64)
    items = _items(B, N, 1, 1 << 62)

    def run(lo, hi):
        _min_sq_dist_items(X, center, items, lo, hi, d2, first)

    run_parallel(run, _spans(items, threads_for("mixture", N * B * D * 8)))
    return d2
