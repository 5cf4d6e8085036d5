"""Per-call namespaces and transfers: which library the caller's arrays live in, and moving them.

Every public function looks its namespace up once, from its array arguments
(:func:`get_namespace`): numpy in, numpy out; cupy in, cupy out; mixing them is
a TypeError, never a silent copy. :func:`asarray` and :func:`to_numpy` are the
only helpers that move data between host and device, and only when called.
Arrays of other libraries that speak DLPack (torch, JAX, ...) are viewed as
numpy or cupy by their device (:func:`to_native`). Nothing here imports cupy:
a cupy array's module is ``sys.modules["cupy"]``, already imported by its maker.
"""

from __future__ import annotations

import sys
import types
from typing import Any

import numpy as np

from gpuvec._core.backend import _probe_cupy, default_xp, namespaces

__all__ = [
    "asarray",
    "get_namespace",
    "is_cupy_array",
    "is_cupy_namespace",
    "is_dask_array",
    "is_foreign",
    "is_numpy_array",
    "ndimage_for",
    "to_native",
    "to_numpy",
]


def is_cupy_array(x: Any) -> bool:
    # Look at the type's module so that cupy is never imported to answer "no".
    return type(x).__module__.split(".")[0] in {"cupy", "cupyx"}


def is_numpy_array(x: Any) -> bool:
    return isinstance(x, (np.ndarray, np.generic))


def is_dask_array(x: Any) -> bool:
    """Whether ``x`` is a ``dask.array.Array`` (looked up by its type's module: dask is never imported here).

    Examples
    --------
    >>> import numpy as np
    >>> is_dask_array(np.zeros(3))
    False
    """
    return type(x).__module__.split(".")[0] == "dask" and hasattr(x, "__dask_graph__") and hasattr(x, "chunks")


def _dask_refused(x: Any) -> TypeError:
    """The error for a dask array reaching code that would otherwise compute it into memory."""
    msg = (
        f"got a {type(x).__module__}.{type(x).__name__}: gpuvec never computes a dask array into memory behind "
        "your back. ray_max, is_rotation, rotation_residuals, nearest_rotation and gpuvec.random's normal and "
        "multivariate_normal take dask arrays themselves and return dask arrays (install the extra: "
        "pip install 'gpuvec[dask]'); elsewhere, call .compute() yourself if the array fits in memory"
    )
    return TypeError(msg)


def get_namespace(*arrays: Any) -> types.ModuleType:
    """The array namespace (numpy or cupy) that the given arrays live in.

    Parameters
    ----------
    *arrays : array_like
        numpy arrays, cupy arrays, Python scalars, lists or tuples, or None.
        Scalars, lists and tuples follow the default backend.

    Returns
    -------
    xp : module
        ``numpy`` or ``cupy``.

    Raises
    ------
    TypeError
        If numpy and cupy arrays are mixed, or for a dask array (never
        computed here: the public functions that take dask arrays route them
        to their dask paths before they get here).

    Examples
    --------
    >>> import numpy as np, gpuvec
    >>> gpuvec.get_namespace(np.zeros(3), 1.0).__name__
    'numpy'
    """
    numpy_arg = cupy_arg = None
    for x in arrays:
        if type(x) is np.ndarray:  # the common case first, without the module lookups (~1.5 us an array)
            numpy_arg = numpy_arg if numpy_arg is not None else x
            continue
        if is_dask_array(x):
            raise _dask_refused(x)
        if is_cupy_array(x):
            cupy_arg = cupy_arg if cupy_arg is not None else x
        elif is_numpy_array(x):
            numpy_arg = numpy_arg if numpy_arg is not None else x
    if cupy_arg is not None and numpy_arg is not None:
        msg = (
            f"got both a {type(numpy_arg).__module__}.{type(numpy_arg).__name__} and a "
            f"{type(cupy_arg).__module__}.{type(cupy_arg).__name__}: gpuvec never copies between "
            "host and device behind your back; move one of them first with "
            "gpuvec.asarray(x, like=other) or gpuvec.to_numpy(x)"
        )
        raise TypeError(msg)
    if cupy_arg is not None:
        return sys.modules["cupy"]
    if numpy_arg is not None:
        return np
    return default_xp()


def is_cupy_namespace(xp: types.ModuleType) -> bool:
    """Whether ``xp`` is cupy (without importing cupy)."""
    return xp.__name__ == "cupy"


def ndimage_for(xp: types.ModuleType) -> types.ModuleType:
    """scipy.ndimage for numpy, cupyx.scipy.ndimage for cupy."""
    return namespaces("cupy" if is_cupy_namespace(xp) else "numpy")[1]


