"""Gaussian mixtures fitted by EM, many independent problems at once.

:class:`GaussianMixture` has sklearn's parameters, methods, attributes and
messages; with ``X`` of shape (B, N, D) it fits B independent problems in one
call. Below it, the functional core it is built from, batched and written once
against the array namespace: :func:`estimate_log_prob`, :func:`e_step`,
:func:`m_step`, an EM pass split into mergeable :class:`SufficientStats`
(:func:`sufficient_statistics`, :func:`merge_statistics`,
:func:`params_from_statistics`, composed as :func:`em_pass`), and the batched
EM loop :func:`fit_em` (returning :class:`EMResult`).

The files of this folder, one role each:

==========================  ==========================================================
``_gaussian_mixture.py``    the estimator (sklearn's interface only)
``_bayesian_mixture.py``    BayesianGaussianMixture (sklearn's interface only)
``_variational.py``         its variational updates, from the same statistics
``_bayesian_fit.py``        its fit: priors, starts, runs, attributes (memory and dask)
``_online.py``              partial_fit: stepwise EM on the running statistics
``_estimator.py``           sklearn's estimator protocol, shared by the two
``_validation.py``          checks of parameters and inputs (in memory and dask)
``_fit.py``                 starts, EM, failures, warnings, fitted attributes
``_em.py``                  the batched EM loop and the regularisation retry
``_xp.py``                  E-step, statistics, M-step: the reference (numpy, cupy)
``_numba.py``               the fused CPU loops; ``_dispatch.py`` chooses
``_covariance.py``          one table row per covariance type, and its formulas
``_starts.py``              k-means++, kmeans, random, random_from_data starts
``_dask.py``                dask in, dask out (both estimators)
``_dask_blocks.py``         its block tasks and passes over N-split data
==========================  ==========================================================

Parameterisation is sklearn's: precision Cholesky factors, log-sum-exp, and
``reg_covar`` added to the covariance diagonals. Sums over samples run in
float64 whatever the input dtype.
"""

from __future__ import annotations

from gpuvec.mixture._bayesian_mixture import BayesianGaussianMixture
from gpuvec.mixture._covariance import COVARIANCE_TYPES, CovarianceType
from gpuvec.mixture._em import EMResult, em_pass, fit_em
from gpuvec.mixture._fit import convergence_warning_class
from gpuvec.mixture._gaussian_mixture import GaussianMixture
from gpuvec.mixture._starts import INIT_PARAMS
from gpuvec.mixture._xp import (
    MixtureParams,
    SufficientStats,
    e_step,
    estimate_log_prob,
    m_step,
    merge_statistics,
    params_from_statistics,
    sufficient_statistics,
)

__all__ = [
    "COVARIANCE_TYPES",
    "BayesianGaussianMixture",
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


def __getattr__(name: str) -> type[UserWarning]:
    if name == "ConvergenceWarning":
        return convergence_warning_class()
    msg = f"module {__name__!r} has no attribute {name!r}"
    raise AttributeError(msg)
