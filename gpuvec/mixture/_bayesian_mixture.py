"""BayesianGaussianMixture: sklearn's variational mixture, one problem or a batch of B at once.

The estimator holds sklearn's interface only; the updates are in
:mod:`gpuvec.mixture._variational`, the E-step pass and the starts are
GaussianMixture's (:mod:`gpuvec.mixture._xp`, :mod:`gpuvec.mixture._fit`).
"""

from __future__ import annotations

import types
from typing import Any, Literal

import numpy as np

import gpuvec.mixture._fit as _fit
import gpuvec.mixture._variational as _vi
from gpuvec._core.checks import check_choice, check_int, check_real, warn_at_caller
from gpuvec._core.dlpack import dlpack_io
from gpuvec._core.namespace import get_namespace, is_dask_array
from gpuvec.mixture._covariance import CovarianceType, precisions_from_cholesky
from gpuvec.mixture._estimator import MixtureEstimator
from gpuvec.mixture._starts import InitParams
from gpuvec.mixture._validation import (
    Settings,
    check_fitted,
    check_matches_fit,
    check_same_model,
    first,
    validate_sample_weight,
    validate_X,
)

__all__ = ["BayesianGaussianMixture"]

PriorType = Literal["dirichlet_process", "dirichlet_distribution"]

_PRIORS = ("weight_concentration_prior", "mean_precision_prior", "mean_prior", "degrees_of_freedom_prior")


