"""GaussianMixture's checks of its parameters and inputs, written once for the in-memory and the dask fits.

Messages are sklearn's where sklearn has one (its tests match them), and name
the parameter, what was expected and what came otherwise. The in-memory path
checks values up front (finiteness, weights); the dask path checks the same
metadata here and the values in its first pass, with the same messages
(:func:`check_weight_values`).
"""

from __future__ import annotations

import dataclasses
import types
from typing import Any

import numpy as np

from gpuvec import random as gv_random
from gpuvec._core.checks import check_choice, check_int, check_real
from gpuvec._core.dispatch import chunk_elements
from gpuvec._core.namespace import get_namespace, is_cupy_namespace
from gpuvec.mixture._covariance import COVARIANCE_TYPES, CovarianceType, cholesky_from_precisions
from gpuvec.mixture._starts import INIT_PARAMS

__all__ = [
    "Settings",
    "check_same_model",
    "check_fitted",
    "check_matches_fit",
    "check_n_samples",
    "check_X_metadata",
    "check_weight_shape",
    "check_weight_values",
    "first",
    "g_list",
    "user_init",
    "validate_X",
    "validate_sample_weight",
]


@dataclasses.dataclass(frozen=True)
class Settings:
    """The estimator's constructor parameters, checked: what a fit reads (in memory or on dask).

    Made by :meth:`of` from ``estimator.get_params()``, so the fits read the
    estimator only through sklearn's public interface.
    """

    n_components: int
    covariance_type: CovarianceType
    tol: float
    reg_covar: float
    max_iter: int
    n_init: int
    init_params: str
    weights_init: Any
    means_init: Any
    precisions_init: Any
    random_state: Any
    warm_start: bool
    verbose: int
    verbose_interval: int
    learning_decay: float = 0.7
    learning_offset: float = 10.0

    @classmethod
    def of(cls, estimator: Any) -> Settings:
        """The checked settings of ``estimator`` (a GaussianMixture), or sklearn-style parameter errors."""
        params = estimator.get_params()
        check_int("n_components", params["n_components"], minimum=1)
        check_choice("covariance_type", params["covariance_type"], tuple(COVARIANCE_TYPES))
        check_choice("init_params", params["init_params"], INIT_PARAMS)
        for name in ("tol", "reg_covar"):
            if check_real(name, params[name]) < 0:
                raise ValueError(f"{name} must be >= 0; got {params[name]}")
        check_int("max_iter", params["max_iter"], minimum=0)
        check_int("n_init", params["n_init"], minimum=1)
        if isinstance(params["verbose"], (bool, np.bool_)):  # sklearn takes a bool
            params["verbose"] = int(params["verbose"])
        check_int("verbose", params["verbose"], minimum=0)
        if not isinstance(params["warm_start"], (bool, np.bool_)):
            got = params["warm_start"]
            raise TypeError(f"warm_start must be a bool; got {got!r} of type {type(got).__name__}")
        check_int("verbose_interval", params["verbose_interval"], minimum=1)
        decay = check_real("learning_decay", params.get("learning_decay", 0.7))
        if not 0.5 < decay <= 1.0:
            raise ValueError(f"learning_decay must be a float in the range (0.5, 1.0]; got {decay!r}")
        if check_real("learning_offset", params.get("learning_offset", 10.0)) < 0:
            raise ValueError(f"learning_offset must be a float >= 0; got {params['learning_offset']!r}")
        return cls(**params)

    @property
    def explicit_start(self) -> bool:
        """Whether weights, means and precisions are all given: EM's first E-step needs nothing else."""
        return all(v is not None for v in (self.weights_init, self.means_init, self.precisions_init))

    def em_options(self) -> dict[str, Any]:
        """The EM loop's settings (:func:`gpuvec.mixture._em.em_loop`)."""
        return dict(tol=self.tol, max_iter=self.max_iter, verbose=self.verbose, verbose_interval=self.verbose_interval)

    def rng(self, xp: types.ModuleType) -> Any:
        """A generator on the data's backend from random_state (a fresh one per call, as sklearn's)."""
        try:
            return gv_random.default_rng(self.random_state, backend="cupy" if is_cupy_namespace(xp) else "numpy")
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"random_state is not a valid seed: {exc}") from None


