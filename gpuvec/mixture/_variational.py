"""BayesianGaussianMixture's variational inference, batched, from the mixture core's sufficient statistics.

sklearn's updates (``sklearn.mixture.BayesianGaussianMixture``: Bishop's PRML 10.2 with sklearn's
normalised Wishart scale), for B problems at once and written against the array namespace:

- the variational E-step is GaussianMixture's with other log-weights: ``log N(x; m_k, W_k)`` under
  the normalised precisions plus a per-component offset (the expected log-weight, the expected
  log-determinant, ``-D / beta_k``), so :func:`~gpuvec.mixture.sufficient_statistics` (the compiled
  loop, the cupy path) runs it with ``exp(offset - max)`` as weights;
- the M-step (:func:`m_step`) is a function of the statistics' ``nk``, means and covariances;
- the lower bound (:func:`lower_bound`) needs ``sum r log r``, which the statistics give too:
  ``sum_k [nk (offset_k + log det P_k - D/2 log 2 pi) - tr(P_k M_k) / 2] - sum_n log p(x_n)``,
  with ``M_k`` the scatter about the E-step's means.
"""

from __future__ import annotations

import math
import types
from collections.abc import Callable
from typing import Any, NamedTuple

from gpuvec._core.backend import special_for
from gpuvec.mixture._covariance import EPS, CovarianceType, precision_cholesky
from gpuvec.mixture._xp import MixtureParams, SufficientStats, params_from_statistics

__all__ = [
    "Priors",
    "VariationalParams",
    "e_step_params",
    "in_memory_pass",
    "log_offsets",
    "lower_bound",
    "m_step",
    "run",
    "take",
    "weights_of",
]

PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


class Priors(NamedTuple):
    """Per problem: ``weight_concentration`` (B,), ``mean_precision`` (B,), ``mean`` (B, D),
    ``degrees_of_freedom`` (B,), ``covariance`` (B, D, D) 'full'/'tied', (B, D) 'diag', (B,) 'spherical'."""

    weight_concentration: Any
    mean_precision: Any
    mean: Any
    degrees_of_freedom: Any
    covariance: Any


class VariationalParams(NamedTuple):
    """The variational posterior of B problems (sklearn's attribute names, batched).

    ``weight_concentration`` is (B, K) for the Dirichlet distribution prior, (B, 2, K) (sklearn's two
    Beta parameters) for the Dirichlet process; ``degrees_of_freedom`` is (B, K), or (B, 1) for 'tied'.
    """

    weight_concentration: Any
    mean_precision: Any
    means: Any
    degrees_of_freedom: Any
    covariances: Any
    precisions_cholesky: Any


def m_step(
    xp: types.ModuleType,
    stats: SufficientStats,
    reg: Any,
    priors: Priors,
    covariance_type: CovarianceType,
    prior_type: str,
) -> VariationalParams:
    """The variational M-step from the statistics of the responsibilities (sklearn's ``_m_step``)."""
    gauss = params_from_statistics(stats, reg, covariance_type)  # the means xk and covariances sk (reg included)
    nk = stats.nk + EPS
    xk, sk = gauss.means, gauss.covariances
    B, K, D = xk.shape
    if prior_type == "dirichlet_process":
        from_end = xp.cumsum(nk[:, ::-1], axis=-1)[:, ::-1]  # sum over j >= k, summed from the end as sklearn
        later = xp.concatenate([from_end[:, 1:], xp.zeros_like(nk[:, :1])], axis=-1)  # sum over j > k
        concentration = xp.stack([1.0 + nk, priors.weight_concentration[:, None] + later], axis=1)
    else:
        concentration = priors.weight_concentration[:, None] + nk
    beta0 = priors.mean_precision[:, None]
    beta = beta0 + nk
    means = (beta0[..., None] * priors.mean[:, None, :] + nk[..., None] * xk) / beta[..., None]
    diff = xk - priors.mean[:, None, :]
    nu0 = priors.degrees_of_freedom[:, None]
    if covariance_type == "full":
        dof = nu0 + nk
        outer = diff[..., :, None] * diff[..., None, :]
        cov = priors.covariance[:, None] + nk[..., None, None] * sk + (nk * beta0 / beta)[..., None, None] * outer
        cov = cov / dof[..., None, None]
    elif covariance_type == "tied":
        dof = nu0 + nk.sum(-1, keepdims=True) / K
        spread = xp.matmul(xp.swapaxes((nk / beta)[..., None] * diff, 1, 2), diff)  # sum_k nk/beta diff diff^T
        cov = priors.covariance + sk * (nk.sum(-1) / K)[:, None, None] + beta0[..., None] / K * spread
        cov = cov / dof[..., None]
    elif covariance_type == "diag":
        dof = nu0 + nk
        cov = priors.covariance[:, None, :] + nk[..., None] * (sk + (beta0 / beta)[..., None] * diff**2)
        cov = cov / dof[..., None]
    else:
        dof = nu0 + nk
        cov = priors.covariance[:, None] + nk * (sk + beta0 / beta * (diff**2).mean(-1))
        cov = cov / dof
    return VariationalParams(concentration, beta, means, dof, cov, precision_cholesky(xp, cov, covariance_type))


