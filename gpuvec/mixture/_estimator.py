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


class MixtureEstimator:
    """sklearn's ``BaseEstimator`` protocol for a class whose ``__init__`` stores its keyword parameters."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted(p for p in inspect.signature(cls.__init__).parameters if p != "self")

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
