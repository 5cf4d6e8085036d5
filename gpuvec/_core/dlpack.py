"""Arrays from torch, JAX and anything else that speaks DLPack: in through numpy or cupy, out as the caller's kind.

A public function decorated with :func:`dlpack_io` accepts objects with
``__dlpack__`` (a torch tensor, a JAX array, an array-api-strict array, ...). Each
one is viewed without a copy as a numpy array (data in host memory) or a cupy
array (data on a CUDA device), the function runs on that, and every array in its
result is handed back through the caller's library's ``from_dlpack``, again
without a copy: torch in, torch out, on the device the caller's array was on
(its ``x.device``, restored with ``to_device`` where DLPack's "host or CUDA n"
says less: array-api-strict's devices). Mixing kinds in one call (a torch
tensor with a JAX array, a numpy array or a dask array) is a TypeError naming
both, as mixing numpy and cupy is: gpuvec never moves data behind the caller's
back. A 0-d array of any library is a scalar, as a Python number is, beside
arrays of any kind.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from gpuvec._core.checks import scalar_by_protocol
from gpuvec._core.namespace import is_cupy_array, is_dask_array, is_foreign, to_native
from gpuvec._core.threads import num_threads_setting

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


def device_of(x: Any) -> Any:
    """``x.device`` (the array API's device attribute), or None where ``x`` has none.

    Older JAX spells it as a method, which is not a device: None there too.
    """
    device = getattr(x, "device", None)
    return None if callable(device) else device


def _on_device(x: Any, device: Any) -> Any:
    """``x`` on ``device`` by its library's own means (the array API's ``to_device``, else its namespace's
    ``asarray(..., device=)``); ``x`` itself where it is already there or cannot say where it is."""
    here = device_of(x)
    if device is None or here is None or here == device:
        return x
    if hasattr(x, "to_device"):
        return x.to_device(device)
    if hasattr(x, "__array_namespace__"):
        return x.__array_namespace__().asarray(x, device=device)
    return x


def back(result: Any, lib: str, device: Any = None) -> Any:
    """Every numpy/cupy array in ``result`` (arrays, tuples, named tuples) as an array of ``lib`` on ``device``.

    ``device`` is the caller's array's own device (``x.device``): DLPack knows only
    "host memory" or "CUDA device n", so a library's finer devices (array-api-strict's
    ``Device('device1')``, ...) are restored with its ``to_device``. None leaves
    the device ``from_dlpack`` chose.
    """
    if isinstance(result, np.ndarray) or is_cupy_array(result):
        if isinstance(result, np.ndarray) and not result.flags.writeable:
            result = result.copy()  # some producers refuse read-only exports
        return _on_device(_from_dlpack_of(lib)(result), device)
    if isinstance(result, tuple):
        items = [back(r, lib, device) for r in result]
        return type(result)(*items) if hasattr(result, "_fields") else tuple(items)
    return result


def _ndim(x: Any) -> int:
    """``x.ndim``; for a DLPack producer that has none, its numpy/cupy view's."""
    ndim = getattr(x, "ndim", None)
    if ndim is not None:
        return int(ndim)
    if is_foreign(x):
        return int(to_native(x).ndim)
    msg = f"{_type_name(x)} has no ndim"  # never: numpy/cupy arrays, the only others passed, have one
    raise TypeError(msg)


def _is_array(x: Any) -> bool:
    return is_foreign(x) or isinstance(x, np.ndarray) or is_cupy_array(x) or is_dask_array(x)


def _mixed(first: Any, other: Any) -> TypeError:
    """The TypeError for two arguments of different kinds, naming both as the caller passed them."""
    if is_dask_array(other):
        hint = (
            "to run on dask, pass both as dask arrays (dask.array.from_array(numpy.from_dlpack(x))); "
            "else call .compute() on the dask array yourself"
        )
    else:
        hint = "convert with your library's from_dlpack, or gpuvec.asarray"
    msg = (
        f"got both a {_type_name(first)} and a {_type_name(other)}: gpuvec never converts between array libraries "
        f"behind your back; pass arrays of one kind ({hint})"
    )
    return TypeError(msg)


def _check_one_kind(args: list[Any]) -> Any:
    """The foreign array that decides the call's kind (and device), or None; TypeError if kinds are mixed.

    0-d arrays of any library are scalars, as Python numbers are: they decide
    the kind only where no argument has axes (and dask arrays always count, as
    gpuvec never computes one to read a scalar). Foreign arrays of one library
    on two devices are mixed kinds too.
    """
    arrays = [a for a in args if _is_array(a)]
    shaped = [a for a in arrays if is_dask_array(a) or _ndim(a) != 0]
    deciding = shaped or [a for a in arrays if is_foreign(a)]
    foreign = [a for a in deciding if is_foreign(a)]
    if not foreign:
        return None
    first = foreign[0]
    other = next((a for a in deciding if not is_foreign(a) or library(a) != library(first)), None)
    if other is not None:
        raise _mixed(first, other)
    where = device_of(first)
    elsewhere = next((a for a in foreign if where is not None and device_of(a) not in (None, where)), None)
    if elsewhere is not None:
        msg = (
            f"got {_type_name(first)}s on two devices, {where} and {device_of(elsewhere)}: gpuvec never moves data "
            "between devices behind your back; move them to one device first (x.to_device(...))"
        )
        raise TypeError(msg)
    return first


def _native(x: Any) -> Any:
    """``to_native(x)``; a 0-d array whose dtype DLPack cannot carry here (bool on numpy < 1.25) as the Python
    number it holds; a TypeError that says so for a larger one."""
    try:
        return to_native(x)
    except BufferError as exc:
        if getattr(x, "ndim", None) == 0:
            return scalar_by_protocol(x)
        msg = f"a {_type_name(x)} of dtype {getattr(x, 'dtype', '?')} cannot be viewed through DLPack here ({exc})"
        raise TypeError(msg) from None


def dlpack_io(func: F) -> F:
    """Let ``func`` take DLPack arrays of another library and give its array results back as that library's.

    Results come back as the library of the caller's arrays, on their device
    (``x.device``). 0-d arrays of another library are taken as scalars (viewed as
    numpy or cupy 0-d arrays) beside arrays of any kind. Arguments without
    ``__dlpack__`` pass through untouched, so numpy and cupy calls take no detour.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        num_threads_setting()  # a bad GPUVEC_NUM_THREADS fails every public call, not only those that thread
        for v in (*args, *kwargs.values()):
            if is_foreign(v):
                break
        else:  # numpy, cupy, dask and plain arguments: no detour
            return func(*args, **kwargs)
        decider = _check_one_kind([*args, *kwargs.values()])
        args = tuple(_native(a) if is_foreign(a) else a for a in args)
        kwargs = {k: _native(v) if is_foreign(v) else v for k, v in kwargs.items()}
        result = func(*args, **kwargs)
        return result if decider is None else back(result, library(decider), device_of(decider))

    return wrapper  # type: ignore[return-value]