def log_weights(xp: types.ModuleType, concentration: Any, prior_type: str) -> Any:
    """E[log pi_k] under the variational posterior (sklearn's ``_estimate_log_weights``), (B, K)."""
    special = special_for(xp)
    if prior_type == "dirichlet_process":
        a, b = concentration[:, 0], concentration[:, 1]
        digamma_sum = special.digamma(a + b)
        from_b = special.digamma(b) - digamma_sum
        running = xp.cumsum(from_b, axis=-1)
        before = xp.concatenate([xp.zeros_like(from_b[:, :1]), running[:, :-1]], axis=-1)  # sum over j < k
        return special.digamma(a) - digamma_sum + before
    return special.digamma(concentration) - special.digamma(concentration.sum(-1, keepdims=True))


def _log_lambda(xp: types.ModuleType, dof: Any, D: int) -> Any:
    """E[log det Lambda] without the normalisation: ``D log 2 + sum_i digamma((dof - i) / 2)``."""
    special = special_for(xp)
    i = xp.arange(D, dtype=xp.float64)
    return D * math.log(2.0) + special.digamma(0.5 * (dof[..., None] - i)).sum(-1)


def log_offsets(xp: types.ModuleType, params: VariationalParams, prior_type: str) -> Any:
    """Per component (B, K): what the variational E-step adds to ``log N(x; m_k, W_k)`` (sklearn's
    ``_estimate_log_prob`` minus the Gaussian term, plus ``_estimate_log_weights``)."""
    B, K, D = params.means.shape
    dof = xp.broadcast_to(params.degrees_of_freedom, (B, K))
    return (
        log_weights(xp, params.weight_concentration, prior_type)
        - 0.5 * D * xp.log(dof)
        + 0.5 * (_log_lambda(xp, dof, D) - D / params.mean_precision)
    )


def e_step_params(xp: types.ModuleType, params: VariationalParams, prior_type: str) -> tuple[MixtureParams, Any]:
    """GaussianMixture parameters whose E-step is the variational one, and the (B,) shift of its log-norm:
    weights ``exp(offset - max)`` (the responsibilities are the variational ones; ``log p`` is ``max`` low)."""
    offsets = log_offsets(xp, params, prior_type)
    top = offsets.max(-1)
    weights = xp.exp(offsets - top[:, None])
    return MixtureParams(weights, params.means, None, params.precisions_cholesky), top


def _log_det_cholesky(xp: types.ModuleType, prec_chol: Any, covariance_type: str, D: int) -> Any:
    """log det of each precision Cholesky factor (sklearn's ``_compute_log_det_cholesky``): (B, K), (B,) tied."""
    if covariance_type in ("full", "tied"):
        return xp.log(xp.diagonal(prec_chol, axis1=-2, axis2=-1)).sum(-1)
    if covariance_type == "diag":
        return xp.log(prec_chol).sum(-1)
    return D * xp.log(prec_chol)


