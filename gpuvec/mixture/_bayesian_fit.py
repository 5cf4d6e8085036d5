"""BayesianGaussianMixture's fit, read from the estimator: priors, starts, runs, attributes.

Shared by the in-memory fit (:mod:`gpuvec.mixture._bayesian_mixture`) and the dask fit
(:mod:`gpuvec.mixture._dask`), which differ only in where the data's mean and covariance (the default
priors), the start's statistics and each iteration's statistics come from.
"""

from __future__ import annotations

import types
from collections.abc import Callable
from typing import Any

import numpy as np

import gpuvec.mixture._fit as _fit
import gpuvec.mixture._variational as _vi
from gpuvec._core.checks import check_real, warn_at_caller
from gpuvec.mixture._covariance import precisions_from_cholesky
from gpuvec.mixture._validation import Settings, check_same_model, first
from gpuvec.mixture._xp import SufficientStats

__all__ = ["PRIORS", "data_priors", "first_params", "fit_all", "fit_starts", "fitted", "priors", "settings_of"]

PRIORS = ("weight_concentration_prior", "mean_precision_prior", "mean_prior", "degrees_of_freedom_prior")
"""The priors given once or per problem (``covariance_prior`` aside: its shape depends on the type)."""


def settings_of(estimator: Any) -> Settings:
    """GaussianMixture's checked settings for what the two share (no explicit starts here)."""
    params = {k: v for k, v in estimator.get_params().items() if k not in (*PRIORS, "covariance_prior")}
    params.pop("weight_concentration_prior_type")
    proxy = types.SimpleNamespace(get_params=lambda: {**params, "weights_init": None, "means_init": None,
                                                       "precisions_init": None})  # fmt: skip
    return Settings.of(proxy)


def _per_problem(xp: types.ModuleType, name: str, value: Any, B: int, tail: tuple[int, ...], batched: bool) -> Any:
    """A prior given once or per problem, as a float64 (B, *tail) array, or a ValueError naming it."""
    if np.iscomplexobj(value) or getattr(getattr(value, "dtype", None), "kind", "") == "c":
        raise TypeError(f"{name} must be real; got a complex array")
    a = xp.asarray(value, dtype=xp.float64)
    if not bool(xp.isfinite(a).all()):
        raise ValueError(f"{name} must be finite; got {a.tolist()}")
    if tuple(a.shape) == tail:
        return xp.broadcast_to(a, (B, *tail)).copy()
    if batched and tuple(a.shape) == (B, *tail):
        return a.copy()
    want = f"{tail}" + (f" or {(B, *tail)}" if batched else "")
    raise ValueError(f"{name} must have shape {want}; got shape {tuple(a.shape)}")


def _positive(xp: types.ModuleType, name: str, a: Any, floor: float = 0.0) -> Any:
    if not bool(xp.isfinite(a).all()) or not bool((a > floor).all()):
        raise ValueError(f"{name} must be finite and greater than {floor:g}; got {a.tolist()}")
    return a


def data_priors(est: Any, xp: types.ModuleType, X: Any, sw: Any, batched: bool) -> _vi.Priors:
    """:func:`priors` of in-memory (B, N, D) data."""
    w = xp.ones(X.shape[:2]) if sw is None else sw
    mean = xp.matmul(w[:, None, :], X.astype(xp.float64))[:, 0] / w.sum(1)[:, None]

    def data_covariance() -> Any:  # frequency weights, ddof=1 (np.cov's)
        Z = (X.astype(xp.float64) - mean[:, None, :]) * xp.sqrt(w)[..., None]
        return xp.matmul(xp.swapaxes(Z, 1, 2), Z) / (w.sum(1) - 1.0)[:, None, None]

    return priors(est, xp, mean, data_covariance, batched)


def priors(est: Any, xp: types.ModuleType, mean: Any, data_covariance: Callable[[], Any], batched: bool) -> _vi.Priors:
    """The priors of each problem: the user's (checked), else sklearn's defaults from the data, whose (B, D) mean
    is given and whose (B, D, D) covariance ``data_covariance()`` gives when it is needed ('diag' and
    'spherical' read its diagonal)."""
    B, D = mean.shape
    K = est.n_components

    def given(name: str, default: Any, tail: tuple[int, ...] = ()) -> Any:
        value = getattr(est, name)
        if value is None:
            return default
        if not tail and not hasattr(value, "shape"):
            value = check_real(name, value)
        return _per_problem(xp, name, value, B, tail, batched)  # arrays: real, finite, (B,) + tail or tail

    alpha = _positive(xp, "weight_concentration_prior", given("weight_concentration_prior", xp.full(B, 1.0 / K)))
    beta = _positive(xp, "mean_precision_prior", given("mean_precision_prior", xp.ones(B)))
    mean_prior = given("mean_prior", mean, (D,))
    nu = given("degrees_of_freedom_prior", xp.full(B, float(D)))
    if not bool((nu > D - 1.0).all()):
        bad = float(nu[~(nu > D - 1.0)][0])
        msg = f"The parameter 'degrees_of_freedom_prior' should be greater than {D - 1}, but got {bad:.3f}."
        raise ValueError(msg)
    return _vi.Priors(alpha, beta, mean_prior, nu, _covariance_prior(est, xp, B, D, data_covariance, batched))


