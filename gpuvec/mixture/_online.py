"""Online mixtures: :meth:`GaussianMixture.partial_fit` by stepwise EM on the mergeable statistics.

Each call is one step of stepwise EM (Cappé & Moulines 2009; Liang & Klein
2009). The batch's sufficient statistics, per unit of sample weight, pull the
running statistics towards them,

    s <- (1 - rho_t) s + rho_t s_batch,    rho_t = (learning_offset + t) ** -learning_decay,

and the parameters are the M-step of ``s``: the same M-step (and ``reg_covar``)
as :meth:`~GaussianMixture.fit`. ``t`` is the number of steps taken before this
one (``n_steps_``): 1 after the first call, which starts from its batch (EM on
it as :meth:`~GaussianMixture.fit` runs it, from ``init_params`` or the
``*_init`` arrays with ``n_init`` starts, then the batch's statistics under the
result are the running ones: ``rho = 1``), or after
:meth:`~GaussianMixture.fit`, whose parameters stand for the statistics they
imply. The step sizes sum to infinity while their
squares do not, for ``learning_decay`` in (0.5, 1]: the conditions under which
stepwise EM converges on a stationary stream; a smaller decay forgets faster
and follows drift.

Nothing of past batches is kept but the running statistics (K D^2 numbers per
problem for 'full'), so a stream of any length costs what one batch costs.
"""

from __future__ import annotations

import types
from typing import Any

import gpuvec.mixture._fit as _fit
from gpuvec.mixture._em import EMResult, params_ok
from gpuvec.mixture._validation import (
    Settings,
    check_matches_fit,
    check_same_model,
    validate_sample_weight,
    validate_X,
)
from gpuvec.mixture._xp import MixtureParams, SufficientStats, data_shift, params_from_statistics, sufficient_statistics

__all__ = ["partial_fit", "per_unit_weight", "stats_from_params", "step", "step_size"]


def step_size(t: int, learning_offset: float, learning_decay: float) -> float:
    """``(learning_offset + t) ** -learning_decay``: the weight step ``t + 1`` gives its batch.

    Examples
    --------
    >>> round(step_size(1, 10.0, 0.7), 6), step_size(1, 0.0, 0.7)
    (0.186649, 1.0)
    """
    return float((learning_offset + t) ** -learning_decay)


def per_unit_weight(xp: types.ModuleType, stats: SufficientStats) -> SufficientStats:
    """The statistics divided by each problem's sample weight (a problem without weight: zeros)."""
    total = stats.weight_sum
    scale = xp.where(total > 0, 1.0 / xp.where(total > 0, total, 1.0), 0.0)

    def each(a: Any) -> Any:
        return a * scale.reshape((-1,) + (1,) * (a.ndim - 1))

    nk, sx, sxx, log_likelihood, weight_sum = (each(a) for a in stats[:5])
    return SufficientStats(nk, sx, sxx, log_likelihood, weight_sum, stats.shift)


def stats_from_params(
    xp: types.ModuleType, params: MixtureParams, reg: Any, covariance_type: str, shift: Any
) -> SufficientStats:
    """The statistics per unit weight, about ``shift`` (B, 1, D), whose M-step gives ``params`` back (up to
    sklearn's 10 eps on the weights): what a fitted model stands for when stepwise EM goes on from it."""
    w, means, cov = params.weights, params.means, params.covariances
    B, K, D = means.shape
    d = means - shift
    sx = w[..., None] * d
    if covariance_type == "full":
        own = cov - reg[:, None, None, None] * xp.eye(D)
        sxx = w[..., None, None] * (own + d[..., :, None] * d[..., None, :])
    elif covariance_type == "tied":
        own = cov - reg[:, None, None] * xp.eye(D)
        sxx = (own + (w[..., None, None] * d[..., :, None] * d[..., None, :]).sum(1))[:, None]
    elif covariance_type == "diag":  # variances per feature (B, K, D)
        sxx = w[..., None] * (cov - reg[:, None, None] + d * d)
    else:  # 'spherical' (B, K): one variance per component; sxx its sum over the features
        sxx = w * (D * (cov - reg[:, None]) + (d * d).sum(-1))
    one = xp.ones(B)
    return SufficientStats(w, sx, sxx, xp.zeros(B), one, shift)