def asarray(x: Any, dtype: Any = None, like: Any = None) -> Any:
    """Convert ``x`` to an array of the default backend, or of the backend of ``like``.

    This is the one helper that moves data between host and device, and only
    when you call it.

    Parameters
    ----------
    x : array_like
        numpy array, cupy array, scalar, nested sequence, or an array of
        another library that speaks DLPack (torch, JAX, ...: viewed without a
        copy on its device, then moved only if ``like`` asks for the other one).
    dtype : dtype, optional
        Data type of the result.
    like : array, optional
        Put the result in this array's namespace (a DLPack array counts as numpy
        or cupy by its device); default: the default backend.

    Returns
    -------
    array : numpy.ndarray or cupy.ndarray
        ``x`` in the chosen namespace (not copied where it is already an
        array of that namespace and dtype).

    Examples
    --------
    >>> import numpy as np, gpuvec
    >>> gpuvec.asarray([1, 2], like=np.zeros(1)).dtype.name
    'int64'
    """
    x = to_native(x) if is_foreign(x) else x
    like = to_native(like) if is_foreign(like) else like
    xp = get_namespace(like) if like is not None else default_xp()
    if is_cupy_namespace(xp):
        return xp.asarray(x, dtype=dtype)
    return np.asarray(to_numpy(x), dtype=dtype)


# __dlpack_device__()[0]: where the data is (the DLPack spec's DLDeviceType)
_HOST_DEVICES = {1, 3}  # kDLCPU, kDLCUDAHost
_CUDA_DEVICES = {2, 13}  # kDLCUDA, kDLCUDAManaged


_PLAIN = frozenset({type(None), bool, int, float, complex, str, tuple, list, dict, np.ndarray})


_OURS: dict[type, bool] = dict.fromkeys(_PLAIN, True)


def is_foreign(x: Any) -> bool:
    """An array of another library that speaks DLPack (not numpy, cupy or dask). Whether a type is one of
    ours is decided once per type (every public call asks about every argument); the protocol's methods are
    looked up on the object itself."""
    kind = type(x)
    ours = _OURS.get(kind)
    if ours is None:
        if len(_OURS) > 1024:  # classes made on the fly (mocks) would grow it without end
            _OURS.clear()
            _OURS.update(dict.fromkeys(_PLAIN, True))
        ours = (
            issubclass(kind, (np.ndarray, np.generic, type))
            or is_cupy_array(x)
            or kind.__module__.split(".")[0] == "dask"
        )
        _OURS[kind] = ours
    return not ours and hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__")


def to_native(x: Any) -> Any:
    """A DLPack array of another library (torch, JAX, ...) as numpy (host memory) or cupy (CUDA memory), without a copy.

    Examples
    --------
    >>> import numpy as np
    >>> class Producer:  # any object with the two DLPack methods
    ...     def __init__(self, a): self.a = a
    ...     def __dlpack__(self, **kw): return self.a.__dlpack__(**kw)
    ...     def __dlpack_device__(self): return self.a.__dlpack_device__()
    >>> from gpuvec._core.namespace import to_native
    >>> to_native(Producer(np.arange(3.0)))
    array([0., 1., 2.])
    """
    device = int(x.__dlpack_device__()[0])
    if device in _HOST_DEVICES:
        return np.from_dlpack(x)
    if device in _CUDA_DEVICES:
        probe = _probe_cupy()
        if not probe.usable:
            kind = f"{type(x).__module__}.{type(x).__name__}"
            msg = f"got a {kind} on a CUDA device, but gpuvec cannot use cupy here: {probe.reason}"
            raise TypeError(msg)
        return sys.modules["cupy"].from_dlpack(x)
    kind = f"{type(x).__module__}.{type(x).__name__}"
    msg = f"got a {kind} on DLPack device type {device}; gpuvec runs on host memory (numpy) or CUDA (cupy)"
    raise TypeError(msg)


def to_numpy(x: Any) -> Any:
    """Return ``x`` as a numpy array, copying from the device for cupy arrays.

    Parameters
    ----------
    x : array_like
        numpy or cupy array, a DLPack array of another library, a scalar or a
        nested sequence.

    Returns
    -------
    array : numpy.ndarray
        ``x`` itself for a numpy array; a host copy of a device array.

    Examples
    --------
    >>> import gpuvec
    >>> gpuvec.to_numpy([1.5, 2.5])
    array([1.5, 2.5])
    """
    x = to_native(x) if is_foreign(x) else x
    if is_cupy_array(x):
        return x.get()
    return np.asarray(x)