# --------------------------------------------------------------------------- X


def check_X_metadata(shape: tuple[Any, ...], dtype: Any) -> None:
    """The checks of X that read no values: its dtype, its number of axes and their sizes."""
    kind = np.dtype(dtype).kind
    if kind == "c":
        raise ValueError("Complex data not supported: X must be real")
    if kind not in "biuf":
        raise ValueError(f"X must be numeric; got dtype {dtype}")
    if len(shape) == 1:
        raise ValueError(
            "Expected 2D array (n_samples, n_features) or 3D (batch, n_samples, n_features), "
            f"got 1D array of shape {shape}. Reshape your data either using array.reshape(-1, 1) "
            "if your data has a single feature or array.reshape(1, -1) if it contains a single sample."
        )
    if len(shape) not in (2, 3):
        msg = f"X must have shape (n_samples, n_features) or (batch, n_samples, n_features); got shape {shape}"
        raise ValueError(msg)
    for axis, what in ((-2, "sample(s)"), (-1, "feature(s)"), (0, "problem(s)")):
        if shape[axis] == 0:
            raise ValueError(f"Found array with 0 {what} (shape={shape}) while a minimum of 1 is required.")


def check_n_samples(n_samples: int, n_components: int) -> None:
    """sklearn's check that a fit has at least as many samples as components."""
    if n_samples < n_components:
        raise ValueError(
            f"Expected n_samples >= n_components but got n_components = {n_components}, n_samples = {n_samples}"
        )


def check_fitted(estimator: Any) -> None:
    """sklearn's NotFittedError (AttributeError without sklearn) for an estimator that has no ``means_``."""
    if not hasattr(estimator, "means_"):
        msg = (
            f"This {type(estimator).__name__} instance is not fitted yet. "
            "Call 'fit' with appropriate arguments before using this estimator."
        )
        try:
            from sklearn.exceptions import NotFittedError
        except ImportError:
            raise AttributeError(msg) from None
        raise NotFittedError(msg)


def check_matches_fit(estimator: Any, shape: tuple[int, ...]) -> None:
    """X of ``shape`` for predict/score: fitted, with the fit's features and (batched) the fit's B."""
    check_fitted(estimator)
    means = estimator.means_
    if shape[-1] != means.shape[-1]:
        raise ValueError(
            f"X has {shape[-1]} features, but {type(estimator).__name__} is expecting {means.shape[-1]} features as "
            "input."
        )
    fitted_batched = means.ndim == 3
    if (len(shape) == 3) != fitted_batched or (fitted_batched and shape[0] != means.shape[0]):
        expected = f"(B={means.shape[0]}, N, D)" if fitted_batched else "(N, D)"
        raise ValueError(f"X must have shape {expected} as in fit; got shape {shape}")


def check_same_model(estimator: Any, settings: Settings) -> None:
    """A fitted estimator whose ``n_components`` or ``covariance_type`` changed since (set_params) cannot go on
    from its parameters (partial_fit, warm_start): a ValueError naming what changed."""
    means, cov = estimator.means_, estimator.covariances_
    batched = means.ndim == 3
    K, D = means.shape[-2], means.shape[-1]
    if settings.n_components != K:
        raise ValueError(
            f"n_components is {settings.n_components} but the fitted model has {K} components: go on with "
            f"n_components={K}, or call fit (without warm_start) to start again"
        )
    expected = COVARIANCE_TYPES[settings.covariance_type].precision_shape(K, D)
    if tuple(cov.shape[1:] if batched else cov.shape) != tuple(expected):
        raise ValueError(
            f"covariance_type is {settings.covariance_type!r} but the fitted covariances_ have shape "
            f"{tuple(cov.shape)}: go on with the type they were fitted with, or call fit (without warm_start)"
        )


