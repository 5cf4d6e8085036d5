"""Gaussian mixtures fitted by EM, many independent problems at once: the sklearn adapter.

:class:`GaussianMixture` has sklearn's parameters, methods, attributes and
messages; with ``X`` of shape (B, N, D) it fits B independent problems in one
call. This module holds what is sklearn's: parameter and input validation,
the starts (user parameters, ``n_init``, warm starts), the warnings, the
fitted attributes, and predict/score/sample. The rest lives below it:

- :mod:`gpuvec.mixture._em`: the functional core, re-exported here:
  :func:`estimate_log_prob`, :func:`e_step`, :func:`m_step`, the pass split
  into mergeable :class:`SufficientStats` (:func:`sufficient_statistics`,
  :func:`merge_statistics`) and :func:`params_from_statistics`, their
  composition :func:`em_pass`, and the batched EM loop :func:`fit_em`
  (returning :class:`EMResult`).
- :mod:`gpuvec.mixture._covariance`: one table row per covariance type
  (``COVARIANCE_TYPES``) and the formulas that differ by type.
- :mod:`gpuvec.mixture._starts`: the starting responsibilities (k-means++,
  kmeans, random, random_from_data).

Parameterisation is sklearn's: precision Cholesky factors, log-sum-exp, and
``reg_covar`` added to the covariance diagonals. Sums over samples run in
float64 whatever the input dtype.
"""

from __future__ import annotations

import inspect
import math
import types
from typing import Any

import numpy as np

from gpuvec import random as gv_random
from gpuvec._core.checks import check_choice, check_int, check_real, warn_at_caller
from gpuvec._core.dispatch import chunk_elements
from gpuvec._core.dlpack import dlpack_io
from gpuvec._core.namespace import get_namespace, is_cupy_namespace, is_dask_array
from gpuvec._core.threads import blas_limited
from gpuvec.mixture import _dispatch
from gpuvec.mixture._covariance import (
    COVARIANCE_TYPES,
    CovarianceType,
    cholesky_from_precisions,
    covariances_from_cholesky,
    precisions_from_cholesky,
)
from gpuvec.mixture._em import (
    REG_COVAR_TRIES,
    EMResult,
    MixtureParams,
    SufficientStats,
    e_step,
    e_step_chunks,
    em_pass,
    estimate_log_prob,
    fit_em,
    interleave_starts,
    label_statistics,
    m_step,
    merge_statistics,
    params_from_statistics,
    params_ok,
    regularisation_retry,
    resp_statistics,
    sufficient_statistics,
)
from gpuvec.mixture._starts import INIT_PARAMS, LABEL_METHODS, initial_labels, initial_resp

__all__ = [
    "COVARIANCE_TYPES",
    "INIT_PARAMS",
    "ConvergenceWarning",
    "CovarianceType",
    "EMResult",
    "GaussianMixture",
    "MixtureParams",
    "SufficientStats",
    "e_step",
    "em_pass",
    "estimate_log_prob",
    "fit_em",
    "m_step",
    "merge_statistics",
    "params_from_statistics",
    "sufficient_statistics",
]

_convergence_warning: type[UserWarning] | None = None


def _convergence_warning_class() -> type[UserWarning]:
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
                "__module__": __name__,
                "__doc__": "EM stopped at max_iter before the lower bound settled: a subclass of "
                "sklearn.exceptions.ConvergenceWarning where sklearn imports, else of UserWarning.",
            },
        )
    return _convergence_warning


def __getattr__(name: str) -> Any:
    if name == "ConvergenceWarning":
        return _convergence_warning_class()
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)


# --------------------------------------------------------------------------- estimator


