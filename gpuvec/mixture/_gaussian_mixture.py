"""GaussianMixture: sklearn's estimator, fitted by EM, one problem (N, D) or a batch (B, N, D) at once.

The sklearn adapter only: parameters, methods and fitted attributes. What it
does lives below it: checks in :mod:`gpuvec.mixture._validation`, the fit
(starts, EM, failures, warnings, stored attributes) in
:mod:`gpuvec.mixture._fit`, the EM core in :mod:`gpuvec.mixture._em` and
:mod:`gpuvec.mixture._xp`. A dask array goes to :mod:`gpuvec.mixture._dask`
through one decorator (:func:`~gpuvec.mixture._estimator.dask_aware`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

import gpuvec.mixture._fit as _fit
import gpuvec.mixture._online as _online
from gpuvec._core.checks import check_int
from gpuvec._core.dlpack import dlpack_io
from gpuvec._core.namespace import get_namespace
from gpuvec.mixture._covariance import CovarianceType
from gpuvec.mixture._estimator import MixtureEstimator, dask_aware
from gpuvec.mixture._starts import InitParams
from gpuvec.mixture._validation import Settings, check_fitted, check_matches_fit, validate_sample_weight, validate_X

__all__ = ["GaussianMixture"]


class GaussianMixture(MixtureEstimator):
    """Gaussian mixture fitted by EM; one problem (N, D) or a batch (B, N, D) at once.

    sklearn's parameters, methods and attributes (``sklearn.mixture.GaussianMixture``),
    on numpy or cupy data. With ``X`` of shape (B, N, D), every fitted attribute
    gains a leading B axis and the B problems are fitted independently in one
    call; problems that have converged leave the active set.

    On the CPU, X (float32 or float64) is never copied and every pass runs in
    chunks; the passes run compiled (numba; ``GPUVEC_JIT=0``: the numpy
    reference) on every usable core, or ``GPUVEC_NUM_THREADS`` threads, and on
    one thread with BLAS at one thread when called from a pool thread.

    Dask arrays (numpy or cupy chunks, extra ``gpuvec[dask]``) are never
    computed into memory: blocks of problems are fitted where they live, an N
    split runs one tree-summed pass per EM iteration (the in-memory result from
    the same start, up to summation order), predictions come back lazy; see
    :mod:`gpuvec.mixture._dask` and the user guide's Dask page.

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
        Starts per problem (on the same X, no copy); the best lower bound
        wins (the first within 1e-10 of it), a failed start loses, and start 0
        is ``n_init=1``'s, so more starts never end worse.
    init_params : {'k-means++', 'kmeans', 'random', 'random_from_data'}, default 'k-means++'
        'k-means++' seeds centres by greedy D^2 sampling (each the best of
        ``2 + log(K)`` candidates, as sklearn's ``kmeans_plusplus``) and assigns
        every sample to its nearest centre; 'kmeans' adds 10 Lloyd iterations. (sklearn's
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
    learning_decay : float in (0.5, 1], default 0.7
        :meth:`partial_fit` only (``fit`` checks it, but does not use it): step ``t`` of stepwise
        EM gives its batch the weight ``(learning_offset + t) ** -learning_decay``
        (sklearn's ``LatentDirichletAllocation`` names and defaults). Near 0.5 the
        model forgets old batches faster and follows drift; 1 averages all
        batches alike.
    learning_offset : float >= 0, default 10.0
        :meth:`partial_fit` only (checked by ``fit`` too): a larger offset gives early batches less weight
        (a steadier start from noisy first batches).

    Attributes
    ----------
    weights_ : array, shape ([B,] K)
    means_ : array, shape ([B,] K, D)
    covariances_, precisions_, precisions_cholesky_ : array
        Shaped by covariance_type, with the leading B axis for batches.
        ``precisions_cholesky_`` is upper triangular for 'full' and 'tied',
        as sklearn's. All five are float32 for float32 X (as sklearn), though
        EM runs in float64; so are predict_proba's and score_samples' results.
        sklearn promotes some of them to float64 when a ``*_init`` array is
        float64 (its arithmetic mixes the two); gpuvec's dtype follows X alone.
    converged_ : bool or array, shape (B,)
    n_iter_ : int or array, shape (B,)
    lower_bound_ : float or array, shape (B,)
    lower_bounds_ : list of float, or array, shape (B, n_iter)
        The lower bound after each iteration (NaN-padded past a problem's ``n_iter_``).
    reg_covar_ : float or array, shape (B,)
        The regularisation each problem ended with.
    n_steps_ : int
        After :meth:`partial_fit`: the stepwise EM steps taken (the first call
        and a preceding ``fit`` count one each).
    sufficient_stats_ : SufficientStats
        After :meth:`partial_fit`: the running statistics per unit of sample
        weight, float64 (all that is kept of past batches).

    Raises
    ------
    ValueError
        From fit, for a problem whose covariance cannot be made positive
        definite (with ``reg_covar=0``, or even after raising it), or whose lower
        bound is NaN (the data's scale overflows float64): the message names the
        problems of a batch. sklearn raises for the same failures.

    Examples
    --------
    Two clusters, at (0, 0) and (5, 5), from a k-means++ start (a start with
    both means at one point is a fixed point of EM, which never separates them):

    >>> import numpy as np, gpuvec
    >>> rng = np.random.default_rng(1)
    >>> X = np.concatenate([rng.normal(0, 1, (1000, 2)), rng.normal(5, 1, (1000, 2))])
    >>> gm = gpuvec.GaussianMixture(2, random_state=0).fit(X)
    >>> bool(np.allclose(np.sort(gm.means_[:, 0]), [0, 5], atol=0.1))
    True
    """

    # The fitted attributes (sklearn's names): set by fit, absent before it.
    weights_: Any
    means_: Any
    covariances_: Any
    precisions_: Any
    precisions_cholesky_: Any
    converged_: Any
    n_iter_: Any
    lower_bound_: Any
    lower_bounds_: Any
    reg_covar_: Any
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
        init_params: InitParams = "k-means++",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        learning_decay: float = 0.7,
        learning_offset: float = 10.0,
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
        self.learning_decay = learning_decay
        self.learning_offset = learning_offset

    # ------------------------------------------------------------------ fitting

    @dlpack_io
    @dask_aware
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
        self._fit(X, sample_weight)
        return self

    @dlpack_io
    @dask_aware
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
        xp, X, batched, dtype = self._fit(X, sample_weight)
        # From the stored attributes (float32 for float32 X), so that fit_predict(X) == fit(X).predict(X).
        labels = _fit.e_step_outputs(self, xp, X, "labels", dtype)
        return labels if batched else labels[0]

    @dlpack_io
    @dask_aware
    @np.errstate(over="ignore", invalid="ignore", divide="ignore")  # failures are raised by the step
    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GaussianMixture:
        """One step of online EM on a minibatch: for streams, drift and data that never sits in memory.

        Stepwise EM (:mod:`gpuvec.mixture._online`; the user guide's "Online
        mixtures"): the batch's statistics per unit weight move the running ones
        by ``(learning_offset + n_steps_) ** -learning_decay``, and the parameters
        are their M-step (``reg_covar`` as in :meth:`fit`; a covariance that is
        not positive definite raises ValueError, without retry). The first call
        fits its batch as :meth:`fit` does (``init_params`` or ``*_init``,
        ``n_init``); after :meth:`fit` the steps go on from the fitted model. Only
        ``sufficient_stats_`` is kept. A dask X: one step per chunk along the
        samples, in order.

        Parameters
        ----------
        X : array, shape (n, D) or (B, n, D)
            A minibatch: of one problem, or of each of B problems (the B of
            every call must be the first call's).
        y : ignored
            Not used; present for sklearn's API.
        sample_weight : array, shape (n,) or (B, n), optional
            Non-negative weights; zeros pad ragged problems (a problem whose
            batch has no weight is left as it was).

        Returns
        -------
        self : GaussianMixture
            The estimator, one step further. ``lower_bound_`` is the batch's
            mean log-likelihood under the parameters before the step.

        Examples
        --------
        >>> import numpy as np, gpuvec
        >>> rng = np.random.default_rng(0)
        >>> gm = gpuvec.GaussianMixture(2, random_state=0)
        >>> for _ in range(50):  # a stream of 50 batches of 400 rows
        ...     gm = gm.partial_fit(rng.normal(0, 1, (400, 2)) + 6 * rng.integers(0, 2, (400, 1)))
        >>> gm.n_steps_, bool(np.allclose(np.sort(gm.means_[:, 0]), [0, 6], atol=0.2))
        (50, True)
        """
        _online.partial_fit(self, X, sample_weight)
        return self

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")  # failures are reported by _fit.finish
    def _fit(self, X: Any, sample_weight: Any) -> tuple[Any, Any, bool, Any]:
        """Fit in memory; (xp, X as validated (B, N, D), whether batched, the result dtype) for fit_predict."""
        settings = Settings.of(self)
        xp, X, batched, dtype = validate_X(X, settings.n_components)
        sw = validate_sample_weight(xp, sample_weight, X, batched, settings.n_components)
        _fit.fit(self, settings, xp, X, sw, batched, dtype)
        return xp, X, batched, dtype

    # ------------------------------------------------------------------ prediction

    def _estimate(self, X: Any, what: str) -> tuple[Any, bool, int]:
        """(:func:`~gpuvec.mixture._fit.e_step_outputs` of X, without the batch axis for (N, D) input;
        whether batched; N)."""
        xp, X3, batched, dtype = validate_X(X, None)
        check_matches_fit(self, tuple(X3.shape) if batched else tuple(X3.shape[1:]))
        out = _fit.e_step_outputs(self, xp, X3, what, dtype)
        return (out if batched else out[0]), batched, X3.shape[1]

    @dlpack_io
    @dask_aware
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
        score, n = self._score(X)
        return -2 * score * n + _fit.n_parameters(self) * math.log(n)

    @dlpack_io
    @dask_aware
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
        score, n = self._score(X)
        return -2 * score * n + 2 * _fit.n_parameters(self)

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
        check_fitted(self)
        n_samples = check_int("n_samples", n_samples)
        if n_samples < 1:
            msg = f"Invalid value for 'n_samples': {n_samples} . The sampling requires at least one sample."
            raise ValueError(msg)  # sklearn's words
        return _fit.sample(self, n_samples, Settings.of(self).rng(get_namespace(self.means_)))
