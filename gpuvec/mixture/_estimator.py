"""What both mixture estimators share: sklearn's estimator protocol, without subclassing sklearn.

:class:`MixtureEstimator` gives :class:`~gpuvec.GaussianMixture` and
:class:`~gpuvec.BayesianGaussianMixture` sklearn's ``get_params``/``set_params``
(read from the constructor's signature), its tags and its repr, so that
sklearn's ``clone``, grid searches and ``check_estimator`` treat them as its own;
:func:`dask_aware` sends a method's dask arguments to :mod:`gpuvec.mixture._dask`.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import numpy as np

from gpuvec._core.dask import chunk_namespace
from gpuvec._core.dlpack import dlpack_io
from gpuvec._core.namespace import is_dask_array

if TYPE_CHECKING:
    from sklearn.utils import Tags
    from typing_extensions import Self

__all__ = ["MixtureEstimator", "dask_aware"]

F = TypeVar("F", bound=Callable[..., Any])


def dask_aware(method: F) -> F:
    """The method, or for a call with a dask array among its arguments the same-named function of
    :mod:`gpuvec.mixture._dask` (imported only then), which takes the estimator and the same arguments."""

    signature = inspect.signature(method)

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        if any(is_dask_array(a) for a in (*args, *kwargs.values())):
            from gpuvec.mixture import _dask

            for name, value in signature.bind(self, *args, **kwargs).arguments.items():
                if is_dask_array(value):  # numpy or cupy chunks, else the TypeError naming the argument
                    chunk_namespace(value, name)
            return getattr(_dask, method.__name__)(self, *args, **kwargs)
        return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


# The sorted constructor parameters of each class, read once (inspect.signature took ~0.1 ms a fit).
_PARAM_NAMES: dict[type, tuple[str, ...]] = {}


class MixtureEstimator:
    """sklearn's ``BaseEstimator`` protocol for a class whose ``__init__`` stores its keyword parameters."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        names = _PARAM_NAMES.get(cls)
        if names is None:
            parameters = inspect.signature(cls.__init__).parameters
            names = _PARAM_NAMES[cls] = tuple(sorted(p for p in parameters if p != "self"))
        return list(names)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as sklearn's ``BaseEstimator.get_params``.

        Parameters
        ----------
        deep : bool, default True
            Accepted for sklearn's API; gpuvec's estimators have no sub-estimators.

        Returns
        -------
        params : dict of str to object
            Each constructor parameter's name and current value.
        """
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> Self:
        """Set constructor parameters, as sklearn's ``BaseEstimator.set_params``.

        Parameters
        ----------
        **params : dict
            Constructor parameters by name; an unknown name is a ValueError.

        Returns
        -------
        self : estimator
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

    # ------------------------------------------------------------------ prediction (both estimators)

    def _estimate(self, X: Any, what: str) -> tuple[Any, bool, int]:
        """(labels, responsibilities or log-norms of X, without the batch axis for (N, D) input; whether
        batched; N): each estimator's E-step."""
        raise NotImplementedError

    @dlpack_io
    @dask_aware
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
    @dask_aware
    def predict_proba(self, X: Any) -> Any:
        """Responsibilities, shape (N, K) or (B, N, K) (float32 for float32 X).

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).

        Returns
        -------
        resp : array, shape (N, K) or (B, N, K)
            The posterior probability of each component for each sample (the variational posterior for
            BayesianGaussianMixture).
        """
        return self._estimate(X, "proba")[0]

    @dlpack_io
    @dask_aware
    def score_samples(self, X: Any) -> Any:
        """The log of each sample's weighted probabilities summed over the components, shape (N,) or (B, N).

        For GaussianMixture the log-likelihood ``log p(x)``; for BayesianGaussianMixture sklearn's
        ``score_samples`` under the variational weights and precisions (not a normalised density).

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
            Samples shaped as the data of :meth:`fit` (the same B).

        Returns
        -------
        log_prob : array, shape (N,) or (B, N)
            Per sample, float32 for float32 X.
        """
        return self._estimate(X, "log_norm")[0]

    def _score(self, X: Any) -> tuple[Any, int]:
        """(the mean of score_samples: float or shape (B,), in its dtype; the number of samples N)."""
        log_norm, batched, N = self._estimate(X, "log_norm")
        s = log_norm.mean(-1)
        return (s if batched else float(s)), N

    @dlpack_io
    @dask_aware
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
            The mean over the samples (the mean log-likelihood for GaussianMixture).
        """
        return self._score(X)[0]

    def __sklearn_tags__(self) -> Tags:
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
        return f"{type(self).__name__}({', '.join(changed)})"