def validate_X(X: Any, n_components: int | None) -> tuple[types.ModuleType, Any, bool, Any]:
    """(xp, X as a (B, N, D) float32 or float64 array (X itself where it is one), whether batched, its dtype).

    ``n_components``: for a fit, the number of components X must have samples for (None otherwise).
    """
    if type(X).__module__.split(".sparse")[0] in ("scipy", "cupyx.scipy") and hasattr(X, "toarray"):
        raise TypeError(
            "Sparse data was passed for X, but dense data is required. Use X.toarray() to convert to a dense array."
        )
    xp = get_namespace(X)
    try:
        X = xp.asarray(X)
    except ValueError as exc:  # ragged nested lists
        raise ValueError(f"X must be a rectangular (N, D) or (B, N, D) array; {exc}") from None
    if X.dtype.kind == "O":
        X = X.astype(xp.float64)  # raises numpy's own error for non-numbers
    check_X_metadata(tuple(X.shape), X.dtype)
    batched = X.ndim == 3
    dtype = xp.float32 if X.dtype == xp.float32 else xp.float64  # as sklearn's validate_data
    # float32 and float64 X are used as they are (no copy: passes over X run in chunks and sum in
    # float64); other dtypes become float64.
    X = (X if batched else X[None]).astype(dtype, copy=False)
    if not _all_finite(xp, X):  # once, up front
        kind = "NaN" if bool(xp.isnan(X).any()) else f"infinity or a value too large for dtype('{X.dtype}')"
        raise ValueError(f"Input X contains {kind}.")
    if n_components is not None:
        check_n_samples(X.shape[1], n_components)
    return xp, X, batched, dtype