class GaussianMixture:
    """Gaussian mixture fitted by EM; one problem (N, D) or a batch (B, N, D) at once.

    sklearn's parameters, methods and attributes (``sklearn.mixture.GaussianMixture``),
    on numpy or cupy data. With ``X`` of shape (B, N, D), every fitted attribute
    gains a leading B axis and the B problems are fitted independently in one
    call; problems that have converged leave the active set.

    Memory and threads on the CPU: float32 and float64 X are used without a
    copy, and every pass over X (the start, EM, the final E-step, prediction)
    runs in chunks, so a fit needs little beyond X itself. For every
    covariance type the E-step and the M-step's sums run in one compiled
    loop (numba; ``GPUVEC_JIT=0`` selects the numpy reference) on every core
    this process may use, or ``GPUVEC_NUM_THREADS`` (else ``OMP_NUM_THREADS``)
    threads. Called from any thread but the main one (a thread pool, a dask
    worker thread), a fit runs on that thread alone and limits BLAS to one
    thread while it runs (threadpoolctl), so a pool of N threads uses N cores.

    Dask arrays (numpy or cupy chunks, extra ``gpuvec[dask]``) are never
    computed into memory (see :mod:`gpuvec.mixture._dask`). A (B, N, D) X
    chunked along B only: each block of problems is fitted where it lives;
    warnings and errors name problems by their global index. An (N, D) X
    chunked along N (or a (B, N, D) X with N split): one pass over the chunks
    per EM iteration (their sufficient statistics tree-summed), the M-step on
    the client; from the same start it gives the in-memory result up to
    summation order. A random init runs on a uniform sample of at most 100,000
    rows per problem gathered to the client (all rows when N is
    smaller: then the in-memory start), so with a large N it differs from the
    in-memory fit's for the same ``random_state``. Fitted parameters are numpy
    on the client; predict, predict_proba and score_samples return lazy dask
    arrays; score, bic and aic compute. gpuvec uses dask's current scheduler or
    the active ``distributed.Client`` and never starts a cluster.

    Parameters
    ----------
    n_components : int, default 1
        The number of mixture components K.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default 'full'
    tol : float, default 1e-3
        Convergence threshold on the change of the lower bound.
    reg_covar : float, default 1e-6
        Added to the covariance diagonals. Where it is > 0, a problem whose
        covariance still fails Cholesky gets ten times more, up to six times
        (for the start, and in any EM iteration), with a UserWarning naming the
        problems and the new value (see ``reg_covar_``). With ``reg_covar=0``
        there is no retry: a failing covariance raises ValueError, as in sklearn.
    max_iter : int, default 100
        The most EM iterations per start.
    n_init : int, default 1
        Starts per problem, run one after another on the same X (no copy of
        X per start; each start is batched over the B problems); the best
        lower bound wins. The first start of each problem is the one ``n_init=1`` makes
        with the same ``random_state``, so more starts never end worse (up to
        rounding). A start that failed loses to any that did not; a problem
        raises only if all its starts failed.
    init_params : {'k-means++', 'kmeans', 'random', 'random_from_data'}, default 'k-means++'
        'k-means++' seeds centres by D^2 sampling and assigns every sample to
        its nearest centre; 'kmeans' adds 10 Lloyd iterations. (sklearn's
        default is 'kmeans'; its 'k-means++' gives each centre only its own seed
        sample.)
    weights_init : array, shape (K,) or (B, K), optional
        Starting weights (default: from ``init_params``).
    means_init : array, shape (K, D) or (B, K, D), optional
        Starting means (default: from ``init_params``).
    precisions_init : array, optional
        Shaped by covariance_type as sklearn's, with an optional leading B axis.
        The three initial parameters (small: no N axis) may be numpy arrays or
        lists with cupy X, as from a previous sklearn fit: they are copied to X's
        device. ``sample_weight`` (one value per sample) must live where X lives.
    random_state : None, int or Generator
        Seed for :func:`gpuvec.random.default_rng` on the data's backend.
    warm_start : bool, default False
        Start from the previous fit's parameters *and lower bound* (as sklearn),
        so that fits with a small ``max_iter`` can detect convergence:
        ``while not gm.converged_: gm.fit(X)`` ends (batched: ``.all()``).
    verbose : int, default 0
        1: print a line every ``verbose_interval`` iterations; 2: with timing.
    verbose_interval : int, default 10
        Iterations between the lines that ``verbose`` prints.

    Attributes
    ----------
    weights_ : array, shape ([B,] K)
    means_ : array, shape ([B,] K, D)
    covariances_, precisions_, precisions_cholesky_ : array
        Shaped by covariance_type, with the leading B axis for batches.
        ``precisions_cholesky_`` is upper triangular for 'full' and 'tied',
        as sklearn's. All five are float32 for float32 X (as sklearn), though
        EM runs in float64.
    converged_ : bool or array, shape (B,)
    n_iter_ : int or array, shape (B,)
    lower_bound_ : float or array, shape (B,)
    lower_bounds_ : list of float, or array, shape (B, n_iter)
        The lower bound after each iteration (NaN-padded past a problem's ``n_iter_``).
    reg_covar_ : float or array, shape (B,)
        The regularisation each problem ended with.

    Raises
    ------
    ValueError
        From fit, for a problem whose covariance cannot be made positive
        definite (with ``reg_covar=0``, or even after raising it), or whose lower
        bound is NaN (the data's scale overflows float64): the message names the
        problems of a batch. sklearn raises for the same failures.

    Examples
    --------
    The seed's data, fitted without the seed's fixed-point start:

    >>> import numpy as np, gpuvec
    >>> rng = np.random.default_rng(1)
    >>> X = np.concatenate([rng.normal(0, 1, (1000, 2)), rng.normal(5, 1, (1000, 2))])
    >>> gm = gpuvec.GaussianMixture(2, random_state=0).fit(X)
    >>> bool(np.allclose(np.sort(gm.means_[:, 0]), [0, 5], atol=0.1))
    True
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: CovarianceType = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "k-means++",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ------------------------------------------------------------------ sklearn protocol

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted(p for p in inspect.signature(cls.__init__).parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as sklearn's ``BaseEstimator.get_params``.

        Parameters
        ----------
        deep : bool, default True
            Accepted for sklearn's API; gpuvec's estimator has no sub-estimators.

        Returns
        -------
        params : dict of str to object
            Each constructor parameter's name and current value.
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> GaussianMixture:
        """Set constructor parameters, as sklearn's ``BaseEstimator.set_params``.

        Parameters
        ----------
        **params : dict
            Constructor parameters by name; an unknown name is a ValueError.

        Returns
        -------
        self : GaussianMixture
            The estimator, updated.
        """
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                msg = (
                    f"Invalid parameter {name!r} for estimator {type(self).__name__}. Valid parameters are: {valid!r}."
                )
                raise ValueError(msg)
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self):
        """sklearn (>= 1.6) estimator tags: an unsupervised density estimator."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(
            estimator_type="density_estimator",
            target_tags=TargetTags(required=False),
            input_tags=InputTags(allow_nan=False),
        )

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [
            f"{k}={v!r}"
            for k, v in self.get_params().items()
            if not (v is defaults[k] or (np.isscalar(v) and v == defaults[k]))
        ]
        return f"GaussianMixture({', '.join(changed)})"

    # ------------------------------------------------------------------ validation

    def _check_parameters(self) -> None:
        check_int("n_components", self.n_components, minimum=1)
        check_choice("covariance_type", self.covariance_type, tuple(COVARIANCE_TYPES))
        check_choice("init_params", self.init_params, INIT_PARAMS)
        if check_real("tol", self.tol) < 0:
            raise ValueError(f"tol must be >= 0; got {self.tol}")
        if check_real("reg_covar", self.reg_covar) < 0:
            raise ValueError(f"reg_covar must be >= 0; got {self.reg_covar}")
        check_int("max_iter", self.max_iter, minimum=0)
        check_int("n_init", self.n_init, minimum=1)
        check_int("verbose", self.verbose, minimum=0)
        if not isinstance(self.warm_start, (bool, np.bool_)):
            msg = f"warm_start must be a bool; got {self.warm_start!r} of type {type(self.warm_start).__name__}"
            raise TypeError(msg)
        check_int("verbose_interval", self.verbose_interval, minimum=1)

    def _validate_X(self, X: Any, *, fitting: bool) -> tuple[types.ModuleType, Any, bool, Any]:
        """(xp, X as a (B, N, D) float32 or float64 array (X itself where it is one), whether batched, its dtype)."""
        if type(X).__module__.split(".sparse")[0] in ("scipy", "cupyx.scipy") and hasattr(X, "toarray"):
            raise TypeError(
                "Sparse data was passed for X, but dense data is required. Use X.toarray() to convert to a dense array."
            )
        xp = get_namespace(X)
        try:
            X = xp.asarray(X)
        except ValueError as exc:  # ragged nested lists
            raise ValueError(f"X must be a rectangular (N, D) or (B, N, D) array; {exc}") from None
        if X.dtype.kind == "c":
            raise ValueError("Complex data not supported: X must be real")
        if X.dtype.kind == "O":
            X = X.astype(xp.float64)  # raises numpy's own error for non-numbers
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must be numeric; got dtype {X.dtype}")
        if X.ndim == 1:
            raise ValueError(
                "Expected 2D array (n_samples, n_features) or 3D (batch, n_samples, n_features), "
                f"got 1D array of shape {X.shape}. Reshape your data either using array.reshape(-1, 1) "
                "if your data has a single feature or array.reshape(1, -1) if it contains a single sample."
            )
        if X.ndim not in (2, 3):
            raise ValueError(
                f"X must have shape (n_samples, n_features) or (batch, n_samples, n_features); got shape {X.shape}"
            )
        for axis, what in ((-2, "sample(s)"), (-1, "feature(s)"), (0, "problem(s)")):
            if X.shape[axis] == 0:
                raise ValueError(f"Found array with 0 {what} (shape={X.shape}) while a minimum of 1 is required.")
        batched = X.ndim == 3
        dtype = xp.float32 if X.dtype == xp.float32 else xp.float64  # as sklearn's validate_data
        # float32 and float64 X are used as they are (no copy: passes over X run in chunks and sum in
        # float64); other dtypes become float64.
        X = (X if batched else X[None]).astype(dtype, copy=False)
        if not _all_finite(xp, X):  # once, up front
            kind = "NaN" if bool(xp.isnan(X).any()) else f"infinity or a value too large for dtype('{X.dtype}')"
            raise ValueError(f"Input X contains {kind}.")
        if fitting:
            if X.shape[1] < self.n_components:
                raise ValueError(
                    "Expected n_samples >= n_components but got "
                    f"n_components = {self.n_components}, n_samples = {X.shape[1]}"
                )
        else:
            self._check_fitted()
            if X.shape[2] != self.means_.shape[-1]:
                raise ValueError(
                    f"X has {X.shape[2]} features, but GaussianMixture is expecting "
                    f"{self.means_.shape[-1]} features as input."
                )
            if batched != self._batched or (batched and X.shape[0] != self._B):
                expected = f"(B={self._B}, N, D)" if self._batched else "(N, D)"
                raise ValueError(f"X must have shape {expected} as in fit; got shape {X.shape}")
        return xp, X, batched, dtype

    def _rng(self, xp):
        """A generator on the data's backend from random_state (a fresh one per call, as sklearn's)."""
        try:
            return gv_random.default_rng(self.random_state, backend="cupy" if is_cupy_namespace(xp) else "numpy")
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"random_state is not a valid seed: {exc}") from None

    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            msg = (
                f"This {type(self).__name__} instance is not fitted yet. "
                "Call 'fit' with appropriate arguments before using this estimator."
            )
            raise _not_fitted_error()(msg)

    @staticmethod
    def _batched_init(xp, value, name, label, B, tail, batched):
        """A user's initial parameter, shaped ``tail`` or ``(B,) + tail``, as a (B,) + tail array (read-only use).

        ``name`` is the constructor parameter, ``label`` sklearn's word for it in its messages.
        """
        if value is None:
            return None
        try:
            value = xp.asarray(value, dtype=xp.float64)
        except (TypeError, ValueError) as exc:
            msg = f"{name} must be an array of real numbers; got {type(value).__name__} ({exc})"
            raise ValueError(msg) from None
        shape = tuple(value.shape)
        if shape != tail and shape != (B,) + tail:
            batch = f", or {(B,) + tail} for a batch" if batched else ""
            msg = f"The parameter '{label}' should have the shape of {tail}{batch}, but got {shape}"
            raise ValueError(msg)
        finite = xp.isfinite(value)
        if not bool(finite.all()):
            where = xp.nonzero(~finite.reshape(B, -1).all(-1))[0] if shape != tail else None
            problems = "" if where is None else f" (problems {_first(where)})"
            msg = f"{name} must be finite: the parameter '{label}' contains NaN or infinity{problems}"
            raise ValueError(msg)
        return xp.broadcast_to(value, (B,) + tail)

    def _user_init(self, xp, B, K, D, batched):
        ct = self.covariance_type
        prec_tail = COVARIANCE_TYPES[ct].precision_shape(K, D)
        w = self._batched_init(xp, self.weights_init, "weights_init", "weights", B, (K,), batched)
        m = self._batched_init(xp, self.means_init, "means_init", "means", B, (K, D), batched)
        p = self._batched_init(xp, self.precisions_init, "precisions_init", f"{ct} precision", B, prec_tail, batched)
        if w is not None:
            if bool((w < 0).any()) or bool((w > 1).any()):
                lo, hi = float(w.min()), float(w.max())
                # sklearn's words (its test matches them), which label the minimum "max" and the maximum "min".
                msg = (
                    f"The parameter 'weights' should be in the range [0, 1], but got max value {lo:.5f}, "
                    f"min value {hi:.5f} (that is, the smallest weight is {lo:.5f} and the largest {hi:.5f})"
                )
                raise ValueError(msg)
            total = w.sum(-1)
            if not bool((xp.abs(1.0 - total) < 1e-6).all()):
                got = _g_list(total) if batched else f"{float(total[0]):.5f}"
                raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = {got}")
        if p is not None:
            full_matrix = COVARIANCE_TYPES[ct].full_matrix
            symmetric = not full_matrix or bool((xp.abs(p - xp.swapaxes(p, -1, -2)) <= 1e-10 * xp.abs(p).max()).all())
            p, ok = cholesky_from_precisions(xp, p, ct)
            if not (symmetric and bool(ok.all())):
                raise ValueError(
                    f"'{ct} precision' should be " + ("symmetric, positive-definite" if full_matrix else "positive")
                )
        return w, m, p

    # ------------------------------------------------------------------ fitting

    @dlpack_io
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GaussianMixture:
        """Fit by EM; X of shape (N, D), or (B, N, D) for B independent problems.

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            The samples: one problem, or B problems of N samples each.
        y : ignored
            Not used; present for sklearn's API.
        sample_weight : array, shape (N,) or (B, N), optional
            Non-negative weights; zero-weight rows let problems of different
            sizes share a batch.

        Returns
        -------
        self : GaussianMixture
            The fitted estimator.
        """
        if _is_dask(X, sample_weight):
            from gpuvec.mixture import _dask as _dask_mixture

            return _dask_mixture.fit(self, X, sample_weight)
        self._fit_only = True  # fit_predict skips its final E-step (a pass over X, N labels): nothing to return
        try:
            self.fit_predict(X, y, sample_weight=sample_weight)
        finally:
            del self._fit_only
        return self

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")  # failures are reported below instead
    @dlpack_io
    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit, then return the component labels of X, shape (N,) or (B, N).

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            The samples, as for :meth:`fit`.
        y : ignored
            Not used; present for sklearn's API.
        sample_weight : array, shape (N,) or (B, N), optional
            As for :meth:`fit`.

        Returns
        -------
        labels : array of int, shape (N,) or (B, N)
            The most likely component of each sample under the fitted model.
        """
        if _is_dask(X, sample_weight):
            from gpuvec.mixture import _dask as _dask_mixture

            return _dask_mixture.fit_predict(self, X, sample_weight)
        self._check_parameters()
        xp, X, batched, dtype = self._validate_X(X, fitting=True)
        B, N, D = X.shape
        sw = self._validate_sample_weight(xp, sample_weight, B, N, batched)
        self._rng(xp)  # a bad random_state is refused up front, even where no start is drawn
        w_init, m_init, p_init = self._user_init(xp, B, self.n_components, D, batched)
        warm = self.warm_start and hasattr(self, "converged_") and self._B == B and self.means_.shape[-1] == D
        n_init = 1 if warm else self.n_init
        # Start i of problem b is problem b * n_init + i of the parameters and results; each start runs
        # EM on X itself (no copy of X per start).
        if warm:
            attrs = (self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)
            params = MixtureParams(*(self._batch_attr(xp, a) for a in attrs))
            # Go on with a reg_covar the previous fit had to raise (unless the retry is off: reg_covar=0).
            reg_before = self._batch_attr(xp, xp.asarray(self.reg_covar_, dtype=xp.float64))
            reg = xp.maximum(reg_before, float(self.reg_covar)) if self.reg_covar > 0 else xp.zeros(B)
            previous = self._batch_attr(xp, xp.asarray(self.lower_bound_, dtype=xp.float64))
            start_reg = reg
        else:
            start_reg = xp.full(B * n_init, float(self.reg_covar))
            params, reg = self._starts(xp, X, sw, self._rng(xp), n_init, w_init, m_init, p_init)
            self._warn_identical_components(xp, params, n_init)
            previous = None

        start_failed = ~params_ok(params)
        start_overflow = ~xp.isfinite(params.covariances.reshape(params.covariances.shape[0], -1)).all(-1)
        runs = [
            fit_em(
                X,
                MixtureParams(*(a[i::n_init] for a in params)) if n_init > 1 else params,
                reg[i::n_init] if n_init > 1 else reg,
                self.covariance_type,
                sw,
                lower_bound=previous,
                **self._em_options(),
            )
            for i in range(n_init)
        ]
        result = runs[0] if n_init == 1 else _interleave_results(xp, runs)
        self._finish_fit(xp, result, start_failed, start_overflow, start_reg, n_init, batched, B, dtype)
        if getattr(self, "_fit_only", False):  # called by fit: the final E-step only serves fit_predict
            return None
        # From the stored attributes (float32 for float32 X), so that fit_predict(X) == fit(X).predict(X).
        labels = self._e_step_blocks(xp, X, "labels", dtype)
        return labels if batched else labels[0]

    def _em_options(self):
        """The estimator's settings of the EM loop (fit_em and the dask loop alike)."""
        return dict(tol=self.tol, max_iter=self.max_iter, verbose=self.verbose, verbose_interval=self.verbose_interval)

    def _finish_fit(
        self, xp, result, start_failed, start_overflow, start_reg, n_init, batched, B, dtype, start_errors=None
    ):
        """After EM (in memory or on dask): the best of each problem's starts, failures raised, warnings, the
        fitted attributes stored. ``start_errors[i]``: an error to raise if start i of a lone problem wins."""
        params, lower_bound, n_iter, converged, failed, history, reg = result
        # A start whose covariance failed (reg_covar=0, or overflow) fails at once; overflow is told apart
        # by non-finite covariances at the start, or by a NaN lower bound from finite parameters.
        overflow = xp.where(start_failed, start_overflow, failed & ~xp.isfinite(lower_bound))
        failed = failed | start_failed | ~params_ok(params)
        if n_init > 1:
            score = xp.where(failed | xp.isnan(lower_bound), -xp.inf, lower_bound).reshape(B, n_init)
            best = xp.argmax(score, axis=1) + xp.arange(B) * n_init  # ties: the first start, n_init=1's
            if start_errors is not None and B == 1 and start_errors[int(best[0])] is not None:
                raise start_errors[int(best[0])]
            params = MixtureParams(*(a[best] for a in params))
            lower_bound, n_iter, converged, failed, overflow, history, reg, start_reg = (
                a[best] for a in (lower_bound, n_iter, converged, failed, overflow, history, reg, start_reg)
            )
        self._raise_failures(xp, failed, overflow, reg, batched)
        self._warn_regularisation(xp, reg, start_reg, batched)
        if bool((~converged).any()) and self.max_iter > 0:
            where = f" (problems {_first(xp.nonzero(~converged)[0])})" if batched else ""
            warn_at_caller(
                f"Best performing initialization did not converge{where}. Try different init parameters, "
                "or increase max_iter, tol, or check for degenerate data.",
                _convergence_warning_class(),
            )
        self._store(xp, params, lower_bound, n_iter, converged, history, reg, batched, B, dtype)

    def _starts(self, xp, X, sw, rng, n_init, w_init, m_init, p_init):
        """Starting parameters and reg_covar of the B * n_init starts (start i of problem b at b * n_init + i)."""
        B, N, _ = X.shape
        K, ct = self.n_components, self.covariance_type
        rep = (lambda a: xp.repeat(a, n_init, axis=0)) if n_init > 1 else (lambda a: a)
        reg = xp.full(B * n_init, float(self.reg_covar))
        if w_init is not None and m_init is not None and p_init is not None:
            # A complete explicit start: EM's first E-step needs nothing else.
            P = rep(p_init)
            return MixtureParams(rep(w_init), rep(m_init), covariances_from_cholesky(xp, P, ct), P), reg
        # One draw over the B problems per start, in order: start 0 draws what n_init=1 draws. Each
        # start's statistics come from X itself.
        stats = []
        for _ in range(n_init):
            if self.init_params in LABEL_METHODS:  # one label per sample: the one-hot start is never built
                labels = initial_labels(xp, X, K, self.init_params, rng, sw)
                stats.append(label_statistics(X, labels, K, ct, sw))
            else:
                resp = initial_resp(xp, X, K, self.init_params, rng, sw)
                stats.append(resp_statistics(X, _safe_log(xp, resp), ct, sw))
        stats = stats[0] if n_init == 1 else SufficientStats(*(interleave_starts(xp, parts) for parts in zip(*stats)))

        def step(r):  # the first M-step, redone from the same statistics by the retry
            return params_from_statistics(stats, r, ct)

        params, reg, _ = regularisation_retry(step, step(reg), reg, REG_COVAR_TRIES)
        params = params._replace(
            weights=params.weights if w_init is None else rep(w_init),
            means=params.means if m_init is None else rep(m_init),
            precisions_cholesky=params.precisions_cholesky if p_init is None else rep(p_init),
        )
        return params, reg

    def _validate_sample_weight(self, xp, sample_weight, B, N, batched):
        if sample_weight is None:
            return None
        if type(sample_weight).__module__.split(".sparse")[0] in ("scipy", "cupyx.scipy"):
            raise TypeError("sample_weight must be a dense array; got a sparse matrix (use .toarray())")
        get_namespace(xp.zeros(0), sample_weight)  # TypeError for numpy with cupy: no silent copy
        sw = xp.asarray(sample_weight)
        if sw.dtype.kind not in "biuf":
            raise TypeError(f"sample_weight must be a real numeric array; got dtype {sw.dtype}")
        expected = f"(n_samples,) = ({N},)" + (f" or (B, n_samples) = ({B}, {N})" if batched else "")
        if tuple(sw.shape) not in ((N,), (B, N)) or (not batched and sw.ndim != 1):
            raise ValueError(f"sample_weight must have shape {expected} to match X; got shape {tuple(sw.shape)}")
        sw = xp.broadcast_to(sw.astype(xp.float64), (B, N))
        if not bool(xp.isfinite(sw).all()) or bool((sw < 0).any()):
            raise ValueError("sample_weight must be finite and non-negative")
        if bool((sw.sum(1) == 0).any()):
            raise ValueError("sample_weight is zero for every sample of a problem: sample weights must not all be zero")
        if bool(((sw > 0).sum(1) < self.n_components).any()):
            raise ValueError(
                "Expected n_samples >= n_components among samples of positive sample_weight in every problem, "
                f"n_components = {self.n_components}"
            )
        return sw

    def _warn_identical_components(self, xp, params, n_init):
        K = self.n_components
        if K < 2:
            return
        m = params.means
        same_mean = (m[:, :, None, :] == m[:, None, :, :]).all(-1)
        P = params.precisions_cholesky
        if self.covariance_type != "tied":
            Pf = P.reshape(P.shape[0], K, -1)
            same_prec = (Pf[:, :, None, :] == Pf[:, None, :, :]).all(-1)
        else:
            same_prec = True
        pair = same_mean & same_prec & ~xp.eye(K, dtype=bool)
        bad = pair.any(axis=(1, 2))
        if bool(bad.any()):
            problems = sorted({int(i) // n_init for i in xp.nonzero(bad)[0]})
            warn_at_caller(
                f"GaussianMixture: problems {_first(problems)} start with identical components "
                "(the same means and precisions): that start is a fixed point of EM, which cannot separate them. "
                "Use distinct means_init, or init_params='k-means++'.",
                UserWarning,
            )

    def _raise_failures(self, xp, failed, overflow, reg, batched):
        """sklearn raises where EM cannot go on; so does gpuvec, naming the problems of a batch."""
        if not bool(failed.any()):
            return
        parts = []
        ill = failed & ~overflow
        if bool(ill.any()):
            where = f" in problems {_first(xp.nonzero(ill)[0])}" if batched else ""
            raised = "" if bool((reg[ill] == 0).all()) else f" (reg_covar raised to {_g_list(reg[ill])})"
            parts.append(
                "Fitting the mixture model failed because some components have ill-defined empirical covariance "
                f"(for instance caused by singleton or collapsed samples){where}{raised}."
            )
        if bool(overflow.any()):
            where = f" in problems {_first(xp.nonzero(overflow)[0])}" if batched else ""
            parts.append(
                f"Fitting the mixture model failed because the covariances or the log-likelihood overflow{where}: "
                "the data's scale is too large for float64 arithmetic (samples of zero sample_weight too, which "
                "must be of a modest scale, e.g. zeros)."
            )
        parts.append("Try to decrease the number of components, increase reg_covar, or scale the input data.")
        raise ValueError(" ".join(parts))

    def _warn_regularisation(self, xp, reg, start_reg, batched):
        changed = reg != start_reg
        if not bool(changed.any()):
            return
        if batched:
            problems = _first(xp.nonzero(changed)[0])
            what = f"from {_g_list(start_reg[changed])} to {_g_list(reg[changed])} in problems {problems}"
        else:
            what = f"from {float(start_reg[0]):g} to {float(reg[0]):g}"
        warn_at_caller(
            f"GaussianMixture: reg_covar raised {what}, because a covariance was not positive definite "
            "(reg_covar_ holds the value used). Pass a larger reg_covar, or scale the input data, to fit without "
            "the retry; reg_covar=0 turns the retry off (a failure then raises).",
            UserWarning,
        )

    def _store(self, xp, params, lower_bound, n_iter, converged, history, reg, batched, B, dtype):
        ct = self.covariance_type
        P = params.precisions_cholesky
        one = (lambda a: a.astype(dtype, copy=False)) if batched else (lambda a: a[0].astype(dtype, copy=False))
        self.weights_ = one(params.weights)
        self.means_ = one(params.means)
        self.covariances_ = one(params.covariances)
        self.precisions_cholesky_ = one(P)
        self.precisions_ = one(precisions_from_cholesky(xp, P, ct))
        if batched:
            self.converged_, self.n_iter_, self.reg_covar_ = converged, n_iter, reg
            self.lower_bound_, self.lower_bounds_ = lower_bound, history
        else:
            self.converged_ = bool(converged[0])
            self.n_iter_ = int(n_iter[0])
            self.lower_bound_ = float(lower_bound[0])
            self.lower_bounds_ = [float(v) for v in history[0, : self.n_iter_]]
            self.reg_covar_ = float(reg[0])
        self.n_features_in_ = params.means.shape[-1]
        self._batched, self._B = batched, B

    def _batch_attr(self, xp, a):
        return a if self._batched else a[None]

    # ------------------------------------------------------------------ prediction

    def _params(self, xp):
        return tuple(self._batch_attr(xp, a) for a in (self.weights_, self.means_, self.precisions_cholesky_))

    def _e_step_blocks(self, xp, X, what, dtype):
        """'labels' (B, N), 'proba' (B, N, K) or 'log_norm' (B, N) of a validated X, block by block (cache-sized
        temporaries, see :func:`~gpuvec.mixture._em.e_step_chunks`); 'proba' and 'log_norm' in ``dtype``."""
        B, N, _ = X.shape
        if what == "labels":
            out = xp.empty((B, N), dtype=xp.int64)
        else:
            out = xp.empty((B, N, self.n_components) if what == "proba" else (B, N), dtype=dtype)
        D = X.shape[2]
        compiled = _dispatch.compiled(xp, B * N * self.n_components * D * D)
        if compiled is not None:  # the fused loop (see gpuvec.mixture._dispatch)
            with np.errstate(divide="ignore", invalid="ignore"), blas_limited():
                return compiled.e_step_outputs(X, *self._params(xp), self.covariance_type, what, out)
        with np.errstate(divide="ignore"), blas_limited():
            for bs, s, log_resp, log_norm in e_step_chunks(X, *self._params(xp), self.covariance_type):
                if what == "labels":
                    out[bs, s] = log_resp.argmax(-1)
                elif what == "proba":
                    out[bs, s] = xp.exp(log_resp)
                else:
                    out[bs, s] = log_norm
        return out

    def _estimate(self, X, what):
        """(:meth:`_e_step_blocks` of X without the batch axis for (N, D) input, whether batched, N)."""
        xp, X, batched, dtype = self._validate_X(X, fitting=False)
        out = self._e_step_blocks(xp, X, what, dtype)
        return (out if batched else out[0]), batched, X.shape[1]

    @dlpack_io
    def score_samples(self, X: Any) -> Any:
        """Log-likelihood of each sample, shape (N,) or (B, N) (float32 for float32 X).

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).

        Returns
        -------
        log_prob : array, shape (N,) or (B, N)
            ``log p(x)`` of each sample under the fitted mixture.
        """
        if _is_dask(X):
            from gpuvec.mixture import _dask as _dask_mixture

            return _dask_mixture.score_samples(self, X)
        return self._estimate(X, "log_norm")[0]

    def _score(self, X):
        """(mean log-likelihood: float or shape (B,), the number of samples N of the validated X).

        As sklearn: the mean of :meth:`score_samples`, in its dtype (float32 for float32 X).
        """
        log_norm, batched, N = self._estimate(X, "log_norm")
        s = log_norm.mean(-1)
        return (s if batched else float(s)), N

    @dlpack_io
    def score(self, X: Any, y: Any = None) -> Any:
        """Mean log-likelihood: a float, or an array of shape (B,) for a batch.

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).
        y : ignored
            Not used; present for sklearn's API.

        Returns
        -------
        score : float or array, shape (B,)
            The mean of :meth:`score_samples` over the samples.
        """
        if _is_dask(X):
            from gpuvec.mixture import _dask as _dask_mixture

            return _dask_mixture.score(self, X)
        return self._score(X)[0]

    @dlpack_io
    def predict(self, X: Any) -> Any:
        """Component labels, shape (N,) or (B, N).

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).

        Returns
        -------
        labels : array of int, shape (N,) or (B, N)
            The most likely component of each sample.
        """
        if _is_dask(X):
            from gpuvec.mixture import _dask as _dask_mixture

            return _dask_mixture.predict(self, X)
        return self._estimate(X, "labels")[0]

    @dlpack_io
    def predict_proba(self, X: Any) -> Any:
        """Responsibilities, shape (N, K) or (B, N, K) (float32 for float32 X).

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).

        Returns
        -------
        resp : array, shape (N, K) or (B, N, K)
            The posterior probability of each component for each sample.
        """
        if _is_dask(X):
            from gpuvec.mixture import _dask as _dask_mixture

            return _dask_mixture.predict_proba(self, X)
        return self._estimate(X, "proba")[0]

    def _n_parameters(self) -> int:
        K, D = self.n_components, self.means_.shape[-1]
        return COVARIANCE_TYPES[self.covariance_type].n_parameters(K, D) + K * D + K - 1

    @dlpack_io
    def bic(self, X: Any) -> Any:
        """Bayesian information criterion (lower is better): float or shape (B,).

        N is the number of samples of the validated X (axis -2), also for nested lists.

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).

        Returns
        -------
        bic : float or array, shape (B,)
            ``-2 N score(X) + n_parameters log(N)``.
        """
        if _is_dask(X):
            from gpuvec.mixture import _dask as _dask_mixture

            return _dask_mixture.bic(self, X)
        score, n = self._score(X)
        return -2 * score * n + self._n_parameters() * math.log(n)

    @dlpack_io
    def aic(self, X: Any) -> Any:
        """Akaike information criterion (lower is better): float or shape (B,).

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).

        Returns
        -------
        aic : float or array, shape (B,)
            ``-2 N score(X) + 2 n_parameters``.
        """
        if _is_dask(X):
            from gpuvec.mixture import _dask as _dask_mixture

            return _dask_mixture.aic(self, X)
        score, n = self._score(X)
        return -2 * score * n + 2 * self._n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[Any, Any]:
        """Draw samples from the fitted mixture (sklearn's semantics).

        Parameters
        ----------
        n_samples : int, default 1
            The number of samples (per problem, for a batch).

        Returns
        -------
        X : array, shape (n_samples, D), or (B, n_samples, D) for a batch
            The samples, grouped by component.
        y : array, shape (n_samples,) or (B, n_samples)
            The component of each sample, sorted.
        """
        self._check_fitted()
        n_samples = check_int("n_samples", n_samples)
        if n_samples < 1:
            msg = f"Invalid value for 'n_samples': {n_samples} . The sampling requires at least one sample."
            raise ValueError(msg)  # sklearn's words
        xp = get_namespace(self.means_)
        rng = self._rng(xp)
        w, m, _ = self._params(xp)
        cov = self._batch_attr(xp, self.covariances_)
        B, K, D = m.shape
        ct = self.covariance_type
        if ct == "tied":
            cov = xp.broadcast_to(cov[:, None], (B, K, D, D))
        elif ct == "diag":
            cov = cov[..., None] * xp.eye(D)
        elif ct == "spherical":
            cov = cov[..., None, None] * xp.eye(D)
        # Component of each sample: the sorted order sklearn returns.
        u = rng.random((B, n_samples))
        labels = xp.sort((u[..., None] > xp.cumsum(w, -1)[:, None, :]).sum(-1), axis=-1)
        labels = xp.minimum(labels, K - 1)
        draws = rng.multivariate_normal(xp.zeros((B, K, D)), cov, size=n_samples)  # (n, B, K, D)
        draws = xp.swapaxes(draws, 0, 1)  # (B, n, K, D)
        bidx, nidx = xp.arange(B)[:, None], xp.arange(n_samples)[None, :]
        X = draws[bidx, nidx, labels] + m[bidx, labels]
        return (X, labels) if self._batched else (X[0], labels[0])


# --------------------------------------------------------------------------- helpers


def _is_dask(*arrays):
    """Whether an argument is a dask array (dask is never imported for the answer)."""
    return any(is_dask_array(a) for a in arrays)


def _interleave_results(xp, runs):
    """The EMResults of n_init starts (one fit_em run each) as one result over B * n_init problems."""
    iters = max(r.history.shape[1] for r in runs)  # histories padded with NaN to the longest run
    runs = [r._replace(history=xp.pad(r.history, ((0, 0), (0, iters - r.history.shape[1])), constant_values=xp.nan))
            for r in runs]  # fmt: skip
    params = MixtureParams(*(interleave_starts(xp, parts) for parts in zip(*(r.params for r in runs))))
    return EMResult(params, *(interleave_starts(xp, parts) for parts in zip(*(r[1:] for r in runs))))


def _safe_log(xp, resp):
    with np.errstate(divide="ignore"):
        return xp.log(resp)


def _all_finite(xp, X):
    """Whether every value of X (B, N, D) is finite, a chunk of samples at a time (no X-sized mask)."""
    B, N, D = X.shape
    step = max(1, chunk_elements(xp, "mixture") // (B * D))
    return all(bool(xp.isfinite(X[:, s : s + step]).all()) for s in range(0, N, step))


def _first(indices, most=10):
    """A short printable list of problem indices."""
    shown = [int(i) for i in indices[:most]]
    return f"{shown}{'...' if len(indices) > most else ''}"


def _g_list(a, most=10):
    """A short printable list of values of any magnitude."""
    shown = ", ".join(f"{float(v):g}" for v in a[:most])
    return f"[{shown}{', ...' if len(a) > most else ''}]"


def _not_fitted_error():
    try:
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    except ImportError:
        return AttributeError