def _trace_precision_scatter(xp: types.ModuleType, stats: SufficientStats, means: Any, prec_chol: Any, ct: str) -> Any:
    """``sum_k tr(P_k M_k)``, M_k the scatter of the statistics about ``means`` (B, K, D): (B,)."""
    d = means - stats.shift
    nk, sx, sxx = stats.nk, stats.sx, stats.sxx
    if ct in ("full", "tied"):
        outer = d[..., :, None] * sx[..., None, :]
        about = outer + xp.swapaxes(outer, -1, -2) - nk[..., None, None] * d[..., :, None] * d[..., None, :]
        if ct == "full":
            scatter = sxx - about
            P = xp.matmul(prec_chol, xp.swapaxes(prec_chol, -1, -2))
            return (P * scatter).sum((-1, -2)).sum(-1)
        scatter = sxx[:, 0] - about.sum(1)
        P = xp.matmul(prec_chol, xp.swapaxes(prec_chol, -1, -2))
        return (P * scatter).sum((-1, -2))
    if ct == "diag":
        return (prec_chol**2 * (sxx - 2 * d * sx + nk[..., None] * d * d)).sum((-1, -2))
    # spherical: sxx holds sum r |z|^2 per component (B, K)
    return (prec_chol**2 * (sxx - 2 * (d * sx).sum(-1) + nk * (d * d).sum(-1))).sum(-1)


def lower_bound(
    xp: types.ModuleType,
    stats: SufficientStats,
    used: VariationalParams,
    top: Any,
    new: VariationalParams,
    covariance_type: str,
    prior_type: str,
) -> Any:
    """sklearn's ``_compute_lower_bound`` (B,): the responsibilities' entropy from the statistics of the E-step
    under ``used`` (log-norms ``top`` low), the Wishart, weight and mean-precision terms of ``new``."""
    B, K, D = new.means.shape
    special = special_for(xp)
    # sum_n sum_k r log r = sum_k sum_n r log p(x, k) - sum_n log p(x)
    offsets = log_offsets(xp, used, prior_type)
    log_det_used = xp.broadcast_to(
        _log_det_cholesky(xp, used.precisions_cholesky, covariance_type, D).reshape(B, -1), (B, K)
    )
    nk = stats.nk
    joint = xp.where(nk > 0, nk * (offsets + log_det_used - 0.5 * D * math.log(2 * math.pi)), 0.0).sum(-1)
    joint -= 0.5 * _trace_precision_scatter(xp, stats, used.means, used.precisions_cholesky, covariance_type)
    entropy_term = joint - (stats.log_likelihood + top * stats.weight_sum)
    # the Wishart normalisations of the new posterior (sklearn's _log_wishart_norm, log pi terms dropped)
    dof = new.degrees_of_freedom
    log_det = _log_det_cholesky(xp, new.precisions_cholesky, covariance_type, D).reshape(dof.shape)
    log_det = log_det - 0.5 * D * xp.log(dof)
    i = xp.arange(D, dtype=xp.float64)
    wishart = -(dof * log_det + dof * D * 0.5 * math.log(2.0) + special.gammaln(0.5 * (dof[..., None] - i)).sum(-1))
    log_wishart = K * wishart[:, 0] if covariance_type == "tied" else wishart.sum(-1)
    if prior_type == "dirichlet_process":
        a, b = new.weight_concentration[:, 0], new.weight_concentration[:, 1]
        log_norm_weight = -special.betaln(a, b).sum(-1)
    else:
        alpha = new.weight_concentration
        log_norm_weight = special.gammaln(alpha.sum(-1)) - special.gammaln(alpha).sum(-1)
    return -entropy_term - log_wishart - log_norm_weight - 0.5 * D * xp.log(new.mean_precision).sum(-1)


def weights_of(xp: types.ModuleType, concentration: Any, prior_type: str) -> Any:
    """The expected weights (sklearn's ``weights_``), (B, K)."""
    if prior_type == "dirichlet_process":
        a, b = concentration[:, 0], concentration[:, 1]
        total = a + b
        stick = xp.cumprod(b / total, axis=-1)
        before = xp.concatenate([xp.ones_like(stick[:, :1]), stick[:, :-1]], axis=-1)
        w = a / total * before
    else:
        w = concentration
    return w / w.sum(-1, keepdims=True)


# --------------------------------------------------------------------------- the fit