def _covariance_prior(est, xp: types.ModuleType, B: int, D: int, data_covariance: Callable[[], Any], batched: bool):
    """The user's covariance prior (checked), or the data's covariance."""
    ct = est.covariance_type
    if est.covariance_prior is None:
        cov = data_covariance()
        if ct in ("full", "tied"):
            return cov
        var = xp.diagonal(cov, axis1=-2, axis2=-1) if cov.ndim == 3 else cov
        return var if ct == "diag" else var.mean(-1)
    tail = {"full": (D, D), "tied": (D, D), "diag": (D,), "spherical": ()}[ct]
    value = est.covariance_prior
    if ct == "spherical" and not hasattr(value, "shape"):
        value = check_real("covariance_prior", value)
    prior = _per_problem(xp, f"{ct} covariance_prior", value, B, tail, batched)
    if ct in ("full", "tied"):
        symmetric = bool(xp.allclose(prior, xp.swapaxes(prior, -1, -2)))
        if not symmetric or not bool((xp.linalg.eigvalsh(prior) > 0).all()):
            raise ValueError(f"'{ct} covariance_prior' should be symmetric, positive-definite")
        return prior
    return _positive(xp, f"{ct} covariance_prior", prior)


def fit_all(est, settings, xp, X, sw, priors, pt, batched, dtype) -> None:
    """Every start of every problem, the best start of each, warnings, the attributes."""
    B = X.shape[0]
    starts, previous = first_params(est, settings, xp, priors, pt, B, X.shape[2],
                                    lambda n_init: _fit.start_statistics(settings, xp, X, sw, n_init))  # fmt: skip
    fit_starts(est, settings, xp, _vi.in_memory_pass(X, sw, settings.covariance_type), starts, previous, priors,
               pt, batched, dtype)  # fmt: skip


TOO_FEW_POSITIVE = (
    "sample_weight must be positive on at least 2 samples of every problem (the default covariance prior is "
    "their covariance, ddof=1)"
)


def check_n_samples(n: int, shape: tuple[int, ...]) -> None:
    """The default priors are the data's mean and covariance (ddof=1): sklearn's minimum of 2 samples."""
    if n < 2:
        raise ValueError(f"Found array with {n} sample(s) (shape={shape}) while a minimum of 2 is required.")


def resumes(est: Any, settings: Settings, B: int, D: int) -> bool:
    """Whether a fit of B problems of D features goes on from the fitted model (``warm_start``); a changed
    model (n_components, covariance type, prior type) is a ValueError naming it."""
    if not (settings.warm_start and hasattr(est, "converged_") and est.means_.shape[-1] == D):
        return False
    if (est.means_.shape[0] if est.means_.ndim == 3 else 1) != B:
        return False
    check_same_model(est, settings)
    pt = est.weight_concentration_prior_type
    if isinstance(est.weight_concentration_, tuple) != (pt == "dirichlet_process"):
        raise ValueError(
            f"weight_concentration_prior_type is {pt!r} but the model was fitted with the other: go on with "
            "the type it was fitted with, or call fit without warm_start"
        )
    return True


def first_params(
    est: Any,
    settings: Settings,
    xp: types.ModuleType,
    priors: _vi.Priors,
    pt: str,
    B: int,
    D: int,
    start_statistics: Callable[[int], SufficientStats],
) -> tuple[list[_vi.VariationalParams], Any]:
    """The starts of the B problems (a list of one batch per start) and the lower bounds to go on from: the
    fitted model for a warm start (else None), else the M-step of ``start_statistics(n_init)``
    (start i of problem b at b * n_init + i, as :func:`~gpuvec.mixture._fit.start_statistics` gives)."""
    if resumes(est, settings, B, D):
        return [fitted(est, xp)], _fit.as_batch(xp, est.lower_bound_, est.means_.ndim == 3)
    n_init = settings.n_init
    reg = xp.full(B * n_init, float(settings.reg_covar))
    every = _vi.m_step(xp, start_statistics(n_init), reg, _repeat(xp, priors, n_init), settings.covariance_type, pt)
    return [_vi.take(every, xp.arange(i, B * n_init, n_init)) for i in range(n_init)], None


