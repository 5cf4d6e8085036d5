"""Argument checks shared by the algorithm modules: metadata only, never values on a hot path."""

from __future__ import annotations

import math
import numbers
import sys
import types
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from gpuvec._core.namespace import is_dask_array, is_foreign, to_native


def check_choice(name: str, value: Any, choices: Sequence[Any]) -> None:
    """Raise ValueError naming ``name`` unless ``value`` is one of ``choices``."""
    if value not in choices:
        msg = f"{name} must be one of {', '.join(map(repr, choices))}; got {value!r}"
        raise ValueError(msg)


def scalar_value(value: Any) -> Any:
    """The Python number a 0-d array holds; any other value as it is.

    One rule for every scalar argument: a 0-d numpy or cupy array, or a 0-d
    array of another library that speaks DLPack (torch, JAX, array-api-strict,
    ...), counts as the number it holds, as numpy counts it. A dask array is
    never computed to read one: it stays as it is (and fails the check that
    follows, naming the parameter).

    Parameters
    ----------
    value : Any
        The argument as the caller passed it.

    Returns
    -------
    value : Any
        ``bool``, ``int``, ``float`` or ``complex`` for a 0-d array (by its
        dtype's kind), else ``value`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec._core.checks import scalar_value
    >>> scalar_value(np.array(2.5)), scalar_value(np.array(3)), scalar_value([1])
    (2.5, 3, [1])
    """
    if isinstance(value, (numbers.Number, str, bytes)) or is_dask_array(value):
        return value
    try:
        native = to_native(value) if is_foreign(value) else value  # a DLPack producer need not have ndim or item
    except BufferError:  # a dtype DLPack cannot carry here (numpy < 1.25 exports no bool): the Python protocols
        return scalar_by_protocol(value)
    if getattr(native, "ndim", None) != 0 or not callable(getattr(native, "item", None)):
        return value
    return native.item()


def scalar_by_protocol(value: Any) -> Any:
    """A 0-d array's number through ``__bool__``/``__int__``/``__float__``/``__complex__``, by its dtype's
    name (for arrays DLPack cannot carry); any other value as it is."""
    if getattr(value, "ndim", None) != 0:
        return value
    name = str(getattr(value, "dtype", ""))
    for kind, convert in (("bool", bool), ("int", int), ("float", float), ("complex", complex)):
        if kind in name:
            return convert(value)
    return value


def check_int(name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` (a 0-d array too, see :func:`scalar_value`) as an int, or raise TypeError/ValueError
    naming ``name``."""
    number = scalar_value(value)
    if isinstance(number, bool) or not isinstance(number, numbers.Integral):
        msg = f"{name} must be an integer; got {value!r} of type {type(value).__name__}"
        raise TypeError(msg)
    value = int(number)
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        lo = "-inf" if minimum is None else minimum
        hi = "inf" if maximum is None else maximum
        msg = f"{name} must be an integer in [{lo}, {hi}]; got {value}"
        raise ValueError(msg)
    return value


def check_real(name: str, value: Any, *, finite: bool = True) -> float:
    """Return ``value`` (a 0-d array too, see :func:`scalar_value`) as a float, or raise TypeError/ValueError
    naming ``name``."""
    number = scalar_value(value)
    if isinstance(number, bool) or not isinstance(number, numbers.Real):
        msg = f"{name} must be a real number; got {value!r} of type {type(value).__name__}"
        if is_dask_array(value):  # computing it here could run a whole pipeline behind the caller's back
            msg += f" (gpuvec does not compute a dask array for a number: pass float({name}.compute()))"
        raise TypeError(msg)
    value = float(number)
    if finite and not math.isfinite(value):
        msg = f"{name} must be finite; got {value}"
        raise ValueError(msg)
    return value


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` (a 0-d bool array too) as a bool, or raise TypeError naming ``name`` (a string such as
    'no' is not a bool)."""
    flag = scalar_value(value)
    if not isinstance(flag, (bool, np.bool_)):
        msg = f"{name} must be True or False; got {value!r} of type {type(value).__name__}"
        raise TypeError(msg)
    return bool(flag)


def check_matrix_stack(name: str, R: Any) -> None:
    """Raise unless ``R`` (numpy, cupy or dask) is a stack of real square matrices, shape (..., n, n)."""
    if R.ndim < 2 or R.shape[-1] != R.shape[-2]:
        msg = f"{name} must be a stack of square matrices, shape (..., n, n); got shape {R.shape}"
        raise ValueError(msg)
    if R.dtype.kind not in "biuf" or (R.dtype.kind == "f" and R.dtype.itemsize > 8):
        msg = f"{name} must have a real dtype of at most 64 bits (bool, integers, float16/32/64); got {R.dtype}"
        raise TypeError(msg)


def check_mvn_shapes(mean_shape: tuple[int, ...], cov_shape: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """``(d, batch)`` of a multivariate normal's mean (..., d) and cov (..., d, d), or a ValueError naming both."""
    if len(mean_shape) < 1 or len(cov_shape) < 2 or cov_shape[-2:] != (mean_shape[-1],) * 2:
        msg = f"cov must have shape (..., d, d) matching mean (..., d); got mean {mean_shape} and cov {cov_shape}"
        raise ValueError(msg)
    try:
        batch = np.broadcast_shapes(mean_shape[:-1], cov_shape[:-2])
    except ValueError:
        msg = (
            f"the batch axes of mean (..., d) and cov (..., d, d) must broadcast together; got mean of shape "
            f"{mean_shape} (batch {mean_shape[:-1]}) and cov of shape {cov_shape} (batch {cov_shape[:-2]})"
        )
        raise ValueError(msg) from None
    return mean_shape[-1], batch


def check_normal_shapes(
    loc_shape: tuple[int, ...], scale_shape: tuple[int, ...], size: tuple[int, ...] | None, what: str = "size"
) -> tuple[int, ...]:
    """The output shape of a normal draw: loc and scale broadcast together, and to ``size`` where given
    (numpy's rule); ``what`` names ``size`` in the message (``'out.shape'`` where out gave it)."""
    try:
        shape = np.broadcast_shapes(loc_shape, scale_shape)
    except ValueError:
        msg = f"loc and scale must broadcast together; got loc of shape {loc_shape} and scale of shape {scale_shape}"
        raise ValueError(msg) from None
    if size is None:
        return shape
    try:
        fits = np.broadcast_shapes(size, shape) == size
    except ValueError:
        fits = False
    if not fits:
        msg = (
            f"{what} {size} does not broadcast with loc {loc_shape} and scale {scale_shape}: "
            f"loc and scale must broadcast to {what} (numpy's rule)"
        )
        raise ValueError(msg)
    return size


def warn_at_caller(text: str, category: type[Warning]) -> None:
    """``warnings.warn`` pointing at the first frame outside gpuvec (and numpy's/contextlib's decorators),
    so a warning names the user's line however deep in gpuvec it was raised."""
    frame: types.FrameType | None = sys._getframe(1)
    level = 2
    while frame is not None and frame.f_globals.get("__name__", "").split(".")[0] in ("gpuvec", "numpy", "contextlib"):
        frame, level = frame.f_back, level + 1
    warnings.warn(text, category, stacklevel=level)


def check_dtype_kind(name: str, dtype: Any, kinds: str, expected: str) -> None:
    """Raise TypeError naming ``name`` unless ``dtype.kind`` is in ``kinds``."""
    if dtype.kind not in kinds:
        msg = f"{name} must have {expected} dtype; got {dtype}"
        raise TypeError(msg)
