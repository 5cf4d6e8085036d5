"""BayesianGaussianMixture: sklearn's variational mixture, one problem or a batch of B at once.

The estimator holds sklearn's interface only; the updates are in
:mod:`gpuvec.mixture._variational`, the E-step pass and the starts are
GaussianMixture's (:mod:`gpuvec.mixture._xp`, :mod:`gpuvec.mixture._fit`).
"""

from __future__ import annotations

import types
from typing import Any, Literal

import numpy as np

import gpuvec.mixture._bayesian_fit as _bf
import gpuvec.mixture._fit as _fit
import gpuvec.mixture._variational as _vi
from gpuvec._core.checks import check_choice, check_int
from gpuvec._core.dlpack import dlpack_io
from gpuvec._core.namespace import get_namespace
from gpuvec.mixture._covariance import CovarianceType
from gpuvec.mixture._estimator import MixtureEstimator, dask_aware
from gpuvec.mixture._starts import InitParams
from gpuvec.mixture._validation import (
    check_fitted,
    check_matches_fit,
    validate_sample_weight,
    validate_X,
)

__all__ = ["BayesianGaussianMixture"]

PriorType = Literal["dirichlet_process", "dirichlet_distribution"]


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
    cupy path). Dask arrays (numpy or cupy chunks) are fitted where they live:
    (B, N, D) chunked along B one in-memory fit per block, (N, D) or N split
    one statistics pass per iteration (the user guide's Dask page); the
    predictions of a dask X are lazy dask arrays.

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
    @dask_aware
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
    @dask_aware
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
        settings = _bf.settings_of(self)
        xp, X3, batched, dtype = validate_X(X, settings.n_components)
        _bf.check_n_samples(X3.shape[1], tuple(X3.shape) if batched else tuple(X3.shape[1:]))
        sw = validate_sample_weight(xp, sample_weight, X3, batched, settings.n_components)
        if sw is not None and bool(((sw > 0).sum(1) < 2).any()):
            raise ValueError(_bf.TOO_FEW_POSITIVE)
        prior_type = self.weight_concentration_prior_type
        check_choice("weight_concentration_prior_type", prior_type, _vi.PRIOR_TYPES)
        _bf.fit_all(self, settings, xp, X3, sw, _bf.data_priors(self, xp, X3, sw, batched), prior_type, batched, dtype)

    # ------------------------------------------------------------------ prediction

    def _estimate(self, X: Any, what: str) -> tuple[Any, bool, int]:
        xp, X3, batched, dtype = validate_X(X, None)
        check_matches_fit(self, tuple(X3.shape) if batched else tuple(X3.shape[1:]))
        params = _bf.fitted(self, xp)
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
        return _fit.sample(self, n_samples, _bf.settings_of(self).rng(get_namespace(self.means_)))
