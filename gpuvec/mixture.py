"""Gaussian mixtures fitted by EM, many independent problems at once: the sklearn adapter.

:class:`GaussianMixture` has sklearn's parameters, methods, attributes and
messages; with ``X`` of shape (B, N, D) it fits B independent problems in one
call. This module holds what is sklearn's: parameter and input validation,
the starts (user parameters, ``n_init``, warm starts), the warnings, the
fitted attributes, and predict/score/sample. The rest lives below it:

- :mod:`gpuvec._mixture_em`: the functional core, re-exported here:
  :func:`estimate_log_prob`, :func:`e_step`, :func:`m_step`, the pass split
  into mergeable :class:`SufficientStats` (:func:`sufficient_statistics`,
  :func:`merge_statistics`) and :func:`params_from_statistics`, their
  composition :func:`em_pass`, and the batched EM loop :func:`fit_em`
  (returning :class:`EMResult`).
- :mod:`gpuvec._mixture_cov`: one table row per covariance type
  (``COVARIANCE_TYPES``) and the formulas that differ by type.
- :mod:`gpuvec._mixture_init`: the starting responsibilities (k-means++,
  kmeans, random, random_from_data).

Parameterisation is sklearn's: precision Cholesky factors, log-sum-exp, and
``reg_covar`` added to the covariance diagonals. Sums over samples run in
float64 whatever the input dtype.
"""

from __future__ import annotations

import inspect
import math
import types
import warnings
from typing import Any

import numpy as np

from gpuvec import random as gv_random
from gpuvec._backend import get_namespace, is_cupy_namespace
from gpuvec._checks import check_choice, check_int, check_real
from gpuvec._mixture_cov import (
    COVARIANCE_TYPES,
    CovarianceType,
    cholesky_from_precisions,
    covariances_from_cholesky,
    precisions_from_cholesky,
)
from gpuvec._mixture_em import (
    EMResult,
    MixtureParams,
    SufficientStats,
    e_step,
    em_pass,
    estimate_log_prob,
    fit_em,
    m_step,
    merge_statistics,
    params_from_statistics,
    regularisation_retry,
    sufficient_statistics,
)
from gpuvec._mixture_init import INIT_PARAMS, initial_resp

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

_INIT_REG_TRIES = 6  # tenfold reg_covar increases allowed for the starting M-step


class ConvergenceWarning(UserWarning):
    """EM stopped at max_iter before the lower bound settled (sklearn's warning of the same name)."""


# --------------------------------------------------------------------------- estimator


