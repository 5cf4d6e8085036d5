"""Fitting a GaussianMixture: the starts, EM, the best start, failures and warnings, and what a fit stores.

Written once for the in-memory fit (:func:`fit`) and the dask fits
(:mod:`gpuvec.mixture._dask`). Both read the estimator through a narrow
interface: its checked :class:`~gpuvec.mixture._validation.Settings` (from
``get_params()``), its fitted attributes (sklearn's public names, read by
:func:`fitted_params` and :func:`warm_state`) and :func:`store`, which sets
them. Whether a fit was batched is read from ``means_`` (3 axes), so the
estimator keeps no private state.

Start ``i`` of problem ``b`` is problem ``b * n_init + i`` of the parameters
and results; each start runs EM on X itself (no copy of X per start).
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np

import gpuvec.mixture._dispatch as _dispatch
from gpuvec._core.checks import warn_at_caller
from gpuvec._core.namespace import get_namespace
from gpuvec._core.threads import blas_limited
from gpuvec.mixture._covariance import (
    COVARIANCE_TYPES,
    covariances_from_cholesky,
    per_component,
    precisions_from_cholesky,
)
from gpuvec.mixture._em import REG_COVAR_TRIES, EMResult, fit_em, interleave_starts, params_ok, regularisation_retry
from gpuvec.mixture._starts import LABEL_METHODS, initial_labels, initial_resp
from gpuvec.mixture._validation import Settings, check_same_model, first, g_list, user_init
from gpuvec.mixture._xp import (
    MixtureParams,
    SufficientStats,
    e_step_chunks,
    label_statistics,
    params_from_statistics,
    resp_statistics,
)

__all__ = [
    "as_batch",
    "convergence_warning_class",
    "e_step_outputs",
    "finish",
    "fit",
    "fitted_attributes",
    "fitted_params",
    "issued_convergence_warning",
    "n_parameters",
    "raise_failures",
    "sample",
    "start_statistics",
    "store",
    "warm_state",
]

_convergence_warning: type[UserWarning] | None = None


def convergence_warning_class() -> type[UserWarning]:
    """``ConvergenceWarning``: made on first use, as a subclass of sklearn's when sklearn imports.

    So that ``warnings.filterwarnings("ignore", category=sklearn.exceptions.ConvergenceWarning)``
    silences gpuvec's too, without ``import gpuvec`` paying for importing sklearn (about a second).
    """
    global _convergence_warning
    if _convergence_warning is None:
        try:
            from sklearn.exceptions import ConvergenceWarning as base
        except ImportError:
            base = UserWarning
        _convergence_warning = type(
            "ConvergenceWarning",
            (base,),
            {
                "__module__": "gpuvec.mixture",
                "__doc__": "EM stopped at max_iter before the lower bound settled: a subclass of "
                "sklearn.exceptions.ConvergenceWarning where sklearn imports, else of UserWarning.",
            },
        )
    return _convergence_warning


# What a fit warns with before anything asked for the class above or imported sklearn: importing sklearn
# for the first fit that stops at max_iter took 1-2 s here, for a class nobody can be filtering on yet.
_UNNAMED_CONVERGENCE_WARNING = type(
    "ConvergenceWarning",
    (UserWarning,),
    {"__module__": "gpuvec.mixture", "__doc__": "EM stopped at max_iter (before sklearn or the class was imported)."},
)


def issued_convergence_warning() -> type[UserWarning]:
    """The class a fit that stops at max_iter warns with: :func:`convergence_warning_class` once it exists or
    sklearn is imported (so sklearn's class, and gpuvec's, filter it), else a UserWarning of the same name."""
    if _convergence_warning is not None or "sklearn" in sys.modules:
        return convergence_warning_class()
    return _UNNAMED_CONVERGENCE_WARNING


# --------------------------------------------------------------------------- the estimator's fitted state


def fitted_params(estimator: Any, xp: types.ModuleType) -> tuple[Any, Any, Any]:
    """(weights (B, K), means (B, K, D), precision Cholesky factors (B, ...)) of a fitted estimator, in float64
    (a float32 model's distances in float32 lost nats to cancellation far from the origin)."""
    attrs = (estimator.weights_, estimator.means_, estimator.precisions_cholesky_)
    return tuple(as_batch(xp, a, estimator.means_.ndim == 3) for a in attrs)


def as_batch(xp: types.ModuleType, a: Any, batched: bool) -> Any:
    """A fitted attribute as a float64 array with the leading B axis (added for an unbatched fit)."""
    a = xp.asarray(a, dtype=xp.float64)
    return a if batched else a[None]


def warm_state(estimator: Any, settings: Settings, xp: types.ModuleType, B: int, D: int) -> tuple[Any, ...] | None:
    """(params, reg_covar (B,), lower bound (B,)) to go on from, for a warm start on B problems of D features.

    None where there is no previous fit of that shape (or ``warm_start`` is off).
    """
    means = getattr(estimator, "means_", None)
    if not (settings.warm_start and hasattr(estimator, "converged_") and means is not None):
        return None
    batched = means.ndim == 3
    if (means.shape[0] if batched else 1) != B or means.shape[-1] != D:
        return None
    check_same_model(estimator, settings)

    names = ("weights_", "means_", "covariances_", "precisions_cholesky_")
    params = MixtureParams(*(as_batch(xp, getattr(estimator, n), batched) for n in names))
    # Go on with a reg_covar the previous fit had to raise (unless the retry is off: reg_covar=0).
    reg = (
        xp.maximum(as_batch(xp, estimator.reg_covar_, batched), settings.reg_covar)
        if settings.reg_covar > 0
        else xp.zeros(B)
    )
    return params, reg, as_batch(xp, estimator.lower_bound_, batched)


def n_parameters(estimator: Any) -> int:
    """Free parameters of a fitted mixture (one problem), for BIC and AIC."""
    K, D = estimator.n_components, estimator.means_.shape[-1]
    return COVARIANCE_TYPES[estimator.covariance_type].n_parameters(K, D) + K * D + K - 1


def store(estimator: Any, attrs: dict[str, Any]) -> None:
    """Set the fitted attributes (sklearn's names) and ``n_features_in_``. A fit (attributes without
    ``n_steps_``) ends what partial_fit was running: the next partial_fit goes on from the fit."""
    if "n_steps_" not in attrs:
        for name in ("sufficient_stats_", "n_steps_"):
            estimator.__dict__.pop(name, None)
    for name, value in attrs.items():
        setattr(estimator, name, value)
    estimator.n_features_in_ = attrs["means_"].shape[-1]


# --------------------------------------------------------------------------- the in-memory fit


def fit(estimator: Any, settings: Settings, xp: types.ModuleType, X: Any, sw: Any, batched: bool, dtype: Any) -> None:
    """Fit the B problems of a validated X (B, N, D) in memory; stores the estimator's attributes."""
    B, _, D = X.shape
    if settings.random_state is not None:  # a bad one is refused up front, even where no start is drawn
        settings.rng(xp)
    w_init, m_init, p_init = user_init(xp, settings, B, D, batched)
    warm = warm_state(estimator, settings, xp, B, D)
    if warm is not None:
        n_init = 1
        params, reg, previous = warm
        start_reg = reg
    else:
        n_init = settings.n_init
        start_reg = xp.full(B * n_init, float(settings.reg_covar))
        params, reg = starts(settings, xp, X, sw, n_init, w_init, m_init, p_init)
        warn_identical_components(settings, xp, params, n_init)
        previous = None
    start_failed = ~params_ok(params)
    start_overflow = ~xp.isfinite(params.covariances.reshape(params.covariances.shape[0], -1)).all(-1)

    def start(a: Any, i: int) -> Any:
        return a[i::n_init] if n_init > 1 else a

    runs = [
        fit_em(X, MixtureParams(*(start(a, i) for a in params)), start(reg, i), settings.covariance_type, sw,
               lower_bound=previous, **settings.em_options())
        for i in range(n_init)
    ]  # fmt: skip
    result = runs[0] if n_init == 1 else _interleave_results(xp, runs)
    finish(estimator, settings, xp, result, start_failed, start_overflow, start_reg, n_init, batched, dtype)


def starts(
    settings: Settings, xp: types.ModuleType, X: Any, sw: Any, n_init: int, w_init: Any, m_init: Any, p_init: Any
) -> tuple[MixtureParams, Any]:
    """Starting parameters and reg_covar of the B * n_init starts (start i of problem b at b * n_init + i)."""
    ct = settings.covariance_type
    rep = (lambda a: xp.repeat(a, n_init, axis=0)) if n_init > 1 else (lambda a: a)
    reg = xp.full(X.shape[0] * n_init, float(settings.reg_covar))
    if w_init is not None and m_init is not None and p_init is not None:
        P = rep(p_init)  # a complete explicit start: EM's first E-step needs nothing else
        return MixtureParams(rep(w_init), rep(m_init), covariances_from_cholesky(xp, P, ct), P), reg
    stats = start_statistics(settings, xp, X, sw, n_init)

    def step(r: Any) -> MixtureParams:  # the first M-step, redone from the same statistics by the retry
        return params_from_statistics(stats, r, ct)

    params, reg, _ = regularisation_retry(step, step(reg), reg, REG_COVAR_TRIES)
    params = params._replace(
        weights=params.weights if w_init is None else rep(w_init),
        means=params.means if m_init is None else rep(m_init),
        precisions_cholesky=params.precisions_cholesky if p_init is None else rep(p_init),
    )
    return params, reg


def start_statistics(settings: Settings, xp: types.ModuleType, X: Any, sw: Any, n_init: int) -> SufficientStats:
    """The statistics of the ``init_params`` responsibilities of the B * n_init starts (start i of problem b
    at b * n_init + i): one draw over the B problems per start, in order, so start 0 draws what n_init=1
    draws; each start's statistics come from X itself."""
    K, ct = settings.n_components, settings.covariance_type
    rng = settings.rng(xp)
    per_start: list[SufficientStats] = []
    for _ in range(n_init):
        if settings.init_params in LABEL_METHODS:  # one label per sample: the one-hot start is never built
            labels = initial_labels(xp, X, K, settings.init_params, rng, sw)
            per_start.append(label_statistics(X, labels, K, ct, sw))
        else:
            resp = initial_resp(xp, X, K, settings.init_params, rng, sw)
            with np.errstate(divide="ignore"):
                per_start.append(resp_statistics(X, xp.log(resp), ct, sw))
    if n_init == 1:
        return per_start[0]
    nk, sx, sxx, ll, ws, shift = (interleave_starts(xp, parts) for parts in zip(*per_start))
    return SufficientStats(nk, sx, sxx, ll, ws, shift)


def sample(estimator: Any, n_samples: int, rng: Any) -> tuple[Any, Any]:
    """``n_samples`` draws per problem from a fitted mixture's ``weights_``, ``means_`` and ``covariances_``
    (sklearn's ``sample``: samples grouped by component, labels sorted)."""
    xp = get_namespace(estimator.means_)
    w, m, _ = fitted_params(estimator, xp)
    B, K, D = m.shape
    cov = estimator.covariances_ if estimator.means_.ndim == 3 else estimator.covariances_[None]
    cov = per_component(xp, cov, estimator.covariance_type, K, D, dense=True)
    u = rng.random((B, n_samples))
    labels = xp.sort((u[..., None] > xp.cumsum(w, -1)[:, None, :]).sum(-1), axis=-1)
    labels = xp.minimum(labels, K - 1)
    draws = rng.multivariate_normal(xp.zeros((B, K, D)), cov, size=n_samples)  # (n, B, K, D)
    draws = xp.swapaxes(draws, 0, 1)  # (B, n, K, D)
    bidx, nidx = xp.arange(B)[:, None], xp.arange(n_samples)[None, :]
    X = draws[bidx, nidx, labels] + m[bidx, labels]
    return (X, labels) if estimator.means_.ndim == 3 else (X[0], labels[0])


def warn_identical_components(settings: Settings, xp: types.ModuleType, params: MixtureParams, n_init: int) -> None:
    """Warn where a start has two components with the same means and precisions: EM cannot separate them."""
    K = settings.n_components
    if K < 2:
        return
    m = params.means
    # pairs whose means agree in the first few features first (identical components always do): the
    # full (B, K, K, D) comparison took 1.3 ms of a 26 ms fit at K = 64, D = 1000, and most starts have none
    lead = m[..., :8]
    if not bool(((lead[:, :, None, :] == lead[:, None, :, :]).all(-1) & ~xp.eye(K, dtype=bool)).any()):
        return
    same = (m[:, :, None, :] == m[:, None, :, :]).all(-1)
    if not COVARIANCE_TYPES[settings.covariance_type].shared:
        P = params.precisions_cholesky
        Pf = P.reshape(P.shape[0], K, -1)
        same &= (Pf[:, :, None, :] == Pf[:, None, :, :]).all(-1)
    bad = (same & ~xp.eye(K, dtype=bool)).any(axis=(1, 2))
    if bool(bad.any()):
        problems = sorted({int(i) // n_init for i in xp.nonzero(bad)[0]})
        warn_at_caller(
            f"GaussianMixture: problems {first(problems)} start with identical components "
            "(the same means and precisions): that start is a fixed point of EM, which cannot separate them. "
            "Use distinct means_init, or init_params='k-means++'.",
            UserWarning,
        )


def _interleave_results(xp: types.ModuleType, runs: list[EMResult]) -> EMResult:
    """The EMResults of n_init starts (one fit_em run each) as one result over B * n_init problems."""
    iters = max(r.history.shape[1] for r in runs)  # histories padded with NaN to the longest run
    runs = [r._replace(history=xp.pad(r.history, ((0, 0), (0, iters - r.history.shape[1])), constant_values=xp.nan))
            for r in runs]  # fmt: skip
    params = MixtureParams(*(interleave_starts(xp, parts) for parts in zip(*(r.params for r in runs))))
    return EMResult(params, *(interleave_starts(xp, parts) for parts in zip(*(r[1:] for r in runs))))


# --------------------------------------------------------------------------- after EM


# Starts whose lower bounds are this close (relative) count as tied: the in-memory and dask passes sum
# in different orders, and rounding must not pick another start (and another order of components).
TIE_RTOL = 1e-10


def best_starts(xp: types.ModuleType, score: Any) -> Any:
    """Per row of the (B, n_init) lower bounds (-inf for failed starts), the first start within
    :data:`TIE_RTOL` of the row's best: the same choice whatever order the pass summed in.

    Examples
    --------
    >>> import numpy as np
    >>> best_starts(np, np.array([[-1.0, -0.5, -0.5 + 1e-15], [-np.inf, -2.0, -3.0]])).tolist()
    [1, 1]
    """
    top = score.max(axis=1, keepdims=True)
    with np.errstate(invalid="ignore"):  # infinite bounds: only the equal ones count
        near = (score == top) | (score >= top - TIE_RTOL * xp.abs(top))
    return xp.argmax(near, axis=1)


def finish(
    estimator, settings, xp, result, start_failed, start_overflow, start_reg, n_init, batched, dtype, start_errors=None
) -> None:
    """After EM (in memory or on dask): the best of each problem's starts, failures raised, warnings, the
    fitted attributes stored. ``start_errors[i]``: an error to raise if start i of a lone problem wins."""
    params, lower_bound, n_iter, converged, failed, history, reg = result
    # A start whose covariance failed (reg_covar=0, or overflow) fails at once; overflow is told apart
    # by non-finite covariances at the start, or by a NaN lower bound from finite parameters.
    overflow = xp.where(start_failed, start_overflow, failed & ~xp.isfinite(lower_bound))
    failed = failed | start_failed | ~params_ok(params)
    if n_init > 1:
        B = lower_bound.shape[0] // n_init
        score = xp.where(failed | xp.isnan(lower_bound), -xp.inf, lower_bound).reshape(B, n_init)
        best = best_starts(xp, score) + xp.arange(B) * n_init
        if start_errors is not None and B == 1 and start_errors[int(best[0])] is not None:
            raise start_errors[int(best[0])]
        params = MixtureParams(*(a[best] for a in params))
        lower_bound, n_iter, converged, failed, overflow, history, reg, start_reg = (
            a[best] for a in (lower_bound, n_iter, converged, failed, overflow, history, reg, start_reg)
        )
    raise_failures(xp, failed, overflow, reg, batched)
    _warn_regularisation(xp, reg, start_reg, batched)
    if bool((~converged).any()) and settings.max_iter > 0:
        where = f" (problems {first(xp.nonzero(~converged)[0])})" if batched else ""
        warn_at_caller(
            f"Best performing initialization did not converge{where}. Try different init parameters, "
            "or increase max_iter, tol, or check for degenerate data.",
            issued_convergence_warning(),
        )
    result = EMResult(params, lower_bound, n_iter, converged, failed, history, reg)
    store(estimator, fitted_attributes(xp, settings.covariance_type, result, batched, dtype))


def raise_failures(xp, failed, overflow, reg, batched, retried=True):
    """sklearn raises where EM cannot go on; so does gpuvec, naming the problems of a batch. ``retried``: the
    fit raised reg_covar before failing (partial_fit and the variational fit do not)."""
    if not bool(failed.any()):
        return
    parts = []
    ill = failed & ~overflow
    if bool(ill.any()):
        where = f" in problems {first(xp.nonzero(ill)[0])}" if batched else ""
        raised = "" if not retried or bool((reg[ill] == 0).all()) else f" (reg_covar raised to {g_list(reg[ill])})"
        parts.append(
            "Fitting the mixture model failed because some components have ill-defined empirical covariance "
            f"(for instance caused by singleton or collapsed samples){where}{raised}."
        )
    if bool(overflow.any()):
        where = f" in problems {first(xp.nonzero(overflow)[0])}" if batched else ""
        parts.append(
            f"Fitting the mixture model failed because the covariances or the log-likelihood overflow{where}: "
            "the data's scale is too large for float64 arithmetic."
        )
    parts.append("Try to decrease the number of components, increase reg_covar, or scale the input data.")
    raise ValueError(" ".join(parts))


def _warn_regularisation(xp, reg, start_reg, batched):
    changed = reg != start_reg
    if not bool(changed.any()):
        return
    if batched:
        problems = first(xp.nonzero(changed)[0])
        what = f"from {g_list(start_reg[changed])} to {g_list(reg[changed])} in problems {problems}"
    else:
        what = f"from {float(start_reg[0]):g} to {float(reg[0]):g}"
    warn_at_caller(
        f"GaussianMixture: reg_covar raised {what}, because a covariance was not positive definite "
        "(reg_covar_ holds the value used). Pass a larger reg_covar, or scale the input data, to fit without "
        "the retry; reg_covar=0 turns the retry off (a failure then raises).",
        UserWarning,
    )


def fitted_attributes(xp, covariance_type, result: EMResult, batched: bool, dtype) -> dict[str, Any]:
    """sklearn's fitted attributes from a batched result: parameters in ``dtype``, and the (B,) leading axis
    dropped for an (N, D) fit."""
    params = result.params
    one = (lambda a: a.astype(dtype, copy=False)) if batched else (lambda a: a[0].astype(dtype, copy=False))
    attrs = {
        "weights_": one(params.weights),
        "means_": one(params.means),
        "covariances_": one(params.covariances),
        "precisions_cholesky_": one(params.precisions_cholesky),
        "precisions_": one(precisions_from_cholesky(xp, params.precisions_cholesky, covariance_type)),
    }
    if batched:
        return attrs | {
            "converged_": result.converged,
            "n_iter_": result.n_iter,
            "lower_bound_": result.lower_bound,
            "lower_bounds_": result.history,
            "reg_covar_": result.reg_covar,
        }
    n_iter = int(result.n_iter[0])
    return attrs | {
        "converged_": bool(result.converged[0]),
        "n_iter_": n_iter,
        "lower_bound_": float(result.lower_bound[0]),
        "lower_bounds_": [float(v) for v in result.history[0, :n_iter]],
        "reg_covar_": float(result.reg_covar[0]),
    }


# --------------------------------------------------------------------------- prediction


def e_step_outputs(estimator: Any, xp: types.ModuleType, X: Any, what: str, dtype: Any) -> Any:
    """'labels' (B, N), 'proba' (B, N, K) or 'log_norm' (B, N) of a validated X under the fitted model,
    block by block (cache-sized temporaries); 'proba' and 'log_norm' in ``dtype``."""
    B, N, D = X.shape
    K, ct = estimator.n_components, estimator.covariance_type
    if what == "labels":
        out = xp.empty((B, N), dtype=xp.int64)
    else:
        out = xp.empty((B, N, K) if what == "proba" else (B, N), dtype=dtype)
    params = fitted_params(estimator, xp)
    impl = _dispatch.pass_implementation(xp, B, N, K, D, ct)
    if impl is not None:  # the fused loop, or per-component GEMMs (see gpuvec.mixture._dispatch)
        with np.errstate(divide="ignore", invalid="ignore"), blas_limited():
            return impl.e_step_outputs(X, *params, ct, what, out)
    with np.errstate(divide="ignore"), blas_limited():
        for bs, s, log_resp, log_norm in e_step_chunks(X, *params, ct):
            if what == "labels":
                out[bs, s] = log_resp.argmax(-1)
            elif what == "proba":
                out[bs, s] = xp.exp(log_resp)
            else:
                out[bs, s] = log_norm
    return out
