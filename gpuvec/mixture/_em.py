"""The batched EM loop: the active set, the convergence test, the regularisation retry, the history.

:func:`fit_em` runs EM on in-memory data; :func:`em_loop` is the same loop with
the pass over the data as a function, which the dask fit
(:mod:`gpuvec.mixture._dask`) gives as a tree sum over a cluster. Each
iteration is one pass (:func:`gpuvec.mixture._xp.sufficient_statistics`) and
one M-step (:func:`gpuvec.mixture._xp.params_from_statistics`); :func:`em_pass`
is that composition. Nothing here warns or raises for a failed problem: the
caller reads :class:`EMResult`'s flags (:mod:`gpuvec.mixture._fit`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

from gpuvec._core.namespace import get_namespace
from gpuvec._core.threads import blas_limited
from gpuvec.mixture._covariance import CovarianceType
from gpuvec.mixture._dispatch import keep_grams, keep_rows
from gpuvec.mixture._xp import (
    MixtureParams,
    SufficientStats,
    data_shift,
    params_from_statistics,
    pass_statistics,
    sufficient_statistics,
)

__all__ = [
    "REG_COVAR_TRIES",
    "EMResult",
    "em_loop",
    "em_pass",
    "fit_em",
    "interleave_starts",
    "params_ok",
    "regularisation_retry",
]

REG_COVAR_TRIES = 6  # tenfold reg_covar increases allowed to one M-step (the start's or an iteration's)


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


def _where_batch(xp: Any, mask: Any, new: Any, old: Any) -> Any:
    return xp.where(mask.reshape(mask.shape + (1,) * (new.ndim - 1)), new, old)


def _more_regularisation(xp: Any, reg: Any, bad: Any) -> Any:
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


def interleave_starts(xp: Any, parts: Sequence[Any]) -> Any:
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
    kept = _kept_rows(xp, X, params.means.shape[1], covariance_type)

    def one_pass(pa: MixtureParams, active: Any) -> SufficientStats:
        nonlocal held, Xa, swa, shifta, kept
        if active.shape[0] != held.shape[0]:  # problems left: drop their data once
            keep = xp.isin(held, active)
            Xa, shifta, held = Xa[keep], shifta[keep], active
            swa = None if swa is None else swa[keep]
            kept = _kept_rows(xp, Xa, params.means.shape[1], covariance_type)  # made again by the next pass
        return pass_statistics(Xa, pa, covariance_type, swa, shifta, kept)

    with blas_limited():  # one BLAS thread when called from a thread pool (gpuvec._core.threads)
        return em_loop(
            xp, one_pass, params, reg_covar, covariance_type,
            tol=tol, max_iter=max_iter, verbose=verbose, verbose_interval=verbose_interval, lower_bound=lower_bound,
        )  # fmt: skip


def _kept_rows(xp: Any, X: Any, K: int, covariance_type: str) -> Any:
    """A fit's :class:`gpuvec.mixture._blocked.KeptRows` where :func:`gpuvec.mixture._dispatch.keep_rows` or
    :func:`gpuvec.mixture._dispatch.keep_grams`, else None."""
    B, N, D = X.shape
    rows = keep_rows(xp, B, N, K, D, covariance_type)
    if not rows and not keep_grams(xp, B, N, K, D, covariance_type):
        return None
    from gpuvec.mixture._blocked import KeptRows

    return KeptRows(xp, B, N, D, covariance_type, rows)


def em_loop(
    xp: Any,
    pass_fn: Callable[[MixtureParams, Any], SufficientStats],
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
        def redo(r: Any, stats: SufficientStats = stats) -> MixtureParams:
            return params_from_statistics(stats, r, ct)

        new, rega, bad = regularisation_retry(redo, new, rega, REG_COVAR_TRIES)
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
