"""The functional core of the Gaussian mixtures: batched E-step, M-step, sufficient statistics, EM loop.

Everything here works on batches: ``X`` of shape (B, N, D), parameters with a
leading B axis (:class:`MixtureParams`). Re-exported by :mod:`gpuvec.mixture`,
whose :class:`~gpuvec.mixture.GaussianMixture` is the sklearn adapter around
:func:`fit_em`. The per-covariance-type formulas live in
:mod:`gpuvec.mixture._covariance`.

One EM iteration is split in two halves that meet in :class:`SufficientStats`:

- :func:`sufficient_statistics`: one chunked pass over the samples; each
  chunk's E-step responsibilities go straight into weighted sums of
  ``z = x - shift`` and ``z z^T`` (three GEMMs per chunk, no (B, K, N, D)
  temporary). Statistics of disjoint sample sets with the same ``shift`` add
  up (:func:`merge_statistics`, or ``a + b``), so a dataset split in blocks
  needs one pass per block and a sum.
- :func:`params_from_statistics`: sklearn's M-step from the sums.

:func:`em_pass` is their composition, :func:`fit_em` the batched EM loop
(active set, convergence test, regularisation retry, history).

Sums over samples run in float64 whatever the input dtype; centring on
``shift`` (the data's mean) keeps the second moments from cancelling.

On numpy data with 'full' or 'tied' covariances the pass runs as one fused
compiled loop (:mod:`gpuvec.mixture._numba`, chosen by :mod:`gpuvec.mixture._dispatch`);
the code here is the reference it is tested against, and the cupy path. Called
from a non-main thread, the pass and :func:`fit_em` keep BLAS to one thread
(:mod:`gpuvec._core.threads`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from gpuvec._core.dispatch import chunk_elements
from gpuvec._core.namespace import get_namespace
from gpuvec._core.threads import blas_limited
from gpuvec.mixture import _dispatch
from gpuvec.mixture._covariance import (
    COVARIANCE_TYPES,
    EPS,
    CovarianceType,
    covariances_from_statistics,
    log_det_and_mahalanobis,
    precision_cholesky,
    sum_last,
)

__all__ = [
    "REG_COVAR_TRIES",
    "EMResult",
    "MixtureParams",
    "SufficientStats",
    "e_step",
    "e_step_chunks",
    "em_loop",
    "em_pass",
    "interleave_starts",
    "estimate_log_prob",
    "fit_em",
    "m_step",
    "label_statistics",
    "resp_statistics",
    "merge_statistics",
    "params_from_statistics",
    "regularisation_retry",
    "sufficient_statistics",
]


REG_COVAR_TRIES = 6  # tenfold reg_covar increases allowed to one M-step (the start's or an iteration's)


class MixtureParams(NamedTuple):
    """Parameters of a batch of Gaussian mixtures (B problems, K components, D features).

    Attributes
    ----------
    weights : array, shape (B, K)
    means : array, shape (B, K, D)
    covariances : array
        (B, K, D, D) full, (B, D, D) tied, (B, K, D) diag, (B, K) spherical.
    precisions_cholesky : array
        Same shape as covariances: ``P`` with ``P P^T`` the precision
        (sklearn's ``precisions_cholesky_``).
    """

    weights: Any
    means: Any
    covariances: Any
    precisions_cholesky: Any


# --------------------------------------------------------------------------- E-step


def estimate_log_prob(X: Any, means: Any, precisions_cholesky: Any, covariance_type: CovarianceType = "full") -> Any:
    """Log density of every sample under every component, batched.

    Parameters
    ----------
    X : array, shape (B, N, D)
        B problems of N samples.
    means : array, shape (B, K, D)
        The components' means.
    precisions_cholesky : array
        (B, K, D, D), (B, D, D), (B, K, D) or (B, K) by covariance_type.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        How ``precisions_cholesky`` is shaped.

    Returns
    -------
    log_prob : array, shape (B, N, K)
        ``log N(x_n | mean_k, cov_k)``.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import estimate_log_prob
    >>> lp = estimate_log_prob(np.zeros((1, 1, 2)), np.zeros((1, 1, 2)), np.eye(2)[None, None])
    >>> bool(np.isclose(lp[0, 0, 0], -np.log(2 * np.pi)))
    True
    """
    xp = get_namespace(X, means, precisions_cholesky)
    D = X.shape[-1]
    log_det, maha = log_det_and_mahalanobis(xp, X, means, precisions_cholesky, covariance_type)
    return -0.5 * (D * math.log(2 * math.pi) + maha) + log_det[:, None, :]


def _logsumexp_last(xp, a):
    """log(sum(exp(a))) over the last axis, shifted by the max as scipy's logsumexp is."""
    amax = a[..., 0].copy()
    for k in range(1, a.shape[-1]):  # K passes over (B, N): faster than a reduce over K
        xp.maximum(amax, a[..., k], out=amax)
    amax = xp.where(xp.isfinite(amax), amax, 0.0)
    with np.errstate(divide="ignore"):
        return xp.log(sum_last(xp, xp.exp(a - amax[..., None]))) + amax


def e_step(
    X: Any, weights: Any, means: Any, precisions_cholesky: Any, covariance_type: CovarianceType = "full"
) -> tuple[Any, Any]:
    """The E-step: log-responsibilities and per-sample log-likelihood, batched.

    Parameters
    ----------
    X : array, shape (B, N, D)
        B problems of N samples.
    weights : array, shape (B, K)
        The mixture weights.
    means : array, shape (B, K, D)
        The components' means.
    precisions_cholesky : array
        See :class:`MixtureParams`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        How ``precisions_cholesky`` is shaped.

    Returns
    -------
    log_resp : array, shape (B, N, K)
        Log of each component's responsibility for each sample.
    log_prob_norm : array, shape (B, N)
        ``log p(x_n)``; its mean over N is sklearn's lower bound.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import e_step
    >>> X = np.array([[[0.0], [10.0]]])
    >>> log_resp, _ = e_step(X, np.array([[0.5, 0.5]]), np.array([[[0.0], [10.0]]]), np.ones((1, 2, 1)), "diag")
    >>> np.exp(log_resp).round(3)[0]
    array([[1., 0.],
           [0., 1.]])
    """
    xp = get_namespace(X, weights, means, precisions_cholesky)
    with np.errstate(divide="ignore"):
        weighted = estimate_log_prob(X, means, precisions_cholesky, covariance_type) + xp.log(weights)[:, None, :]
    log_prob_norm = _logsumexp_last(xp, weighted)
    return weighted - log_prob_norm[..., None], log_prob_norm


def e_step_chunks(X: Any, weights: Any, means: Any, precisions_cholesky: Any, covariance_type: CovarianceType = "full"):
    """:func:`e_step` over cache-sized blocks: yields ``(problems, samples, log_resp, log_prob_norm)``.

    ``problems`` and ``samples`` are slices of the B and N axes; the blocks
    cover X once, with the same budget as :func:`sufficient_statistics`, so
    that prediction never builds the (B, N, K * D) temporary of a whole-X
    E-step. The caller keeps what it needs of each block (labels, sums).

    Examples
    --------
    >>> import numpy as np
    >>> X = np.zeros((2, 5, 1))
    >>> blocks = list(e_step_chunks(X, np.ones((2, 1)), np.zeros((2, 1, 1)), np.ones((2, 1, 1)), "diag"))
    >>> [(b.start, b.stop, s.start, s.stop, lr.shape) for b, s, lr, _ in blocks]
    [(0, 2, 0, 5, (2, 5, 1))]
    """
    B, N, D = X.shape
    per_sample = max(means.shape[1], D) * D
    budget = chunk_elements(get_namespace(X), "mixture")
    for bs in _chunks(B, N * per_sample, budget):
        for s in _chunks(N, (bs.stop - bs.start) * per_sample, budget):
            log_resp, log_norm = e_step(X[bs, s], weights[bs], means[bs], precisions_cholesky[bs], covariance_type)
            yield bs, s, log_resp, log_norm


# --------------------------------------------------------------------------- sufficient statistics


class SufficientStats(NamedTuple):
    """Weighted sums over samples that the M-step needs, for a batch of B problems.

    Statistics of disjoint sets of samples of the same problems add up when they
    share ``shift``: ``merge_statistics(a, b)``, or ``a + b``.

    Attributes
    ----------
    nk : array, shape (B, K)
        Sum of the (sample-weighted) responsibilities ``r``.
    sx : array, shape (B, K, D)
        Sum of ``r z`` with ``z = x - shift``.
    sxx : array, shape (B, K, D, D) for 'full' and 'tied', else (B, K, D)
        Sum of ``r z z^T``, or its diagonal.
    log_likelihood : array, shape (B,)
        Sum of ``w log p(x)`` under the parameters the statistics were taken with.
    weight_sum : array, shape (B,)
        Sum of the sample weights (the number of samples without weights).
    shift : array, shape (B, 1, D)
        The centre the moments are taken about (any point; the data's mean loses least).
    """

    nk: Any
    sx: Any
    sxx: Any
    log_likelihood: Any
    weight_sum: Any
    shift: Any

    def __add__(self, other: Any) -> SufficientStats:  # type: ignore[override]
        """``merge_statistics(self, other)`` (not tuple concatenation)."""
        return merge_statistics(self, other)

    @property
    def lower_bound(self) -> Any:
        """The (sample-weighted) mean log-likelihood, shape (B,): sklearn's lower bound."""
        return self.log_likelihood / self.weight_sum


def merge_statistics(a: SufficientStats, b: SufficientStats) -> SufficientStats:
    """The statistics of the union of two disjoint sample sets of the same problems.

    Parameters
    ----------
    a, b : SufficientStats
        Taken with the same ``shift`` (and the same parameters, for the
        log-likelihood to mean anything).

    Returns
    -------
    SufficientStats
        The sums of both, with their common ``shift``.

    Raises
    ------
    ValueError
        If the shapes or the shifts differ.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import MixtureParams, merge_statistics, sufficient_statistics
    >>> X = np.array([[[0.0], [1.0], [2.0], [3.0]]])
    >>> p = MixtureParams(np.ones((1, 1)), np.zeros((1, 1, 1)), None, np.ones((1, 1, 1)))
    >>> shift = np.full((1, 1, 1), 1.5)
    >>> halves = [sufficient_statistics(X[:, s], p, "diag", shift=shift) for s in (slice(0, 2), slice(2, 4))]
    >>> merged = merge_statistics(*halves)
    >>> bool(np.allclose(merged.sxx, sufficient_statistics(X, p, "diag", shift=shift).sxx))
    True
    """
    if a.sxx.shape != b.sxx.shape or a.shift.shape != b.shift.shape:
        msg = f"statistics to merge must have the same shapes; got sxx {tuple(a.sxx.shape)} and {tuple(b.sxx.shape)}"
        raise ValueError(msg)
    xp = get_namespace(a.shift, b.shift)
    if a.shift is not b.shift and not bool(xp.array_equal(a.shift, b.shift)):
        msg = (
            "statistics to merge must be taken about the same shift; "
            "pass one shift= to sufficient_statistics for every part"
        )
        raise ValueError(msg)
    return SufficientStats(
        a.nk + b.nk,
        a.sx + b.sx,
        a.sxx + b.sxx,
        a.log_likelihood + b.log_likelihood,
        a.weight_sum + b.weight_sum,
        a.shift,
    )


def data_shift(X: Any, sample_weight: Any = None) -> Any:
    """A centre of each problem's data, shape (B, 1, D): the (sample-weighted) mean."""
    xp = get_namespace(X, sample_weight)
    mean = X.mean(1, keepdims=True, dtype=xp.float64)
    if sample_weight is None:
        return mean
    total = sample_weight.sum(1)[:, None, None]
    if X.dtype == xp.float64:
        weighted = xp.matmul(sample_weight[:, None, :], X)
    else:  # float64 sums, a chunk of float32 samples at a time
        B, N, D = X.shape
        weighted = xp.zeros((B, 1, D))
        for s in _chunks(N, B * D, chunk_elements(xp, "mixture")):
            weighted += xp.matmul(sample_weight[:, None, s], X[:, s].astype(xp.float64))
    return xp.where(total > 0, weighted / xp.where(total > 0, total, 1.0), mean)


def _chunks(n: int, per_sample: int, budget: int):
    step = max(1, budget // max(1, per_sample))
    for s in range(0, n, step):
        yield slice(s, min(n, s + step))


def _moments(xp, X, resp, shift, full_matrix):
    """One chunk's nk, sx, sxx: three GEMMs over the chunk, no (B, K, n, D) temporary."""
    B, n, D = X.shape
    Z = X - shift
    rT = xp.swapaxes(resp, 1, 2)  # (B, K, n)
    nk = resp.sum(1)
    sx = xp.matmul(rT, Z)
    if full_matrix:
        outer = (Z[..., :, None] * Z[..., None, :]).reshape(B, n, D * D)
        sxx = xp.matmul(rT, outer).reshape(B, -1, D, D)
    else:
        sxx = xp.matmul(rT, Z * Z)
    return nk, sx, sxx


def sufficient_statistics(
    X: Any,
    params: MixtureParams,
    covariance_type: CovarianceType = "full",
    sample_weight: Any = None,
    shift: Any = None,
) -> SufficientStats:
    """E-step and M-step sums in one chunked pass over the samples.

    Parameters
    ----------
    X : array, shape (B, N, D)
        B problems of N samples (or one part of their samples).
    params : MixtureParams
        The parameters of the E-step (``covariances`` is not used).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        How the parameters are shaped.
    sample_weight : array, shape (B, N), optional
        Non-negative weights (default: 1 for every sample).
    shift : array, shape (B, 1, D), optional
        The centre of the moments; by default the (weighted) mean of X. Pass
        one shift for every part of a dataset whose statistics are to be merged.

    Returns
    -------
    SufficientStats
        The sums of these samples, taken about ``shift``.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import MixtureParams, sufficient_statistics
    >>> X = np.array([[[0.0], [2.0]]])
    >>> p = MixtureParams(np.ones((1, 1)), np.zeros((1, 1, 1)), None, np.ones((1, 1, 1)))
    >>> s = sufficient_statistics(X, p, "diag")
    >>> s.nk.tolist(), s.sxx.tolist(), s.weight_sum.tolist()
    ([[2.0]], [[[2.0]]], [2.0])
    """
    xp = get_namespace(X)
    B, N, D = X.shape
    shift = data_shift(X, sample_weight) if shift is None else shift
    budget = chunk_elements(xp, "mixture")
    compiled = _dispatch.compiled(xp, B * N * params.means.shape[1] * D * D)
    if compiled is not None:
        with blas_limited():
            return SufficientStats(*compiled.moments(X, params, covariance_type, sample_weight, shift, budget), shift)
    with blas_limited():
        return _sufficient_statistics_xp(xp, X, params, covariance_type, sample_weight, shift, budget)


def _sufficient_statistics_xp(xp, X, params, covariance_type, sample_weight, shift, budget):
    """The namespace reference of :func:`sufficient_statistics`: chunked E-step and three GEMMs per chunk."""
    B, N, D = X.shape
    per_sample = max(params.means.shape[1], D) * D  # widest per-sample temporary
    full_matrix = COVARIANCE_TYPES[covariance_type].full_matrix
    ll_sum = xp.zeros(B)
    weight_sum = xp.zeros(B)
    groups = []
    # Groups of whole problems while a problem fits the budget, else slices of one problem's samples:
    # either way the temporaries stay cache-sized.
    for bs in _chunks(B, N * per_sample, budget):
        group = None
        part = MixtureParams(*(None if a is None else a[bs] for a in params))
        for s in _chunks(N, (bs.stop - bs.start) * per_sample, budget):
            Xc = X[bs, s].astype(xp.float64, copy=False)  # float32 data: float64 sums, one chunk at a time
            log_resp, log_norm = e_step(Xc, part.weights, part.means, part.precisions_cholesky, covariance_type)
            resp = xp.exp(log_resp)
            if sample_weight is not None:
                sw = sample_weight[bs, s]
                resp *= sw[..., None]
                ll_sum[bs] += sum_last(xp, xp.where(sw > 0, log_norm, 0.0) * sw)
                weight_sum[bs] += sum_last(xp, sw)
            else:
                ll_sum[bs] += sum_last(xp, log_norm)
                weight_sum[bs] += s.stop - s.start
            sums = _moments(xp, Xc, resp, shift[bs], full_matrix)
            group = sums if group is None else tuple(g + c for g, c in zip(group, sums))
        groups.append(group)
    nk, sx, sxx = (xp.concatenate(parts) for parts in zip(*groups))
    return SufficientStats(nk, sx, sxx, ll_sum, weight_sum, shift)


# --------------------------------------------------------------------------- M-step


def params_from_statistics(
    stats: SufficientStats, reg_covar: Any, covariance_type: CovarianceType = "full"
) -> MixtureParams:
    """Compute sklearn's M-step from sufficient statistics: weights, means, covariances, precision Cholesky.

    Parameters
    ----------
    stats : SufficientStats
        The statistics of all the samples (merged from parts where needed).
    reg_covar : float or array, shape (B,)
        Added to the covariance diagonals.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        How the parameters are shaped.

    Returns
    -------
    MixtureParams
        ``precisions_cholesky`` is NaN for a problem whose covariance is not
        positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import MixtureParams, params_from_statistics, sufficient_statistics
    >>> X = np.array([[[0.0], [2.0]]])
    >>> p = MixtureParams(np.ones((1, 1)), np.zeros((1, 1, 1)), None, np.ones((1, 1, 1)))
    >>> new = params_from_statistics(sufficient_statistics(X, p, "diag"), 0.0, "diag")
    >>> new.means.round(9).tolist(), new.covariances.round(9).tolist()
    ([[[1.0]]], [[[1.0]]])
    """
    xp = get_namespace(stats.nk)
    B = stats.nk.shape[0]
    reg = xp.broadcast_to(xp.asarray(reg_covar, dtype=xp.float64), (B,))
    nk = stats.nk + EPS
    means = stats.shift + stats.sx / nk[..., None]
    d = means - stats.shift
    cov = covariances_from_statistics(xp, stats.nk, stats.sx, stats.sxx, d, reg, covariance_type, stats.weight_sum)
    weights = nk / nk.sum(-1, keepdims=True)
    return MixtureParams(weights, means, cov, precision_cholesky(xp, cov, covariance_type))


def m_step(
    X: Any, log_resp: Any, reg_covar: Any = 1e-6, covariance_type: CovarianceType = "full", sample_weight: Any = None
) -> MixtureParams:
    """The M-step: mixture parameters from responsibilities, batched.

    Parameters
    ----------
    X : array, shape (B, N, D)
        B problems of N samples.
    log_resp : array, shape (B, N, K)
        Log-responsibilities, as :func:`e_step` returns them.
    reg_covar : float or array of shape (B,)
        Added to the covariance diagonals.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        How the parameters are shaped.
    sample_weight : array, shape (B, N), optional
        Non-negative weights (default: 1 for every sample).

    Returns
    -------
    params : MixtureParams
        ``precisions_cholesky`` is NaN for a problem whose covariance is not
        positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import m_step
    >>> X = np.array([[[0.0], [2.0]]])
    >>> params = m_step(X, np.log(np.array([[[1.0], [1.0]]])), reg_covar=0.0, covariance_type="diag")
    >>> round(float(params.means[0, 0, 0]), 9), round(float(params.covariances[0, 0, 0]), 9)
    (1.0, 1.0)
    """
    return params_from_statistics(
        resp_statistics(X, log_resp, covariance_type, sample_weight), reg_covar, covariance_type
    )


def resp_statistics(
    X: Any, log_resp: Any, covariance_type: CovarianceType = "full", sample_weight: Any = None
) -> SufficientStats:
    """The statistics :func:`m_step` takes its parameters from (chunked; ``log_likelihood`` is zero).

    Examples
    --------
    >>> import numpy as np
    >>> resp_statistics(np.array([[[0.0], [2.0]]]), np.zeros((1, 2, 1)), "diag").nk.tolist()
    [[2.0]]
    """
    xp = get_namespace(X, log_resp)

    def resp_of(s):
        return xp.exp(log_resp[:, s])

    return _resp_statistics(xp, X, resp_of, log_resp.shape[-1], covariance_type, sample_weight)


def label_statistics(
    X: Any, labels: Any, n_components: int, covariance_type: CovarianceType = "full", sample_weight: Any = None
) -> SufficientStats:
    """:func:`resp_statistics` of one-hot responsibilities given as labels (B, N): no (B, N, K) array is built.

    Examples
    --------
    >>> import numpy as np
    >>> label_statistics(np.array([[[0.0], [2.0], [10.0]]]), np.array([[0, 0, 1]]), 2, "diag").nk.tolist()
    [[2.0, 1.0]]
    """
    xp = get_namespace(X, labels)
    B, N, D = X.shape
    compiled = _dispatch.compiled(xp, B * N * n_components * D * D)
    if compiled is not None:
        shift = data_shift(X, sample_weight)
        full_matrix = COVARIANCE_TYPES[covariance_type].full_matrix
        nk, sx, sxx, ws = compiled.label_moments(
            X, labels, n_components, full_matrix, sample_weight, shift, chunk_elements(xp, "mixture")
        )
        return SufficientStats(nk, sx, sxx, xp.zeros(B), ws, shift)
    comps = xp.arange(n_components)

    def resp_of(s):
        return (labels[:, s, None] == comps).astype(xp.float64)

    return _resp_statistics(xp, X, resp_of, n_components, covariance_type, sample_weight)


def _resp_statistics(xp, X, resp_of, K, covariance_type, sample_weight):
    """Statistics of given responsibilities (``resp_of(samples)``: a chunk's (B, n, K)), chunk by chunk."""
    B, N, D = X.shape
    full_matrix = COVARIANCE_TYPES[covariance_type].full_matrix
    shift = data_shift(X, sample_weight)
    total = xp.zeros(B)
    sums = None
    for s in _chunks(N, B * max(K, D) * D, chunk_elements(xp, "mixture")):
        resp = resp_of(s)
        if sample_weight is not None:
            resp = resp * sample_weight[:, s, None]
        part = _moments(xp, X[:, s].astype(xp.float64, copy=False), resp, shift, full_matrix)
        sums = part if sums is None else tuple(a + b for a, b in zip(sums, part))
        total += resp.sum((1, 2))  # the total weight is that of the responsibilities (a start's rows need not sum to 1)
    return SufficientStats(*sums, xp.zeros(B), total, shift)


def em_pass(
    X: Any,
    params: MixtureParams,
    reg_covar: Any,
    covariance_type: CovarianceType,
    sample_weight: Any = None,
    shift: Any = None,
) -> tuple[MixtureParams, Any]:
    """One EM iteration in one chunked pass over the samples.

    ``params_from_statistics(sufficient_statistics(...))``: each chunk's E-step
    responsibilities go straight into the M-step sums, so memory is O(chunk),
    not O(N K D).

    Parameters
    ----------
    X : array, shape (B, N, D)
        B problems of N samples.
    params : MixtureParams
        The current parameters.
    reg_covar : array, shape (B,)
        Added to the covariance diagonals.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        How the parameters are shaped.
    sample_weight : array, shape (B, N), optional
        Non-negative weights (default: 1 for every sample).
    shift : array, shape (B, 1, D), optional
        See :func:`sufficient_statistics`; by default the data's mean.

    Returns
    -------
    new_params : MixtureParams
        The parameters after one E-step and M-step.
    lower_bound : array, shape (B,)
        The (sample-weighted) mean log-likelihood under ``params``, before the update.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import MixtureParams, em_pass
    >>> X = np.array([[[0.0], [0.2], [10.0], [10.2]]])
    >>> start = MixtureParams(np.array([[0.5, 0.5]]), np.array([[[1.0], [9.0]]]), None, np.ones((1, 2, 1)))
    >>> new, lb = em_pass(X, start, np.array([1e-6]), "diag")
    >>> new.means[0, :, 0].round(2)
    array([ 0.1, 10.1])
    """
    stats = sufficient_statistics(X, params, covariance_type, sample_weight, shift)
    return params_from_statistics(stats, reg_covar, covariance_type), stats.lower_bound


# --------------------------------------------------------------------------- the EM loop


def params_ok(params: MixtureParams) -> Any:
    """Which problems have finite precision Cholesky factors, shape (B,)."""
    xp = get_namespace(params.precisions_cholesky)
    P = params.precisions_cholesky
    return xp.isfinite(P.reshape(P.shape[0], -1)).all(-1)


def _where_batch(xp, mask, new, old):
    return xp.where(mask.reshape(mask.shape + (1,) * (new.ndim - 1)), new, old)


def _more_regularisation(xp, reg, bad):
    """reg_covar for the next try: 10x for the failing problems whose reg_covar is > 0."""
    return xp.where(bad, reg * 10, reg)


def regularisation_retry(
    step: Callable[[Any], MixtureParams], params: MixtureParams, reg_covar: Any, max_tries: int
) -> tuple[MixtureParams, Any, Any]:
    """Redo an M-step with ten times more ``reg_covar`` for the problems whose covariance failed.

    Only problems with ``reg_covar > 0`` are retried: a problem given
    ``reg_covar=0`` asked for no regularisation, and fails (as sklearn does).

    Parameters
    ----------
    step : callable reg_covar (B,) -> MixtureParams
        The M-step to redo (for every problem; only the failing ones' results are kept).
    params : MixtureParams
        ``step(reg_covar)``, already computed.
    reg_covar : array, shape (B,)
    max_tries : int
        How many times a failing problem's ``reg_covar`` may grow tenfold.

    Returns
    -------
    params : MixtureParams
        The failing problems' last try; the others' ``params`` unchanged.
    reg_covar : array, shape (B,)
    failed : array of bool, shape (B,)
        Still not positive definite after ``max_tries`` (or at once, with ``reg_covar=0``).

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import m_step
    >>> X = np.array([[[0.0, 0.0], [1.0, 1.0], [2.0, 2.0]]] * 2)  # two equal features: singular covariance
    >>> step = lambda reg: m_step(X, np.zeros((2, 3, 1)), reg, "full")
    >>> reg = np.array([0.0, 2.0**-56])
    >>> params, reg, failed = regularisation_retry(step, step(reg), reg, 6)
    >>> (reg / 2.0**-56).tolist(), failed.tolist()
    ([0.0, 10.0], [True, False])
    """
    xp = get_namespace(reg_covar)
    bad = ~params_ok(params)
    for _ in range(max_tries):
        grow = bad & (reg_covar > 0)
        if not bool(grow.any()):
            break
        reg_covar = _more_regularisation(xp, reg_covar, grow)
        refit = step(reg_covar)
        params = MixtureParams(*(_where_batch(xp, grow, new, old) for new, old in zip(refit, params)))
        bad = ~params_ok(params)
    return params, reg_covar, bad


class EMResult(NamedTuple):
    """What :func:`fit_em` returns, for a batch of B problems.

    Attributes
    ----------
    params : MixtureParams
        The final parameters (a failed problem keeps its last good ones).
    lower_bound : array, shape (B,)
        The last lower bound (mean log-likelihood before the last update, as sklearn).
    n_iter : array of int, shape (B,)
    converged : array of bool, shape (B,)
    failed : array of bool, shape (B,)
        A covariance stayed singular (with ``reg_covar=0``, or even with it
        raised), or the lower bound was not finite; the problem left the batch
        at that iteration. A start that is already singular fails at iteration 1.
    history : array, shape (B, max(1, max(n_iter)))
        The lower bound after each iteration, NaN past a problem's ``n_iter``.
    reg_covar : array, shape (B,)
        The regularisation each problem ended with.
    """

    params: MixtureParams
    lower_bound: Any
    n_iter: Any
    converged: Any
    failed: Any
    history: Any
    reg_covar: Any


def interleave_starts(xp: Any, parts: list[Any]) -> Any:
    """Arrays (B, ...) of n_init starts as one (B * n_init, ...) array: start i of problem b at b * n_init + i.

    Examples
    --------
    >>> import numpy as np
    >>> interleave_starts(np, [np.array([1, 2]), np.array([10, 20])]).tolist()
    [1, 10, 2, 20]
    """
    return xp.stack(parts, axis=1).reshape((parts[0].shape[0] * len(parts),) + tuple(parts[0].shape[1:]))


def fit_em(
    X: Any,
    params: MixtureParams,
    reg_covar: Any = 1e-6,
    covariance_type: CovarianceType = "full",
    sample_weight: Any = None,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    verbose: int = 0,
    verbose_interval: int = 10,
    lower_bound: Any = None,
) -> EMResult:
    """Batched EM from a start: each problem iterates until its lower bound settles, then leaves the batch.

    Every iteration is one :func:`em_pass` over the problems still active. A
    problem whose lower bound changed by less than ``tol`` is converged. A
    problem whose new covariance fails Cholesky gets ten times more
    ``reg_covar`` (only if its ``reg_covar`` is > 0) and its M-step is redone
    from the same statistics, up to ``REG_COVAR_TRIES`` (6) times. A problem that still fails, or whose lower
    bound is not finite (NaN: the data overflows float64 arithmetic), keeps its
    last good parameters, is marked ``failed`` and leaves the batch. Nothing is
    warned or raised here: the caller reads ``failed``, ``converged`` and
    ``reg_covar`` (:class:`~gpuvec.mixture.GaussianMixture` raises for failures
    and warns when ``reg_covar`` changed).

    Parameters
    ----------
    X : array, shape (B, N, D)
        float64, or float32 (summed in float64 chunk by chunk).
    params : MixtureParams
        The start (``covariances`` and ``precisions_cholesky`` must be set).
        Not modified.
    reg_covar : float or array, shape (B,)
        Not modified.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        How the parameters are shaped.
    sample_weight : array, shape (B, N), optional
        Non-negative weights (default: 1 for every sample).
    tol : float
        A problem converges when its lower bound changes by less than this.
    max_iter : int
        The most iterations.
    verbose : int
        1: print a line every ``verbose_interval`` iterations; 2: with the time
        and the largest change of the lower bound among the active problems.
    verbose_interval : int
        Iterations between the lines that ``verbose`` prints.
    lower_bound : float or array, shape (B,), optional
        The lower bound before the first iteration (default -inf): a warm
        start passes the previous fit's, so that one iteration can converge.

    Returns
    -------
    EMResult
        The final parameters, lower bounds, iteration counts and flags.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import MixtureParams, fit_em
    >>> X = np.array([[[0.0], [0.2], [10.0], [10.2]]])
    >>> ones = np.ones((1, 2, 1))
    >>> start = MixtureParams(np.array([[0.5, 0.5]]), np.array([[[1.0], [9.0]]]), ones, ones)
    >>> result = fit_em(X, start, 1e-6, "diag", tol=1e-6)
    >>> result.params.means[0, :, 0].round(2), bool(result.converged[0])
    (array([ 0.1, 10.1]), True)
    """
    xp = get_namespace(X)
    shift = data_shift(X, sample_weight)  # once per fit: the same centre on every pass
    held = xp.arange(X.shape[0])  # the problems whose data the pass holds (the active set only shrinks)
    Xa, swa, shifta = X, sample_weight, shift

    def one_pass(pa, active):
        nonlocal held, Xa, swa, shifta
        if active.shape[0] != held.shape[0]:  # problems left: drop their data once
            keep = xp.isin(held, active)
            Xa, shifta, held = Xa[keep], shifta[keep], active
            swa = None if swa is None else swa[keep]
        return sufficient_statistics(Xa, pa, covariance_type, swa, shifta)

    with blas_limited():  # one BLAS thread when called from a thread pool (gpuvec._core.threads)
        return em_loop(
            xp, one_pass, params, reg_covar, covariance_type,
            tol=tol, max_iter=max_iter, verbose=verbose, verbose_interval=verbose_interval, lower_bound=lower_bound,
        )  # fmt: skip


def em_loop(
    xp: Any,
    pass_fn: Any,
    params: MixtureParams,
    reg_covar: Any,
    covariance_type: CovarianceType,
    *,
    tol: float,
    max_iter: int,
    verbose: int = 0,
    verbose_interval: int = 10,
    lower_bound: Any = None,
) -> EMResult:
    """:func:`fit_em`'s loop, with the pass over the data as a function.

    ``pass_fn(params, active)`` returns the :class:`SufficientStats` of the
    problems ``active`` (their indices, in order; the set only shrinks) under
    ``params`` (theirs): :func:`fit_em` sums them in memory, the dask path
    (:mod:`gpuvec.mixture._dask`) over a cluster. Everything else (the M-step,
    the regularisation retry from the same statistics, the convergence test,
    the active set, the history) is done here, once for both.
    """
    S = params.weights.shape[0]
    ct = covariance_type
    params = MixtureParams(*(xp.asarray(a, dtype=xp.float64).copy() for a in params))  # filled in place below
    reg = xp.broadcast_to(xp.asarray(reg_covar, dtype=xp.float64), (S,)).copy()
    previous = -xp.inf if lower_bound is None else lower_bound
    lower_bound = xp.broadcast_to(xp.asarray(previous, dtype=xp.float64), (S,)).copy()
    n_iter = xp.zeros(S, dtype=xp.int64)
    converged = xp.zeros(S, dtype=bool)
    failed = xp.zeros(S, dtype=bool)
    history = xp.full((S, max_iter), xp.nan)
    active = xp.arange(S)
    pa, rega = params, reg
    clock = time.perf_counter()
    for it in range(1, max_iter + 1):
        stats = pass_fn(pa, active)
        lb = stats.lower_bound
        new = params_from_statistics(stats, rega, ct)
        # Retries redo only the M-step, from the same statistics; a problem that still fails keeps its
        # last parameters.
        new, rega, bad = regularisation_retry(
            lambda r, stats=stats: params_from_statistics(stats, r, ct), new, rega, REG_COVAR_TRIES
        )
        bad |= ~xp.isfinite(lb)
        if bool(bad.any()):
            new = MixtureParams(*(_where_batch(xp, bad, old, part) for part, old in zip(new, pa)))
        change = lb - lower_bound[active]
        lower_bound[active] = lb
        history[active, it - 1] = lb
        n_iter[active] = it
        done = (xp.abs(change) < tol) & ~bad
        for full_arr, part in zip(params, new):
            full_arr[active] = part
        reg[active] = rega
        if verbose and it % verbose_interval == 0:
            line = f"  Iteration {it}: {int(done.sum())} of {int(active.shape[0])} active problems converged"
            if verbose >= 2:
                now = time.perf_counter()
                finite = xp.where(xp.isfinite(change), xp.abs(change), 0.0)
                line += f"\t time lapse {now - clock:.5f}s\t largest ll change {float(finite.max()):.5f}"
                clock = now
            print(line)
        leave = done | bad
        if bool(leave.any()):
            converged[active[done]] = True
            failed[active[bad]] = True
            keep = ~leave
            active = active[keep]
            if active.shape[0] == 0:
                break
            rega = rega[keep]
            pa = MixtureParams(*(a[keep] for a in new))
        else:
            pa = new
    history = history[:, : max(1, int(n_iter.max()) if S else 1)]
    return EMResult(params, lower_bound, n_iter, converged, failed, history, reg)