def fit_starts(
    est: Any,
    settings: Settings,
    xp: types.ModuleType,
    pass_fn: Callable[[Any, Any], SufficientStats],
    starts: list[_vi.VariationalParams],
    previous: Any,
    priors: _vi.Priors,
    pt: str,
    batched: bool,
    dtype: Any,
) -> None:
    """Variational EM from each start (``pass_fn`` as :func:`~gpuvec.mixture._variational.run`'s), the best
    start of each problem, the convergence warning, the attributes."""
    B = starts[0].means.shape[0]
    ct = settings.covariance_type
    reg = xp.full(B, float(settings.reg_covar))
    options = dict(tol=settings.tol, max_iter=settings.max_iter, previous=previous, batched=batched)
    # one start after another (as one batch of B * n_init, copies of X, it measured slower in memory: every
    # problem of the stacked batch paid the loop until the slowest start converged)
    runs = [_vi.run(xp, pass_fn, p, priors, reg, ct, pt, **options) for p in starts]
    lbs = xp.stack([r[1] for r in runs], axis=1)  # (B, n_init)
    best = _fit.best_starts(xp, xp.where(xp.isnan(lbs), -xp.inf, lbs))

    def choose(parts: list[Any]) -> Any:  # each problem's part from its best start
        return xp.stack(parts, axis=1)[xp.arange(B), best]

    params = _vi.VariationalParams(*(choose([r[0][j] for r in runs]) for j in range(6)))
    lb, n_iter, converged = (choose([r[k] for r in runs]) for k in (1, 2, 3))
    width = max(r[4].shape[1] for r in runs)
    history = choose([xp.pad(r[4], ((0, 0), (0, width - r[4].shape[1])), constant_values=np.nan) for r in runs])
    if bool((~converged).any()) and settings.max_iter > 0:
        where = f" (problems {first(xp.nonzero(~converged)[0])})" if batched else ""
        warn_at_caller(
            f"Best performing initialization did not converge{where}. Try different init parameters, "
            "or increase max_iter, tol, or check for degenerate data.",
            _fit.issued_convergence_warning(),
        )
    _store(est, xp, params, priors, lb, n_iter, converged, history, ct, pt, batched, dtype)


def _repeat(xp: types.ModuleType, priors: _vi.Priors, n: int) -> _vi.Priors:
    return _vi.Priors(*(xp.repeat(a, n, axis=0) for a in priors))


def fitted(est: Any, xp: types.ModuleType) -> _vi.VariationalParams:
    """The fitted variational parameters, batched (B, ...) and float64."""
    batched = est.means_.ndim == 3
    conc = est.weight_concentration_
    conc = xp.stack(conc, axis=-2) if isinstance(conc, tuple) else conc
    dof = est.degrees_of_freedom_
    dof = xp.asarray(dof, dtype=xp.float64)
    if est.covariance_type == "tied":
        dof = dof[..., None]
    parts = (conc, est.mean_precision_, est.means_, dof, est.covariances_, est.precisions_cholesky_)
    return _vi.VariationalParams(*(_fit.as_batch(xp, a, batched) for a in parts))


def _store(est, xp, params, priors, lb, n_iter, converged, history, ct, pt, batched, dtype) -> None:
    one = (lambda a: a.astype(dtype, copy=False)) if batched else (lambda a: a[0].astype(dtype, copy=False))
    conc = params.weight_concentration
    dof = params.degrees_of_freedom[..., 0] if ct == "tied" else params.degrees_of_freedom
    attrs: dict[str, Any] = {
        "weights_": one(_vi.weights_of(xp, conc, pt)),
        "means_": one(params.means),
        "covariances_": one(params.covariances),
        "precisions_cholesky_": one(params.precisions_cholesky),
        "precisions_": one(precisions_from_cholesky(xp, params.precisions_cholesky, ct)),
        "weight_concentration_": (one(conc[:, 0]), one(conc[:, 1])) if pt == "dirichlet_process" else one(conc),
        "mean_precision_": one(params.mean_precision),
        "degrees_of_freedom_": (float(dof[0]) if ct == "tied" else one(dof)) if not batched else one(dof),
    }
    for name, value in zip(("weight_concentration_prior_", "mean_precision_prior_", "mean_prior_",
                            "degrees_of_freedom_prior_", "covariance_prior_"), priors):  # fmt: skip
        attrs[name] = value if batched else (float(value[0]) if value.ndim == 1 else value[0])
    if batched:
        attrs |= {"converged_": converged, "n_iter_": n_iter, "lower_bound_": lb, "lower_bounds_": history}
    else:
        k = int(n_iter[0])
        attrs |= {
            "converged_": bool(converged[0]),
            "n_iter_": k,
            "lower_bound_": float(lb[0]),
            "lower_bounds_": [float(v) for v in history[0, :k]],
        }
    _fit.store(est, attrs)