def partial_fit(estimator: Any, X: Any, sample_weight: Any) -> None:
    """:meth:`GaussianMixture.partial_fit` in memory: the checks, then :func:`step`."""
    settings = Settings.of(estimator)
    first_call = not hasattr(estimator, "means_")
    xp, X3, batched, dtype = validate_X(X, settings.n_components if first_call else None)
    if not first_call:  # the first call's features, B, K and covariance type
        check_matches_fit(estimator, tuple(X3.shape) if batched else tuple(X3.shape[1:]))
        check_same_model(estimator, settings)
    # a problem of a later batch may have no weight at all (ragged streams): it is left as it was
    sw = validate_sample_weight(xp, sample_weight, X3, batched, settings.n_components if first_call else None)
    step(estimator, settings, xp, X3, sw, batched, dtype)


def step(
    estimator: Any, settings: Settings, xp: types.ModuleType, X: Any, sw: Any, batched: bool, dtype: Any
) -> None:
    """One step of stepwise EM on a validated (B, n, D) batch; stores the estimator's attributes."""
    B, _, D = X.shape
    ct = settings.covariance_type
    running = getattr(estimator, "sufficient_stats_", None)
    first_call = getattr(estimator, "means_", None) is None
    if first_call:  # start from this batch: EM on it as fit() runs it (init_params or *_init, n_init starts)
        _fit.fit(estimator, settings, xp, X, sw, batched, dtype)
    (w, m, pc), reg = _fit.fitted_params(estimator, xp), _fit.as_batch(xp, estimator.reg_covar_, batched)
    cov = _fit.as_batch(xp, estimator.covariances_, batched)
    params = MixtureParams(*(xp.asarray(a, dtype=xp.float64) for a in (w, m, cov, pc)))
    if first_call:  # the batch's statistics are the first running ones (rho = 1)
        t, rho, shift = 0, xp.ones(B), data_shift(X, sw)
    else:
        if running is None:  # after fit: the fitted model stands for its statistics
            shift = (params.weights[..., None] * params.means).sum(1, keepdims=True)
            running, t = stats_from_params(xp, params, reg, ct, shift), 1
        else:
            running, t = SufficientStats(*(xp.asarray(a) for a in running)), int(estimator.n_steps_)
            shift = running.shift
        rho = xp.full(B, step_size(t, settings.learning_offset, settings.learning_decay))
    batch = per_unit_weight(xp, sufficient_statistics(X, params, ct, sw, shift))
    rho = xp.where(batch.weight_sum > 0, rho, 0.0)  # a problem with no weight in this batch stays
    if running is None:  # the first call
        running = batch
    else:
        for name, have, want in zip(SufficientStats._fields, running[:5], batch[:5]):
            if tuple(have.shape) != tuple(want.shape):  # e.g. statistics of another covariance type or version
                msg = (f"sufficient_stats_.{name} has shape {tuple(have.shape)}; expected {tuple(want.shape)} for "
                       f"covariance_type={ct!r} with {B} problem(s)")  # fmt: skip
                raise ValueError(msg)

        def blend(old: Any, new: Any) -> Any:
            r = rho.reshape((-1,) + (1,) * (old.ndim - 1))
            return (1 - r) * old + r * new

        nk, sx, sxx, log_likelihood, weight_sum = (blend(a, b) for a, b in zip(running[:5], batch[:5]))
        running = SufficientStats(nk, sx, sxx, log_likelihood, weight_sum, shift)
    new = params_from_statistics(running, reg, ct)
    failed = ~params_ok(new)
    _fit.raise_failures(xp, failed, xp.zeros_like(failed), reg, batched, retried=False)
    bound = batch.log_likelihood
    if not first_call:  # a problem without weight in this batch keeps its last bound (nothing was measured)
        bound = xp.where(batch.weight_sum > 0, bound, _fit.as_batch(xp, estimator.lower_bound_, batched))
    _store(estimator, xp, new, reg, running, t + 1, bound, ct, batched, dtype)


def _store(estimator, xp, params, reg, running, steps, log_likelihood, ct, batched, dtype) -> None:
    """sklearn's fitted attributes (one step: one iteration, not converged), the running statistics and the
    step count."""
    B = reg.shape[0]
    result = EMResult(
        params, log_likelihood, xp.ones(B, dtype=xp.int64), xp.zeros(B, dtype=bool), xp.zeros(B, dtype=bool),
        log_likelihood[:, None], reg,
    )  # fmt: skip
    attrs = _fit.fitted_attributes(xp, ct, result, batched, dtype)
    _fit.store(estimator, attrs | {"sufficient_stats_": running, "n_steps_": steps})