class GaussianMixture:
    """Gaussian mixture fitted by EM; one problem (N, D) or a batch (B, N, D) at once.

    sklearn's parameters, methods and attributes (``sklearn.mixture.GaussianMixture``),
    on numpy or cupy data. With ``X`` of shape (B, N, D), every fitted attribute
    gains a leading B axis and the B problems are fitted independently in one
    call; problems that have converged leave the active set.

    Parameters
    ----------
    n_components : int, default 1
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default 'full'
    tol : float, default 1e-3
        Convergence threshold on the change of the lower bound.
    reg_covar : float, default 1e-6
        Added to the covariance diagonals. A problem whose covariance still
        fails Cholesky gets ten times more, up to six times (see ``reg_covar_``).
    max_iter : int, default 100
    n_init : int, default 1
        Starts per problem, run as one more batch axis; the best lower bound wins.
    init_params : {'k-means++', 'kmeans', 'random', 'random_from_data'}, default 'k-means++'
        'k-means++' seeds centres by D^2 sampling and assigns every sample to
        its nearest centre; 'kmeans' adds 10 Lloyd iterations. (sklearn's
        default is 'kmeans'; its 'k-means++' gives each centre only its own seed
        sample.)
    weights_init : array, shape (K,) or (B, K), optional
    means_init : array, shape (K, D) or (B, K, D), optional
    precisions_init : array, optional
        Shaped by covariance_type as sklearn's, with an optional leading B axis.
    random_state : None, int or Generator
        Seed for :func:`gpuvec.random.default_rng` on the data's backend.
    warm_start : bool, default False
    verbose : int, default 0

    Attributes
    ----------
    weights_ : array, shape ([B,] K)
    means_ : array, shape ([B,] K, D)
    covariances_, precisions_, precisions_cholesky_ : array
        Shaped by covariance_type, with the leading B axis for batches.
    converged_ : bool or array, shape (B,)
    n_iter_ : int or array, shape (B,)
    lower_bound_ : float or array, shape (B,)
    lower_bounds_ : list of float, or array, shape (B, n_iter)
        The lower bound after each iteration (NaN-padded past a problem's n_iter_).
    reg_covar_ : float or array, shape (B,)
        The regularisation each problem ended with.

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

    # ------------------------------------------------------------------ sklearn protocol

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted(p for p in inspect.signature(cls.__init__).parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as sklearn's ``BaseEstimator.get_params``."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> GaussianMixture:
        """Set constructor parameters, as sklearn's ``BaseEstimator.set_params``."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                msg = f"Invalid parameter {name!r} for estimator {type(self).__name__}. Valid parameters are: {valid!r}."
                raise ValueError(msg)
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self):
        """sklearn (>= 1.6) estimator tags: an unsupervised density estimator."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(estimator_type="density_estimator", target_tags=TargetTags(required=False), input_tags=InputTags(allow_nan=False))

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if not (v is defaults[k] or (np.isscalar(v) and v == defaults[k]))]
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

    def _validate_X(self, X: Any, *, fitting: bool) -> tuple[types.ModuleType, Any, bool]:
        if type(X).__module__.split(".sparse")[0] in ("scipy", "cupyx.scipy") and hasattr(X, "toarray"):
            raise TypeError("Sparse data was passed for X, but dense data is required. Use X.toarray() to convert to a dense array.")
        xp = get_namespace(X)
        X = xp.asarray(X)
        if X.dtype.kind == "c":
            raise ValueError("Complex data not supported: X must be real")
        if X.dtype.kind == "O":
            X = X.astype(xp.float64)  # raises numpy's own error for non-numbers
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must be numeric; got dtype {X.dtype}")
        if X.ndim == 1:
            raise ValueError(f"Expected 2D array (n_samples, n_features) or 3D (batch, n_samples, n_features), got 1D array of shape {X.shape}. Reshape your data either using array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) if it contains a single sample.")
        if X.ndim not in (2, 3):
            raise ValueError(f"X must have shape (n_samples, n_features) or (batch, n_samples, n_features); got shape {X.shape}")
        for axis, what in ((-2, "sample(s)"), (-1, "feature(s)"), (0, "problem(s)")):
            if X.shape[axis] == 0:
                raise ValueError(f"Found array with 0 {what} (shape={X.shape}) while a minimum of 1 is required.")
        batched = X.ndim == 3
        X = (X if batched else X[None]).astype(xp.float64)
        if not bool(xp.isfinite(X).all()):  # once, up front
            kind = "NaN" if bool(xp.isnan(X).any()) else "infinity or a value too large for dtype('float64')"
            raise ValueError(f"Input X contains {kind}.")
        if fitting:
            if X.shape[1] < self.n_components:
                raise ValueError(f"Expected n_samples >= n_components but got n_components = {self.n_components}, n_samples = {X.shape[1]}")
        else:
            self._check_fitted()
            if X.shape[2] != self.means_.shape[-1]:
                raise ValueError(f"X has {X.shape[2]} features, but GaussianMixture is expecting {self.means_.shape[-1]} features as input.")
            if batched != self._batched or (batched and X.shape[0] != self._B):
                expected = f"(B={self._B}, N, D)" if self._batched else "(N, D)"
                raise ValueError(f"X must have shape {expected} as in fit; got shape {X.shape}")
        return xp, X, batched

    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            msg = f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments before using this estimator."
            raise _not_fitted_error()(msg)

    @staticmethod
    def _batched_init(xp, value, label, B, tail):
        """A user's initial parameter, shaped ``tail`` or ``(B,) + tail``, as a (B,) + tail array."""
        if value is None:
            return None
        value = xp.asarray(value, dtype=xp.float64)
        if tuple(value.shape) == tail:
            return xp.broadcast_to(value, (B,) + tail)
        if tuple(value.shape) != (B,) + tail:
            msg = f"The parameter '{label}' should have the shape of {tail}, or {(B,) + tail} for a batch, but got {tuple(value.shape)}"
            raise ValueError(msg)
        return value

    def _user_init(self, xp, B, K, D):
        ct = self.covariance_type
        prec_tail = COVARIANCE_TYPES[ct].precision_shape(K, D)
        w = self._batched_init(xp, self.weights_init, "weights", B, (K,))
        m = self._batched_init(xp, self.means_init, "means", B, (K, D))
        p = self._batched_init(xp, self.precisions_init, f"{ct} precision", B, prec_tail)
        if w is not None:
            if bool((w < 0).any()) or bool((w > 1).any()):
                raise ValueError("The parameter 'weights' should be in the range [0, 1]")
            if not bool((xp.abs(1.0 - w.sum(-1)) < 1e-6).all()):
                raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = {_float_list(w.sum(-1))}")
        if p is not None:
            full_matrix = COVARIANCE_TYPES[ct].full_matrix
            symmetric = not full_matrix or bool((xp.abs(p - xp.swapaxes(p, -1, -2)) <= 1e-10 * xp.abs(p).max()).all())
            p, ok = cholesky_from_precisions(xp, p, ct)
            if not (symmetric and bool(ok.all())):
                raise ValueError(f"'{ct} precision' should be " + ("symmetric, positive-definite" if full_matrix else "positive"))
        return w, m, p

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GaussianMixture:
        """Fit by EM; X of shape (N, D), or (B, N, D) for B independent problems.

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
        y : ignored
        sample_weight : array, shape (N,) or (B, N), optional
            Non-negative weights; zero-weight rows let problems of different
            sizes share a batch.

        Returns
        -------
        self : GaussianMixture
        """
        self.fit_predict(X, y, sample_weight=sample_weight)
        return self

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")  # failures are reported as warnings below
    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit, then return the component labels of X, shape (N,) or (B, N)."""
        self._check_parameters()
        xp, X, batched = self._validate_X(X, fitting=True)
        B, N, D = X.shape
        K, n_init = self.n_components, self.n_init
        sw = self._validate_sample_weight(xp, sample_weight, B, N)
        rng = gv_random.default_rng(self.random_state, backend="cupy" if is_cupy_namespace(xp) else "numpy")
        w_init, m_init, p_init = self._user_init(xp, B, K, D)

        warm = self.warm_start and hasattr(self, "means_") and getattr(self, "_B", None) == B and self.means_.shape[-1] == D
        if warm:
            n_init = 1
        S = B * n_init  # every start of every problem is one problem of the batch
        Xs = xp.repeat(X, n_init, axis=0) if n_init > 1 else X
        sws = None if sw is None else (xp.repeat(sw, n_init, axis=0) if n_init > 1 else sw)
        reg = xp.full(S, float(self.reg_covar))

        rep = (lambda a: xp.repeat(a, n_init, axis=0)) if n_init > 1 else (lambda a: a)
        if warm:
            params = MixtureParams(*(self._batch_attr(xp, a) for a in (self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)))
        elif w_init is not None and m_init is not None and p_init is not None:
            # A complete explicit start: EM's first E-step needs nothing else.
            P = rep(p_init)
            params = MixtureParams(rep(w_init), rep(m_init), covariances_from_cholesky(xp, P, self.covariance_type), P)
        else:
            log_resp = _safe_log(xp, initial_resp(xp, Xs, K, self.init_params, rng, sws))
            step = lambda r: m_step(Xs, log_resp, r, self.covariance_type, sws)
            params, reg, _ = regularisation_retry(step, step(reg), reg, _INIT_REG_TRIES)
            params = params._replace(
                weights=params.weights if w_init is None else rep(w_init),
                means=params.means if m_init is None else rep(m_init),
                precisions_cholesky=params.precisions_cholesky if p_init is None else rep(p_init),
            )
        if not warm:
            self._warn_identical_components(xp, params, n_init)

        params, lower_bound, n_iter, converged, failed, history, reg = fit_em(
            Xs, params, reg, self.covariance_type, sws, tol=self.tol, max_iter=self.max_iter, verbose=self.verbose
        )
        if n_init > 1:
            best = xp.argmax(xp.where(xp.isnan(lower_bound), -xp.inf, lower_bound).reshape(B, n_init), axis=1) + xp.arange(B) * n_init
            params = MixtureParams(*(a[best] for a in params))
            lower_bound, n_iter, converged, failed, history, reg = (a[best] for a in (lower_bound, n_iter, converged, failed, history, reg))
        self._warn_failed(xp, failed, batched)
        if bool((~converged & ~failed).any()) and self.max_iter > 0:
            where = f" (problems {_first(xp.nonzero(~converged & ~failed)[0])})" if batched else ""
            warnings.warn(
                f"Best performing initialization did not converge{where}. Try different init parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._store(xp, params, lower_bound, n_iter, converged, history, reg, batched, B)
        log_resp, _ = e_step(X, params.weights, params.means, params.precisions_cholesky, self.covariance_type)
        labels = log_resp.argmax(-1)
        return labels if batched else labels[0]

    def _validate_sample_weight(self, xp, sample_weight, B, N):
        if sample_weight is None:
            return None
        sw = xp.asarray(sample_weight, dtype=xp.float64)
        if sw.ndim == 1:
            sw = xp.broadcast_to(sw, (B, N))
        if sw.shape != (B, N):
            raise ValueError(f"sample_weight must have shape (N,) = ({N},) or (B, N) = ({B}, {N}); got {tuple(sw.shape)}")
        if not bool(xp.isfinite(sw).all()) or bool((sw < 0).any()):
            raise ValueError("sample_weight must be finite and non-negative")
        if bool((sw.sum(1) == 0).any()):
            raise ValueError("sample_weight is zero for every sample of a problem: sample weights must not all be zero")
        if bool(((sw > 0).sum(1) < self.n_components).any()):
            raise ValueError(f"Expected n_samples >= n_components among samples of positive sample_weight in every problem, n_components = {self.n_components}")
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
            warnings.warn(
                f"GaussianMixture: problems {_first(problems)} start with identical components "
                "(the same means and precisions): that start is a fixed point of EM, which cannot separate them. "
                "Use distinct means_init, or init_params='k-means++'.",
                UserWarning,
                stacklevel=4,
            )

    def _warn_failed(self, xp, failed, batched):
        if bool(failed.any()):
            where = f" in problems {_first(xp.nonzero(failed)[0])}" if batched else ""
            warnings.warn(
                "Fitting the mixture model failed because some components have ill-defined empirical covariance "
                f"(for instance caused by singleton or collapsed samples){where}, "
                "even with reg_covar raised; they keep their last parameters (NaN if their start already failed) "
                "and converged_ False. "
                "Try to decrease the number of components, increase reg_covar, or scale the input data.",
                UserWarning,
                stacklevel=4,
            )

    def _store(self, xp, params, lower_bound, n_iter, converged, history, reg, batched, B):
        ct = self.covariance_type
        P = params.precisions_cholesky
        precisions = precisions_from_cholesky(xp, P, ct)
        one = (lambda a: a) if batched else (lambda a: a[0])
        self.weights_ = one(params.weights)
        self.means_ = one(params.means)
        self.covariances_ = one(params.covariances)
        self.precisions_cholesky_ = one(P)
        self.precisions_ = one(precisions)
        if batched:
            self.converged_, self.n_iter_, self.lower_bound_, self.lower_bounds_, self.reg_covar_ = converged, n_iter, lower_bound, history, reg
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

    def _estimate(self, X):
        xp, X, batched = self._validate_X(X, fitting=False)
        w, m, p = self._params(xp)
        log_resp, log_norm = e_step(X, w, m, p, self.covariance_type)
        one = (lambda a: a) if batched else (lambda a: a[0])
        return xp, one(log_resp), one(log_norm)

    def score_samples(self, X: Any) -> Any:
        """Log-likelihood of each sample, shape (N,) or (B, N)."""
        return self._estimate(X)[2]

    def score(self, X: Any, y: Any = None) -> Any:
        """Mean log-likelihood: a float, or an array of shape (B,) for a batch."""
        s = self.score_samples(X).mean(-1)
        return float(s) if s.ndim == 0 else s

    def predict(self, X: Any) -> Any:
        """Component labels, shape (N,) or (B, N)."""
        return self._estimate(X)[1].argmax(-1)

    def predict_proba(self, X: Any) -> Any:
        """Responsibilities, shape (N, K) or (B, N, K)."""
        xp, log_resp, _ = self._estimate(X)
        return xp.exp(log_resp)

    def _n_parameters(self) -> int:
        K, D = self.n_components, self.means_.shape[-1]
        return COVARIANCE_TYPES[self.covariance_type].n_parameters(K, D) + K * D + K - 1

    def bic(self, X: Any) -> Any:
        """Bayesian information criterion (lower is better): float or shape (B,)."""
        n = (X.shape[-2]) if hasattr(X, "shape") else len(X)
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X: Any) -> Any:
        """Akaike information criterion (lower is better): float or shape (B,)."""
        n = (X.shape[-2]) if hasattr(X, "shape") else len(X)
        return -2 * self.score(X) * n + 2 * self._n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[Any, Any]:
        """Draw samples from the fitted mixture (sklearn's semantics).

        Returns
        -------
        X : array, shape (n_samples, D), or (B, n_samples, D) for a batch
        y : array, shape (n_samples,) or (B, n_samples): component labels, sorted
        """
        self._check_fitted()
        n_samples = check_int("n_samples", n_samples, minimum=1)
        xp = get_namespace(self.means_)
        rng = gv_random.default_rng(self.random_state, backend="cupy" if is_cupy_namespace(xp) else "numpy")
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


def _safe_log(xp, resp):
    with np.errstate(divide="ignore"):
        return xp.log(resp)


def _first(indices, most=10):
    """A short printable list of problem indices."""
    shown = [int(i) for i in indices[:most]]
    return f"{shown}{'...' if len(indices) > most else ''}"


def _float_list(a):
    return [round(float(v), 6) for v in a]


def _not_fitted_error():
    try:
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    except ImportError:
        return AttributeError
