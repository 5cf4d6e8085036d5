"""Arrays from torch, JAX and anything else that speaks DLPack: in through numpy or cupy, out as the caller's kind.

A public function decorated with :func:`dlpack_io` accepts objects with
``__dlpack__`` (a torch tensor, a JAX array, an array-api-strict array, ...). Each
one is viewed without a copy as a numpy array (data in host memory) or a cupy
array (data on a CUDA device), the function runs on that, and every array in its
result is handed back through the caller's library's ``from_dlpack``, again
without a copy: torch in, torch out, on the device the data was on. Mixing kinds
in one call (a torch tensor with a JAX array, or with a numpy array) is a
TypeError, as mixing numpy and cupy is: gpuvec never moves data behind the
caller's back.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from gpuvec._core.namespace import is_cupy_array, is_foreign, to_native

F = TypeVar("F", bound=Callable[..., Any])


def library(x: Any) -> str:
    """The top-level module of ``x``'s type: 'torch', 'jax', 'jaxlib', 'array_api_strict', ..."""
    return type(x).__module__.split(".")[0]


def _type_name(x: Any) -> str:
    return f"{type(x).__module__}.{type(x).__name__}"


def _from_dlpack_of(lib: str) -> Callable[[Any], Any]:
    """The ``from_dlpack`` of a library: ``torch.from_dlpack``, ``jax.numpy.from_dlpack``, ..."""
    top = importlib.import_module("jax" if lib == "jaxlib" else lib)
    for owner in (top, getattr(top, "numpy", None)):
        if owner is not None and hasattr(owner, "from_dlpack"):
            return owner.from_dlpack
    msg = f"{lib} has no from_dlpack: gpuvec cannot hand results back as {lib} arrays"
    raise TypeError(msg)


def back(result: Any, lib: str) -> Any:
    """Every numpy/cupy array in ``result`` (arrays, tuples, named tuples) as an array of ``lib``."""
    if isinstance(result, np.ndarray) or is_cupy_array(result):
        if isinstance(result, np.ndarray) and not result.flags.writeable:
            result = result.copy()  # some producers refuse read-only exports
        return _from_dlpack_of(lib)(result)
    if isinstance(result, tuple):
        items = [back(r, lib) for r in result]
        return type(result)(*items) if hasattr(result, "_fields") else tuple(items)
    return result


def _check_one_kind(args: list[Any]) -> str | None:
    """The one foreign library among the arguments, or None; TypeError if kinds are mixed."""
    foreign = [a for a in args if is_foreign(a)]
    if not foreign:
        return None
    libs = {library(a) for a in foreign}
    native = [a for a in args if (isinstance(a, np.ndarray) and a.ndim > 0) or is_cupy_array(a)]
    if len(libs) > 1 or native:
        first, other = (
            foreign[0],
            next((a for a in foreign if library(a) != library(foreign[0])), native[0] if native else None),
        )
        msg = (
            f"got both a {_type_name(first)} and a {_type_name(other)}: gpuvec never converts between array libraries "
            "behind your back; pass arrays of one kind (convert with your library's from_dlpack, or gpuvec.asarray)"
        )
        raise TypeError(msg)
    return libs.pop()


def dlpack_io(func: F) -> F:
    """Let ``func`` take DLPack arrays of another library and give its array results back as that library's.

    Arguments without ``__dlpack__`` pass through untouched, so numpy and cupy
    calls take no detour.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        lib = _check_one_kind([*args, *kwargs.values()])
        if lib is None:
            return func(*args, **kwargs)
        args = tuple(to_native(a) if is_foreign(a) else a for a in args)
        kwargs = {k: to_native(v) if is_foreign(v) else v for k, v in kwargs.items()}
        return back(func(*args, **kwargs), lib)

    return wrapper  # type: ignore[return-value]