class BayesianGaussianMixture(MixtureEstimator):
    """Variational Bayesian Gaussian mixture; one problem (N, D) or a batch (B, N, D) at once.

    sklearn's ``BayesianGaussianMixture`` (parameters, defaults, attributes,
    methods and updates): a Dirichlet-process (stick-breaking) or Dirichlet
    distribution prior on the weights, a Gaussian-Wishart prior on each
    component, fitted by variational EM. Components the data do not need get
    weights near zero: fit with more components than you expect. With ``X`` of
    shape (B, N, D) the B problems are fitted independently in one call (each
    stops when it converges), and every fitted attribute gains a leading B axis.
    The E-step and the sums are GaussianMixture's (its compiled CPU loop, its
    cupy path); dask arrays are not taken yet.

    Parameters
    ----------
    n_components : int, default 1
        The most components K; the prior switches off those not needed.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default 'full'
    tol : float, default 1e-3
        Convergence threshold on the change of the lower bound.
    reg_covar : float, default 1e-6
        Added to the diagonals of the data covariances of the M-step.
    max_iter : int, default 100
        The most variational EM iterations per start.
    n_init : int, default 1
        Starts per problem; the best lower bound wins.
    init_params : {'k-means++', 'kmeans', 'random', 'random_from_data'}, default 'kmeans'
        The starting responsibilities (sklearn's default, 'kmeans').
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}
        Default 'dirichlet_process'.
    weight_concentration_prior : float > 0, or array of shape (B,), optional
        Default ``1 / n_components``.
    mean_precision_prior : float > 0, or array of shape (B,), optional
        Default 1.
    mean_prior : array, shape (D,) or (B, D), optional
        Default: the mean of X (of each problem).
    degrees_of_freedom_prior : float > D - 1, or array of shape (B,), optional
        Default D.
    covariance_prior : float or array, optional
        Shaped (D, D) for 'full'/'tied', (D,) for 'diag', a float for
        'spherical', each with an optional leading B axis. Default: the
        empirical covariance of X (ddof=1; its diagonal, or their mean).
    random_state : None, int or Generator
        Seed of the starts (:func:`gpuvec.random.default_rng` on the data's backend).
    warm_start : bool, default False
        Go on from the previous fit's parameters and lower bound.
    verbose : int, default 0
        Accepted for sklearn's API; nothing is printed.
    verbose_interval : int, default 10
        Accepted for sklearn's API.

    Attributes
    ----------
    weights_, means_, covariances_, precisions_, precisions_cholesky_ : array
        As GaussianMixture's (``weights_`` the expected weights), with a leading
        B axis for a batch.
    weight_concentration_ : array, or tuple of two arrays ('dirichlet_process')
    mean_precision_, degrees_of_freedom_ : array, shape ([B,] K) ('tied': ``degrees_of_freedom_`` per problem)
    converged_, n_iter_, lower_bound_, lower_bounds_ : as GaussianMixture's
    weight_concentration_prior_, mean_precision_prior_, mean_prior_,
    degrees_of_freedom_prior_, covariance_prior_ : the priors used

    Examples
    --------
    Three clusters fitted with eight components: five are switched off.

    >>> import numpy as np, gpuvec
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(c, 0.5, (300, 2)) for c in (0, 5, 10)])
    >>> bgm = gpuvec.BayesianGaussianMixture(8, n_init=2, random_state=0).fit(X)
    >>> int((bgm.weights_ > 0.01).sum())
    3
    """

    # Fitted attributes (declared for type checkers; set by fit)
    weights_: Any
    means_: Any
    covariances_: Any
    precisions_: Any
    precisions_cholesky_: Any
    weight_concentration_: Any
    mean_precision_: Any
    degrees_of_freedom_: Any
    converged_: Any
    n_iter_: Any
    lower_bound_: Any
    lower_bounds_: Any
    n_features_in_: int

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: CovarianceType = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: InitParams = "kmeans",
        weight_concentration_prior_type: PriorType = "dirichlet_process",
        weight_concentration_prior: Any = None,
        mean_precision_prior: Any = None,
        mean_prior: Any = None,
        degrees_of_freedom_prior: Any = None,
        covariance_prior: Any = None,
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
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval

    # ------------------------------------------------------------------ fitting

    @dlpack_io
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> BayesianGaussianMixture:
        """Fit by variational EM; X of shape (N, D), or (B, N, D) for B independent problems.

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            The samples.
        y : ignored
            Not used; present for sklearn's API.
        sample_weight : array, shape (N,) or (B, N), optional
            Non-negative weights (zero-weight rows pad ragged problems).

        Returns
        -------
        self : BayesianGaussianMixture
            The fitted estimator.
        """
        self._fit(X, sample_weight)
        return self

    @dlpack_io
    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit, then the component labels of X, shape (N,) or (B, N).

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            The samples.
        y : ignored
            Not used; present for sklearn's API.
        sample_weight : array, shape (N,) or (B, N), optional
            As for :meth:`fit`.

        Returns
        -------
        labels : array of int, shape (N,) or (B, N)
            The most likely component of each sample under the fitted model.
        """
        self._fit(X, sample_weight)
        return self.predict(X)

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")
    def _fit(self, X: Any, sample_weight: Any) -> None:
        if is_dask_array(X) or is_dask_array(sample_weight):
            msg = "BayesianGaussianMixture does not take dask arrays yet: fit X.compute(), or use GaussianMixture"
            raise TypeError(msg)
        settings = _settings(self)
        xp, X3, batched, dtype = validate_X(X, settings.n_components)
        if X3.shape[1] < 2:  # the default priors are the data's mean and covariance (ddof=1): sklearn's minimum
            shape = tuple(X3.shape) if batched else tuple(X3.shape[1:])
            msg = f"Found array with {X3.shape[1]} sample(s) (shape={shape}) while a minimum of 2 is required."
            raise ValueError(msg)
        sw = validate_sample_weight(xp, sample_weight, X3, batched, settings.n_components)
        if sw is not None and bool(((sw > 0).sum(1) < 2).any()):
            raise ValueError("sample_weight must be positive on at least 2 samples of every problem (the default "
                             "covariance prior is their covariance, ddof=1)")  # fmt: skip
        prior_type = self.weight_concentration_prior_type
        check_choice("weight_concentration_prior_type", prior_type, _vi.PRIOR_TYPES)
        priors = _priors(self, xp, X3, sw, batched)
        _fit_all(self, settings, xp, X3, sw, priors, prior_type, batched, dtype)

    # ------------------------------------------------------------------ prediction

    def _estimate(self, X: Any, what: str) -> tuple[Any, bool, int]:
        xp, X3, batched, dtype = validate_X(X, None)
        check_matches_fit(self, tuple(X3.shape) if batched else tuple(X3.shape[1:]))
        params = _fitted(self, xp)
        gauss, top = _vi.e_step_params(xp, params, self.weight_concentration_prior_type)
        proxy = types.SimpleNamespace(
            n_components=self.n_components,
            covariance_type=self.covariance_type,
            weights_=gauss.weights,
            means_=params.means,
            precisions_cholesky_=params.precisions_cholesky,
        )
        out = _fit.e_step_outputs(proxy, xp, X3, what, dtype)
        if what == "log_norm":  # sklearn's score_samples: log-sum-exp of the weighted variational log-probs
            out = (out + top[:, None]).astype(dtype, copy=False)
        return (out if batched else out[0]), batched, X3.shape[1]

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
        return self._estimate(X, "labels")[0]

    @dlpack_io
    def predict_proba(self, X: Any) -> Any:
        """Responsibilities, shape (N, K) or (B, N, K).

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).

        Returns
        -------
        resp : array, shape (N, K) or (B, N, K)
            The variational posterior of each component for each sample.
        """
        return self._estimate(X, "proba")[0]

    @dlpack_io
    def score_samples(self, X: Any) -> Any:
        """Return sklearn's ``score_samples``: the log-sum-exp of the weighted variational log-probabilities.

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).

        Returns
        -------
        log_prob : array, shape (N,) or (B, N)
            Per sample (not a normalised density, as in sklearn).
        """
        return self._estimate(X, "log_norm")[0]

    @dlpack_io
    def score(self, X: Any, y: Any = None) -> Any:
        """The mean of :meth:`score_samples`: a float, or an array of shape (B,) for a batch.

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).
        y : ignored
            Not used; present for sklearn's API.

        Returns
        -------
        score : float or array, shape (B,)
            The mean over the samples.
        """
        log_norm, batched, _ = self._estimate(X, "log_norm")
        s = log_norm.mean(-1)
        return s if batched else float(s)

    def sample(self, n_samples: int = 1) -> tuple[Any, Any]:
        """Draw samples from the fitted mixture (``weights_``, ``means_``, ``covariances_``, as sklearn).

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
        check_fitted(self)
        n_samples = check_int("n_samples", n_samples)
        if n_samples < 1:
            msg = f"Invalid value for 'n_samples': {n_samples} . The sampling requires at least one sample."
            raise ValueError(msg)
        return _fit.sample(self, n_samples, _settings(self).rng(get_namespace(self.means_)))