def take(params: Any, index: Any) -> Any:
    """The problems ``index`` of a tuple of batched arrays (None entries stay None)."""
    return type(params)(*(None if a is None else a[index] for a in params))


def in_memory_pass(X: Any, sw: Any, ct: CovarianceType) -> Callable[[MixtureParams, Any], SufficientStats]:
    """:func:`run`'s pass over in-memory (B, N, D) data: the statistics of the problems ``active`` (the rows of
    problems that have left are dropped once per change of the active set)."""
    from gpuvec.mixture._xp import data_shift, sufficient_statistics  # the pass of the mixture core

    shift = data_shift(X, sw)
    last: list[Any] = [None, (X, sw, shift)]  # the active set of the rows below (run replaces it on a change)

    def pass_fn(gauss: MixtureParams, active: Any) -> SufficientStats:
        if int(active.shape[0]) == X.shape[0]:
            last[:] = [active, (X, sw, shift)]
        elif active is not last[0]:
            last[:] = [active, (X[active], None if sw is None else sw[active], shift[active])]
        Xa, swa, shift_a = last[1]
        return sufficient_statistics(Xa, gauss, ct, swa, shift_a)

    return pass_fn


def run(
    xp: types.ModuleType,
    pass_fn: Callable[[MixtureParams, Any], SufficientStats],
    params: VariationalParams,
    priors: Priors,
    reg: Any,
    ct: CovarianceType,
    pt: str,
    *,
    tol: float,
    max_iter: int,
    previous: Any = None,
    batched: bool = True,
) -> tuple[VariationalParams, Any, Any, Any, Any]:
    """Variational EM on B problems until each converges (``|change| < tol``) or ``max_iter``:
    (params, lower bound (B,), n_iter (B,), converged (B,), history (B, n_iter)).

    ``pass_fn(gauss, active)`` gives the :class:`~gpuvec.mixture.SufficientStats` of the problems ``active``
    (indices into B) under the E-step parameters ``gauss``: :func:`in_memory_pass`, or a pass over a
    cluster (:mod:`gpuvec.mixture._dask`). Problems that have converged leave the pass."""
    B = params.means.shape[0]
    params = VariationalParams(*(xp.asarray(a, dtype=xp.float64).copy() for a in params))
    lb = xp.full(B, -xp.inf) if previous is None else xp.asarray(previous, dtype=xp.float64).copy()
    n_iter = xp.zeros(B, dtype=xp.int64)
    converged = xp.zeros(B, dtype=bool)
    history = xp.full((B, max(1, max_iter)), xp.nan)
    active = xp.arange(B)
    pa, prior_a, reg_a = params, priors, reg
    for it in range(1, max_iter + 1):
        gauss, top = e_step_params(xp, pa, pt)
        stats = pass_fn(gauss, active)
        new = m_step(xp, stats, reg_a, prior_a, ct, pt)
        bound = lower_bound(xp, stats, pa, top, new, ct, pt)
        bad = ~xp.isfinite(new.precisions_cholesky.reshape(new.precisions_cholesky.shape[0], -1)).all(-1)
        if bool(bad.any()):
            from gpuvec.mixture._fit import raise_failures

            failed, reg_all = _scatter(xp, B, active, bad), _scatter(xp, B, active, reg_a)
            raise_failures(xp, failed, xp.zeros(B, dtype=bool), reg_all, batched, retried=False)
        change = bound - lb[active]
        lb[active], history[active, it - 1], n_iter[active] = bound, bound, it
        for full_arr, part in zip(params, new):
            full_arr[active] = part
        done = xp.abs(change) < tol
        if bool(done.any()):
            converged[active[done]] = True
            keep = ~done
            active = active[keep]
            if active.shape[0] == 0:
                break
            prior_a, reg_a, new = take(prior_a, keep), reg_a[keep], take(new, keep)
        pa = new
    return params, lb, n_iter, converged, history[:, : max(1, int(n_iter.max()) if B else 1)]


def _scatter(xp: types.ModuleType, B: int, active: Any, values: Any) -> Any:
    out = xp.zeros(B, dtype=values.dtype)
    out[active] = values
    return out
