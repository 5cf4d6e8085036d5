"""The mixture's E-step, sufficient statistics and M-step, written once against the array namespace.

Everything here works on batches: ``X`` of shape (B, N, D), parameters with a
leading B axis (:class:`MixtureParams`). The per-covariance-type formulas live
in :mod:`gpuvec.mixture._covariance`; the EM loop that drives these steps in
:mod:`gpuvec.mixture._em`.

One EM iteration is split in two halves that meet in :class:`SufficientStats`:

- :func:`sufficient_statistics`: one chunked pass over the samples; each
  chunk's E-step responsibilities go straight into weighted sums of
  ``z = x - shift`` and ``z z^T`` (three GEMMs per chunk, no (B, K, N, D)
  temporary). Statistics of disjoint sample sets with the same ``shift`` add
  up (:func:`merge_statistics`), so a dataset split in blocks needs one pass
  per block and a sum.
- :func:`params_from_statistics`: sklearn's M-step from the sums.

Sums over samples run in float64 whatever the input dtype; centring on
``shift`` (the data's mean) keeps the second moments from cancelling.

On numpy data the pass runs as one fused compiled loop for every covariance
type (:mod:`gpuvec.mixture._numba`, where :mod:`gpuvec.mixture._dispatch`
chooses it); the code here is the reference it is tested against, and the
cupy path. Called from a non-main thread, the pass keeps BLAS to one thread
(:mod:`gpuvec._core.threads`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Any, NamedTuple

import numpy as np

import gpuvec.mixture._dispatch as _dispatch
from gpuvec._core.dispatch import chunk_elements
from gpuvec._core.namespace import get_namespace
from gpuvec._core.threads import blas_limited
from gpuvec.mixture._covariance import (
    EPS,
    CovarianceType,
    covariances_from_statistics,
    exp_nonpositive,
    log_det_and_mahalanobis,
    logsumexp_last,
    precision_cholesky,
    sum_last,
)

__all__ = [
    "MixtureParams",
    "SufficientStats",
    "data_shift",
    "e_step",
    "e_step_chunks",
    "estimate_log_prob",
    "label_statistics",
    "m_step",
    "merge_statistics",
    "params_from_statistics",
    "resp_statistics",
    "sufficient_statistics",
]


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
    log_prob_norm = logsumexp_last(xp, weighted)
    return weighted - log_prob_norm[..., None], log_prob_norm


def e_step_chunks(
    X: Any, weights: Any, means: Any, precisions_cholesky: Any, covariance_type: CovarianceType = "full"
) -> Iterator[tuple[slice, slice, Any, Any]]:
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
    sxx : array, shape (B, K, D, D) 'full', (B, 1, D, D) 'tied', (B, K, D) 'diag', (B, K) 'spherical'
        Sum of ``r z z^T`` per component ('tied': over all components, all the
        shared covariance needs), its diagonal ('diag'), or its trace
        ('spherical': ``sum r |z|^2``, all one variance per component needs).
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

    def __add__(self, other: Any) -> SufficientStats:
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


def _chunks(n: int, per_sample: int, budget: int) -> Iterator[slice]:
    """Slices of ``range(n)`` of at most ``budget // per_sample`` each; one empty slice for ``n == 0`` (an
    empty dask chunk's pass still returns its zero statistics)."""
    step = max(1, budget // max(1, per_sample))
    for s in range(0, max(n, 1), step):
        yield slice(s, min(n, s + step))


def _moments(
    xp: Any, X: Any, resp: Any, shift: Any, covariance_type: CovarianceType, per_component: bool = False
) -> tuple[Any, Any, Any]:
    """One chunk's nk, sx, sxx: three GEMMs over the chunk, no (B, K, n, D) temporary.

    'full' with ``per_component``: one gram per component ((n, D) temporaries), else one GEMM against
    the (n, D^2) outer products (fewer calls where D is small)."""
    B, n, D = X.shape
    Z = X - shift
    rT = xp.swapaxes(resp, 1, 2)  # (B, K, n)
    nk = resp.sum(1)
    sx = xp.matmul(rT, Z)
    if covariance_type == "full" and per_component:
        sxx = xp.stack([xp.stack([xp.matmul((Zb * rb[:, k, None]).T, Zb) for k in range(rb.shape[1])])
                        for Zb, rb in zip(Z, resp)])  # fmt: skip
    elif covariance_type == "full":
        outer = (Z[..., :, None] * Z[..., None, :]).reshape(B, n, D * D)
        sxx = xp.matmul(rT, outer).reshape(B, -1, D, D)
    elif covariance_type == "tied":  # the total over the components: rows weighted by their responsibilities' sum
        sxx = xp.matmul(xp.swapaxes(Z * resp.sum(-1)[..., None], 1, 2), Z)[:, None]
    elif covariance_type == "diag":
        sxx = xp.matmul(rT, Z * Z)
    else:  # spherical: sum r |z|^2 per component
        sxx = xp.matmul(rT, sum_last(xp, Z * Z)[..., None])[..., 0]
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
    shift = data_shift(X, sample_weight) if shift is None else shift
    return pass_statistics(X, params, covariance_type, sample_weight, shift)


def pass_statistics(
    X: Any, params: MixtureParams, covariance_type: CovarianceType, sample_weight: Any, shift: Any, kept: Any = None
) -> SufficientStats:
    """:func:`sufficient_statistics` about a given shift, by the implementation the dispatch picks; ``kept``:
    a fit's :class:`gpuvec.mixture._blocked.KeptRows` of these X, shift and weights (where
    :func:`gpuvec.mixture._dispatch.keep_rows` made it: the blocked pass runs)."""
    xp = get_namespace(X)
    B, N, D = X.shape
    budget = chunk_elements(xp, "mixture")
    # no samples (an empty dask chunk): the reference pass gives the zero statistics in every layout
    impl = _dispatch.pass_implementation(xp, B, N, params.means.shape[1], D, covariance_type) if N else None
    with blas_limited():
        if impl is not None:  # the fused numba loop, or per-component GEMMs for large D
            # kept rows go to the blocked pass only: the choice is made again every pass, and can move to the
            # loop mid-fit (numba loaded meanwhile by another thread, GPUVEC_JIT changed)
            more = {}
            if _dispatch.is_blocked(impl):
                K = params.means.shape[1]
                more = {
                    "kept": kept,
                    "spans": _dispatch.row_spans(xp, N, D, K, covariance_type),
                    "held": _dispatch.held_fraction(xp, D, covariance_type),
                    "expanded_tied": _dispatch.expanded_tied(N, D),
                }
            nk, sx, sxx, ll, ws = impl.moments(X, params, covariance_type, sample_weight, shift, budget, **more)
            return SufficientStats(nk, sx, sxx, ll, ws, shift)
        return _sufficient_statistics_xp(xp, X, params, covariance_type, sample_weight, shift, budget)


def _sufficient_statistics_xp(
    xp: Any,
    X: Any,
    params: MixtureParams,
    covariance_type: CovarianceType,
    sample_weight: Any,
    shift: Any,
    budget: int,
) -> SufficientStats:
    """The namespace reference of :func:`sufficient_statistics`: chunked E-step and three GEMMs per chunk."""
    B, N, D = X.shape
    per_sample = max(params.means.shape[1], D) * D  # widest per-sample temporary
    ll_sum = xp.zeros(B)
    weight_sum = xp.zeros(B)
    groups: list[tuple[Any, ...]] = []
    # Groups of whole problems while a problem fits the budget, else slices of one problem's samples:
    # either way the temporaries stay cache-sized.
    for bs in _chunks(B, N * per_sample, budget):
        group: tuple[Any, ...] | None = None
        part = MixtureParams(*(None if a is None else a[bs] for a in params))
        for s in _chunks(N, (bs.stop - bs.start) * per_sample, budget):
            Xc = X[bs, s].astype(xp.float64, copy=False)  # float32 data: float64 sums, one chunk at a time
            if sample_weight is not None:  # a zero-weight row touches no sum, whatever it holds (0 * inf)
                Xc = xp.where(sample_weight[bs, s][..., None] > 0, Xc, shift[bs])
            log_resp, log_norm = e_step(Xc, part.weights, part.means, part.precisions_cholesky, covariance_type)
            resp = exp_nonpositive(xp, log_resp, out=log_resp)
            if sample_weight is not None:
                sw = sample_weight[bs, s]
                resp *= sw[..., None]
                ll_sum[bs] += sum_last(xp, xp.where(sw > 0, log_norm, 0.0) * sw)
                weight_sum[bs] += sum_last(xp, sw)
            else:
                ll_sum[bs] += sum_last(xp, log_norm)
                weight_sum[bs] += s.stop - s.start
            sums = _moments(xp, Xc, resp, shift[bs], covariance_type)
            group = sums if group is None else tuple(g + c for g, c in zip(group, sums))
        assert group is not None  # _chunks yields at least one slice
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
    # sklearn's means, sum r x / nk, written about the shift: (sx + R shift) / nk = shift + (sx - EPS shift) / nk.
    # For a component of real weight the EPS term is rounding; for one whose weight has collapsed to a few
    # EPS it moves the mean towards the origin, as sklearn's.
    means = stats.shift + (stats.sx - EPS * stats.shift) / nk[..., None]
    d = means - stats.shift  # from the rounded means: a constant feature's mean is the constant, as in sklearn
    cov = covariances_from_statistics(
        xp, stats.nk, stats.sx, stats.sxx, d, reg, covariance_type, stats.weight_sum, stats.shift
    )
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

    def resp_of(s: slice) -> Any:
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
    impl = _dispatch.pass_implementation(xp, B, N, n_components, D, covariance_type)
    if impl is not None:  # the numba loops, or per-component grams over each component's rows
        shift = data_shift(X, sample_weight)
        with blas_limited():
            nk, sx, sxx, ws = impl.label_moments(
                X, labels, n_components, covariance_type, sample_weight, shift, chunk_elements(xp, "mixture")
            )
        return SufficientStats(nk, sx, sxx, xp.zeros(B), ws, shift)
    comps = xp.arange(n_components)

    def resp_of(s: slice) -> Any:
        return (labels[:, s, None] == comps).astype(xp.float64)

    return _resp_statistics(xp, X, resp_of, n_components, covariance_type, sample_weight)


def _resp_statistics(
    xp: Any,
    X: Any,
    resp_of: Callable[[slice], Any],
    K: int,
    covariance_type: CovarianceType,
    sample_weight: Any,
) -> SufficientStats:
    """Statistics of given responsibilities (``resp_of(samples)``: a chunk's (B, n, K)), chunk by chunk."""
    B, N, D = X.shape
    shift = data_shift(X, sample_weight)
    total = xp.zeros(B)
    sums: tuple[Any, ...] | None = None
    # 'full' per component where its blocked pass runs; else one GEMM against (n, D^2) outer products. The
    # other types' chunks hold (n, D) and (n, K) temporaries.
    per_component = covariance_type == "full" and _dispatch.blocked_pays(K, D, "full")
    full_outer = covariance_type == "full" and not per_component
    per_sample = B * (max(K, D) * D if full_outer else K + D)
    for s in _chunks(N, per_sample, chunk_elements(xp, "mixture")):
        resp = resp_of(s)
        Xc = X[:, s].astype(xp.float64, copy=False)
        if sample_weight is not None:  # a zero-weight row touches no sum, whatever it holds (0 * inf)
            resp = resp * sample_weight[:, s, None]
            Xc = xp.where(sample_weight[:, s, None] > 0, Xc, shift)
        part = _moments(xp, Xc, resp, shift, covariance_type, per_component)
        sums = part if sums is None else tuple(a + b for a, b in zip(sums, part))
        total += resp.sum((1, 2))  # the total weight is that of the responsibilities (a start's rows need not sum to 1)
    assert sums is not None  # _chunks yields at least one slice
    nk, sx, sxx = sums
    return SufficientStats(nk, sx, sxx, xp.zeros(B), total, shift)