# --------------------------------------------------------------------------- the fit


def _settings(estimator: BayesianGaussianMixture) -> Settings:
    """GaussianMixture's checked settings for what the two share (no explicit starts here)."""
    params = {k: v for k, v in estimator.get_params().items() if k not in (*_PRIORS, "covariance_prior")}
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


def _priors(est: BayesianGaussianMixture, xp: types.ModuleType, X: Any, sw: Any, batched: bool) -> _vi.Priors:
    """The priors of each problem: the user's (checked), else sklearn's defaults from the data."""
    B, N, D = X.shape
    K = est.n_components
    w = xp.ones((B, N)) if sw is None else sw
    total = w.sum(1)
    mean = xp.matmul(w[:, None, :], X.astype(xp.float64))[:, 0] / total[:, None]

    def given(name: str, default: Any, tail: tuple[int, ...] = ()) -> Any:
        value = getattr(est, name)
        if value is None:
            return default
        if not tail:
            value = xp.asarray(value, dtype=xp.float64) if hasattr(value, "shape") else check_real(name, value)
        return _per_problem(xp, name, value, B, tail, batched)

    alpha = _positive(xp, "weight_concentration_prior", given("weight_concentration_prior", xp.full(B, 1.0 / K)))
    beta = _positive(xp, "mean_precision_prior", given("mean_precision_prior", xp.ones(B)))
    mean_prior = given("mean_prior", mean, (D,))
    nu = given("degrees_of_freedom_prior", xp.full(B, float(D)))
    if not bool((nu > D - 1.0).all()):
        bad = float(nu[~(nu > D - 1.0)][0])
        msg = f"The parameter 'degrees_of_freedom_prior' should be greater than {D - 1}, but got {bad:.3f}."
        raise ValueError(msg)
    return _vi.Priors(alpha, beta, mean_prior, nu, _covariance_prior(est, xp, X, w, mean, batched))


def _covariance_prior(est: BayesianGaussianMixture, xp: types.ModuleType, X: Any, w: Any, mean: Any, batched: bool):
    """The user's covariance prior (checked), or the data's covariance (frequency weights, ddof=1)."""
    B, N, D = X.shape
    ct = est.covariance_type
    if est.covariance_prior is None:
        Z = (X.astype(xp.float64) - mean[:, None, :]) * xp.sqrt(w)[..., None]
        cov = xp.matmul(xp.swapaxes(Z, 1, 2), Z) / (w.sum(1) - 1.0)[:, None, None]
        if ct in ("full", "tied"):
            return cov
        var = xp.diagonal(cov, axis1=-2, axis2=-1)
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


def _fit_all(est, settings, xp, X, sw, priors, pt, batched, dtype) -> None:
    """Every start of every problem, the best start of each, warnings, the attributes."""
    B = X.shape[0]
    ct = settings.covariance_type
    reg = xp.full(B, float(settings.reg_covar))
    previous = None
    if settings.warm_start and hasattr(est, "converged_") and est.means_.shape[-1] == X.shape[-1] and (
        (est.means_.shape[0] if est.means_.ndim == 3 else 1) == B
    ):
        check_same_model(est, settings)
        if isinstance(est.weight_concentration_, tuple) != (pt == "dirichlet_process"):
            raise ValueError(
                f"weight_concentration_prior_type is {pt!r} but the model was fitted with the other: go on with "
                "the type it was fitted with, or call fit without warm_start"
            )
        previous = _fit.as_batch(xp, est.lower_bound_, est.means_.ndim == 3)  # as the previous fit stored it
        starts, n_init = [_fitted(est, xp)], 1
    else:
        n_init = settings.n_init
        stats = _fit.start_statistics(settings, xp, X, sw, n_init)
        every = _vi.m_step(xp, stats, xp.repeat(reg, n_init), _repeat(xp, priors, n_init), ct, pt)  # the start
        starts = [_vi.take(every, xp.arange(i, B * n_init, n_init)) for i in range(n_init)]
    options = dict(tol=settings.tol, max_iter=settings.max_iter)
    # one start after another on X itself (as one batch of B * n_init, copies of X, it measured slower:
    # every problem of the stacked batch paid the loop until the slowest start converged)
    runs = [_vi.run(xp, X, sw, p, priors, reg, ct, pt, previous=previous, batched=batched, **options) for p in starts]
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
            _fit.convergence_warning_class(),
        )
    _store(est, xp, params, priors, lb, n_iter, converged, history, ct, pt, batched, dtype)


def _repeat(xp: types.ModuleType, priors: _vi.Priors, n: int) -> _vi.Priors:
    return _vi.Priors(*(xp.repeat(a, n, axis=0) for a in priors))


def _fitted(est: BayesianGaussianMixture, xp: types.ModuleType) -> _vi.VariationalParams:
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