def _all_finite(xp: types.ModuleType, X: Any) -> bool:
    """Whether every value of X (B, N, D) is finite, a chunk of samples at a time (no X-sized mask)."""
    B, N, D = X.shape
    step = max(1, chunk_elements(xp, "mixture") // (B * D))
    return all(bool(xp.isfinite(X[:, s : s + step]).all()) for s in range(0, N, step))


# --------------------------------------------------------------------------- sample_weight


def check_weight_shape(shape: tuple[int, ...], B: int, N: int, batched: bool) -> None:
    """sample_weight must be (N,), or (B, N) for a batch."""
    if shape not in ((N,), (B, N)) or (not batched and len(shape) != 1):
        expected = f"(n_samples,) = ({N},)" + (f" or (B, n_samples) = ({B}, {N})" if batched else "")
        raise ValueError(f"sample_weight must have shape {expected} to match X; got shape {shape}")


def check_weight_values(bad_values: bool, empty_problem: bool, too_few_positive: bool, n_components: int) -> None:
    """The value checks of sample_weight, from what the caller found (in memory, or in the dask first pass)."""
    if bad_values:
        raise ValueError("sample_weight must be finite and non-negative")
    if empty_problem:
        raise ValueError("sample_weight is zero for every sample of a problem: sample weights must not all be zero")
    if too_few_positive:
        raise ValueError(
            "Expected n_samples >= n_components among samples of positive sample_weight in every problem, "
            f"n_components = {n_components}"
        )


def validate_sample_weight(
    xp: types.ModuleType, sample_weight: Any, X: Any, batched: bool, n_components: int | None
) -> Any:
    """sample_weight as a float64 (B, N) array (a broadcast view for one row), or None.

    ``n_components``: the positive weights every problem needs (None: a problem may have none, as in a
    later minibatch of partial_fit)."""
    if sample_weight is None:
        return None
    if type(sample_weight).__module__.split(".sparse")[0] in ("scipy", "cupyx.scipy"):
        raise TypeError("sample_weight must be a dense array; got a sparse matrix (use .toarray())")
    get_namespace(X, sample_weight)  # TypeError for numpy with cupy: no silent copy
    sw = xp.asarray(sample_weight)
    if sw.dtype.kind not in "biuf":
        raise TypeError(f"sample_weight must be a real numeric array; got dtype {sw.dtype}")
    B, N, _ = X.shape
    check_weight_shape(tuple(sw.shape), B, N, batched)
    sw = xp.broadcast_to(sw.astype(xp.float64), (B, N))
    check_weight_values(
        bad_values=not bool(xp.isfinite(sw).all()) or bool((sw < 0).any()),
        empty_problem=n_components is not None and bool((sw.sum(1) == 0).any()),
        too_few_positive=n_components is not None and bool(((sw > 0).sum(1) < n_components).any()),
        n_components=n_components or 0,
    )
    # Scaled to mean 1 over each problem's positive weights: a fit does not depend on the weights' scale
    # (sklearn's 10 eps on the component weights would, once the weights are that small).
    positive = (sw > 0).sum(1)
    total = sw.sum(1)
    scale = xp.where(total > 0, positive / xp.where(total > 0, total, 1.0), 1.0)
    return sw * scale[:, None]


# --------------------------------------------------------------------------- the user's initial parameters


def user_init(xp: types.ModuleType, settings: Settings, B: int, D: int, batched: bool) -> tuple[Any, Any, Any]:
    """weights_init, means_init and precisions_init checked and shaped (B, ...) (None where not given).

    The precisions come back as their Cholesky factors, as EM uses them.
    """
    ct, K = settings.covariance_type, settings.n_components
    prec_tail = COVARIANCE_TYPES[ct].precision_shape(K, D)
    w = _batched_init(xp, settings.weights_init, "weights_init", "weights", B, (K,), batched)
    m = _batched_init(xp, settings.means_init, "means_init", "means", B, (K, D), batched)
    p = _batched_init(xp, settings.precisions_init, "precisions_init", f"{ct} precision", B, prec_tail, batched)
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
            got = g_list(total) if batched else f"{float(total[0]):.5f}"
            raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = {got}")
    if p is not None:
        full_matrix = COVARIANCE_TYPES[ct].full_matrix
        symmetric = not full_matrix or bool((xp.abs(p - xp.swapaxes(p, -1, -2)) <= 1e-10 * xp.abs(p).max()).all())
        p, ok = cholesky_from_precisions(xp, p, ct)
        if not (symmetric and bool(ok.all())):
            kind = "symmetric, positive-definite" if full_matrix else "positive"
            raise ValueError(f"'{ct} precision' should be {kind}")
    return w, m, p


def _batched_init(xp, value, name, label, B, tail, batched):
    """A user's initial parameter, shaped ``tail`` or ``(B,) + tail``, as a (B,) + tail array (read-only use).

    ``name`` is the constructor parameter, ``label`` sklearn's word for it in its messages.
    """
    if value is None:
        return None
    if np.iscomplexobj(value) or getattr(getattr(value, "dtype", None), "kind", "") == "c":
        raise TypeError(f"{name} must be real; got a complex array")
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
        problems = "" if where is None else f" (problems {first(where)})"
        msg = f"{name} must be finite: the parameter '{label}' contains NaN or infinity{problems}"
        raise ValueError(msg)
    return xp.broadcast_to(value, (B,) + tail)


# --------------------------------------------------------------------------- message helpers


def first(indices: Any, most: int = 10) -> str:
    """A short printable list of problem indices."""
    shown = [int(i) for i in indices[:most]]
    return f"{shown}{'...' if len(indices) > most else ''}"


def g_list(a: Any, most: int = 10) -> str:
    """A short printable list of values of any magnitude."""
    shown = ", ".join(f"{float(v):g}" for v in a[:most])
    return f"[{shown}{', ...' if len(a) > most else ''}]"
