"""The backend shim: the one module of gpuvec that imports cupy, besides the CUDA kernel modules
(``_*_cuda.py``, imported only on the cupy path).

gpuvec writes every algorithm once against an array namespace ``xp`` (numpy or
cupy) and an ``ndimage`` namespace (scipy.ndimage or cupyx.scipy.ndimage).
This module decides which pair is the default, finds the namespace of the
arrays a caller passes, and moves arrays between host and device only when
asked to.

The default is read from ``GPUVEC_BACKEND`` at its first use (not at import, so a bad
setting never breaks ``import gpuvec``):

``auto`` (or empty, or unset)
    cupy when it imports *and* a CUDA device answers a small computation,
    numpy otherwise. ``GPUVEC_REQUIRE_GPU=1`` turns that fallback into an
    error.
``numpy``
    numpy and scipy.ndimage; cupy is never imported.
``cupy``
    cupy and cupyx.scipy.ndimage, or :class:`BackendUnavailableError` saying
    why not. An explicit request never falls back silently.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import importlib
import os
import sys
import threading
import types
from collections.abc import Iterator
from typing import Any, Literal

import numpy as np

BackendName = Literal["numpy", "cupy"]
BACKENDS: tuple[str, ...] = ("auto", "numpy", "cupy")

__all__ = [
    "BackendInfo",
    "BackendUnavailableError",
    "asarray",
    "backend_info",
    "get_namespace",
    "is_cupy_namespace",
    "ndimage_for",
    "sync",
    "to_numpy",
    "use_backend",
]


class BackendUnavailableError(ImportError):
    """The requested backend cannot run on this machine; the message says why."""


@dataclasses.dataclass(frozen=True)
class BackendInfo:
    """What gpuvec runs on, and why.

    Attributes
    ----------
    name : {'numpy', 'cupy'}
        The default backend.
    reason : str
        One sentence saying why this backend was chosen.
    device : str or None
        The CUDA device's name (cupy only).
    device_memory : int or None
        The device's total memory in bytes (cupy only).
    versions : dict of str to str
        Versions of gpuvec, numpy, scipy and, where it imported, cupy and CUDA.
    """

    name: BackendName
    reason: str
    device: str | None = None
    device_memory: int | None = None
    versions: dict[str, str] = dataclasses.field(default_factory=dict)

    def __str__(self) -> str:
        lines = [f"backend: {self.name}", f"reason:  {self.reason}"]
        if self.device is not None:
            gib = (self.device_memory or 0) / 2**30
            lines.append(f"device:  {self.device} ({gib:.1f} GiB)")
        lines += [f"{k + ':':9}{v}" for k, v in self.versions.items()]
        return "\n".join(lines)


# --------------------------------------------------------------------------- cupy probe


@dataclasses.dataclass(frozen=True)
class _Probe:
    usable: bool
    reason: str
    device: str | None = None
    device_memory: int | None = None
    versions: dict[str, str] = dataclasses.field(default_factory=dict)


_probe_cache: _Probe | None = None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _probe_cupy() -> _Probe:
    """Import cupy and run a tiny computation on the device, once per process.

    ``import cupy`` succeeds on machines with no driver, and then every array
    operation raises (cudaErrorInsufficientDriver, cudaErrorNoDevice, ...): any
    exception here means "no usable device", and its text becomes the reason.
    """
    global _probe_cache
    if _probe_cache is not None:
        return _probe_cache
    try:
        cupy = importlib.import_module("cupy")
    except Exception as exc:  # ImportError, or a broken install raising anything
        reason = (
            "cupy is not installed"
            if isinstance(exc, ModuleNotFoundError) and exc.name == "cupy"
            else f"cupy failed to import: {_first_line(exc)}"
        )
        _probe_cache = _Probe(False, reason)
        return _probe_cache
    versions = {"cupy": cupy.__version__}
    try:
        count = cupy.cuda.runtime.getDeviceCount()
        if count < 1:
            raise RuntimeError("the CUDA runtime reports 0 devices")
        if int((cupy.arange(3) + 1).sum()) != 6:
            raise RuntimeError("a test computation on the device gave a wrong answer")
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        name = props["name"]
        name = name.decode() if isinstance(name, bytes) else str(name)
        versions["cuda runtime"] = str(cupy.cuda.runtime.runtimeGetVersion())
        _probe_cache = _Probe(
            True,
            f"cupy found CUDA device 0 ({name}) of {count}",
            device=name,
            device_memory=int(props["totalGlobalMem"]),
            versions=versions,
        )
    except Exception as exc:
        _probe_cache = _Probe(False, f"cupy imported but no CUDA device: {_first_line(exc)}", versions=versions)
    return _probe_cache


def cupy_usable() -> bool:
    """Whether cupy imports and a CUDA device answers (probes once, imports cupy)."""
    return _probe_cupy().usable


# --------------------------------------------------------------------------- default backend


@dataclasses.dataclass(frozen=True)
class _Backend:
    name: BackendName
    reason: str


def _resolve(requested: object, require_gpu: bool, source: str) -> _Backend:
    """The backend ``requested`` names; ``source`` is what messages call it ('GPUVEC_BACKEND' or 'name')."""
    choices = ", ".join(map(repr, BACKENDS))
    from_env = source == "GPUVEC_BACKEND"
    if not isinstance(requested, str):
        msg = f"{source} must be a str, one of {choices}; got {requested!r} of type {type(requested).__name__}"
        raise TypeError(msg)
    choice = requested.strip().lower() or "auto"
    if choice not in BACKENDS:
        fix = "unset it or set one of these" if from_env else "pass one of these"
        msg = f"{source} must be one of {choices} (case-insensitive); got {requested!r}: {fix}"
        raise ValueError(msg)
    asked = f"{source}={requested!r}" if from_env else f"use_backend({requested!r})"
    if choice == "numpy":
        return _Backend("numpy", f"{asked} asks for numpy")
    probe = _probe_cupy()
    if probe.usable:
        why = f"{asked} asks for cupy" if choice == "cupy" else "auto"
        return _Backend("cupy", f"{probe.reason} ({why})")
    install = " (pip install 'gpuvec[cuda12]' or 'gpuvec[cuda13]')" if probe.reason == "cupy is not installed" else ""
    if choice == "cupy":
        other = "unset GPUVEC_BACKEND" if from_env else "use 'auto' or 'numpy'"
        fix = f"run where a CUDA device answers{install}, or {other}"
        msg = f"{asked} asks for cupy, but {probe.reason}: {fix}"
        raise BackendUnavailableError(msg)
    if require_gpu:
        msg = (
            f"GPUVEC_REQUIRE_GPU=1 forbids falling back to numpy, but {probe.reason}: "
            f"run where a CUDA device answers{install}, or unset GPUVEC_REQUIRE_GPU"
        )
        raise BackendUnavailableError(msg)
    return _Backend("numpy", f"{probe.reason}; using numpy")


def _require_gpu() -> bool:
    """GPUVEC_REQUIRE_GPU as a flag: 1/true/yes/on, or 0/false/no/off/empty; anything else is an error."""
    value = os.environ.get("GPUVEC_REQUIRE_GPU", "").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    if value in {"", "0", "false", "no", "off"}:
        return False
    msg = (
        "GPUVEC_REQUIRE_GPU must be one of 1, true, yes, on (a GPU is required) or 0, false, no, off or "
        f"empty (numpy may be the fallback); got {value!r}"
    )
    raise ValueError(msg)


class _DefaultBackend:
    """The default backend: a :func:`use_backend` override, else ``GPUVEC_BACKEND`` read at first use.

    Read at first use, not at import, so that ``import gpuvec`` (and with it the ``gpuvec`` command)
    never fails on a bad ``GPUVEC_BACKEND`` or a missing GPU: the first call that needs the default
    raises instead (ValueError, or :class:`BackendUnavailableError` for an explicit cupy request or
    ``GPUVEC_REQUIRE_GPU=1``), and every later one, until the setting is fixed. Arrays never need the
    default: they run where they live.
    """

    def __init__(self) -> None:
        self._override: contextvars.ContextVar[_Backend | None] = contextvars.ContextVar("gpuvec_backend", default=None)
        self._from_env: _Backend | None = None

    def get(self) -> _Backend:
        override = self._override.get()
        if override is not None:
            return override
        if self._from_env is None:  # an error is not cached: it is raised again on every use
            self._from_env = _resolve(os.environ.get("GPUVEC_BACKEND", ""), _require_gpu(), "GPUVEC_BACKEND")
        return self._from_env

    def set(self, backend: _Backend) -> contextvars.Token:
        return self._override.set(backend)

    def reset(self, token: contextvars.Token) -> None:
        self._override.reset(token)


_default = _DefaultBackend()


def default_name() -> BackendName:
    """The name of the current default backend."""
    return _default.get().name


def use_backend(name: Literal["auto", "numpy", "cupy"]) -> contextlib.AbstractContextManager[types.ModuleType]:
    """Switch the default backend inside a ``with`` block.

    Parameters
    ----------
    name : {'auto', 'numpy', 'cupy'}
        The backend to use (case-insensitive); ``'cupy'`` raises :class:`BackendUnavailableError`
        where no device answers.

    Returns
    -------
    context : context manager
        Entering it yields ``xp``, the array namespace of that backend; leaving it restores the
        previous default.

    Raises
    ------
    TypeError
        If ``name`` is not a str.
    ValueError
        If ``name`` is not one of the choices.
    BackendUnavailableError
        If ``name`` is ``'cupy'`` (or ``'auto'`` under ``GPUVEC_REQUIRE_GPU=1``) and no CUDA device
        answers. All three are raised by the call itself, before any ``with``.

    Examples
    --------
    >>> import gpuvec
    >>> with gpuvec.use_backend("numpy") as xp:
    ...     xp.__name__
    'numpy'
    """
    backend = _resolve(name, _require_gpu(), "name")

    @contextlib.contextmanager
    def switch() -> Iterator[types.ModuleType]:
        token = _default.set(backend)
        try:
            yield default_xp()
        finally:
            _default.reset(token)

    return switch()


def _namespaces(name: BackendName) -> tuple[types.ModuleType, types.ModuleType]:
    if name == "cupy":
        return importlib.import_module("cupy"), importlib.import_module("cupyx.scipy.ndimage")
    return np, importlib.import_module("scipy.ndimage")


def default_xp() -> types.ModuleType:
    """The array namespace of the default backend (numpy or cupy)."""
    return _namespaces(default_name())[0]


def default_ndimage() -> types.ModuleType:
    """The ndimage namespace of the default backend (scipy's or cupyx's)."""
    return _namespaces(default_name())[1]


def backend_info() -> BackendInfo:
    """Describe the default backend: its name, why it was chosen, device and versions.

    Returns
    -------
    info : BackendInfo
        ``info.name`` is ``'numpy'`` or ``'cupy'``; ``info.reason`` is a sentence.

    Examples
    --------
    >>> import gpuvec
    >>> info = gpuvec.backend_info()
    >>> info.name in ("numpy", "cupy")
    True
    """
    import scipy

    from gpuvec._version import __version__

    current = _default.get()
    versions = {"gpuvec": __version__, "numpy": np.__version__, "scipy": scipy.__version__}
    device = memory = None
    if current.name == "cupy" or "cupy" in sys.modules:
        probe = _probe_cupy()
        versions.update(probe.versions)
        if current.name == "cupy":
            device, memory = probe.device, probe.device_memory
    return BackendInfo(current.name, current.reason, device, memory, versions)


# --------------------------------------------------------------------------- per-call dispatch


def _is_cupy_array(x: Any) -> bool:
    # Look at the type's module so that cupy is never imported to answer "no".
    return type(x).__module__.split(".")[0] in {"cupy", "cupyx"}


def _is_numpy_array(x: Any) -> bool:
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
        to :mod:`gpuvec._dask` before they get here).

    Examples
    --------
    >>> import numpy as np, gpuvec
    >>> gpuvec.get_namespace(np.zeros(3), 1.0).__name__
    'numpy'
    """
    numpy_arg = cupy_arg = None
    for x in arrays:
        if is_dask_array(x):
            raise _dask_refused(x)
        if _is_cupy_array(x):
            cupy_arg = cupy_arg if cupy_arg is not None else x
        elif _is_numpy_array(x):
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
    return _namespaces("cupy" if is_cupy_namespace(xp) else "numpy")[1]


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
    x = to_native(x) if _is_foreign(x) else x
    like = to_native(like) if _is_foreign(like) else like
    xp = get_namespace(like) if like is not None else default_xp()
    if is_cupy_namespace(xp):
        return xp.asarray(x, dtype=dtype)
    return np.asarray(to_numpy(x), dtype=dtype)


# __dlpack_device__()[0]: where the data is (the DLPack spec's DLDeviceType)
_HOST_DEVICES = {1, 3}  # kDLCPU, kDLCUDAHost
_CUDA_DEVICES = {2, 13}  # kDLCUDA, kDLCUDAManaged


def _is_foreign(x: Any) -> bool:
    """An array of another library that speaks DLPack (not numpy, cupy or dask)."""
    if isinstance(x, (np.ndarray, np.generic)) or _is_cupy_array(x) or type(x).__module__.split(".")[0] == "dask":
        return False
    return hasattr(x, "__dlpack__") and hasattr(x, "__dlpack_device__") and not isinstance(x, type)


def to_native(x: Any) -> Any:
    """A DLPack array of another library (torch, JAX, ...) as numpy (host memory) or cupy (CUDA memory), without a copy.

    Examples
    --------
    >>> import numpy as np
    >>> class Producer:  # any object with the two DLPack methods
    ...     def __init__(self, a): self.a = a
    ...     def __dlpack__(self, **kw): return self.a.__dlpack__(**kw)
    ...     def __dlpack_device__(self): return self.a.__dlpack_device__()
    >>> from gpuvec._backend import to_native
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
    x = to_native(x) if _is_foreign(x) else x
    if _is_cupy_array(x):
        return x.get()
    return np.asarray(x)


# --------------------------------------------------------------------------- per-backend tuning

_blas_lock = threading.Lock()
_blas_users = 0
_blas_limit: Any = None


@contextlib.contextmanager
def blas_one_thread() -> Iterator[None]:
    """BLAS at one thread while any gpuvec task of this process runs (threadpoolctl).

    The one BLAS limiter of gpuvec: dask tasks and mixture fits called from a
    thread pool use it, so that N pool threads use N cores, not N x cores.
    Reference-counted across threads: the first task to enter sets the limit,
    the last to leave restores what was there, so concurrent tasks of dask's
    threaded scheduler never undo each other's limit. threadpoolctl lets only
    one Python thread set OpenBLAS's (process-wide) thread count and ignores
    the others; the first and the last task take that control for their set
    and restore, under the same lock, and give it up again.

    Examples
    --------
    >>> with blas_one_thread():
    ...     pass
    """
    global _blas_users, _blas_limit
    with _blas_lock:
        if _blas_users == 0:
            try:  # a fresh controller (~1 ms) sees BLAS libraries loaded since the last task
                threadpoolctl = importlib.import_module("threadpoolctl")
            except ImportError:
                threadpoolctl = None
            if threadpoolctl is not None:
                _release_openblas(threadpoolctl)
                _blas_limit = threadpoolctl.ThreadpoolController().limit(limits=1, user_api="blas")
                _release_openblas(threadpoolctl)
        _blas_users += 1
    try:
        yield
    finally:
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0 and _blas_limit is not None:
                threadpoolctl = importlib.import_module("threadpoolctl")
                _release_openblas(threadpoolctl)
                _blas_limit.restore_original_limits()
                _release_openblas(threadpoolctl)
                _blas_limit = None


def _release_openblas(threadpoolctl: types.ModuleType) -> None:
    """Let the calling thread set OpenBLAS's thread count (threadpoolctl >= 3.6 binds it to one thread)."""
    controller = getattr(threadpoolctl, "OpenBLASController", None)
    if controller is not None and hasattr(controller, "clear_controlling_thread"):
        controller.clear_controlling_thread(force=True)


# Elements per chunk, by (what, backend). The algorithm modules ask :func:`chunk_elements`
# and never branch on the backend for a size. Each figure was measured (benchmarks/RESULTS.md):
_CHUNK_ELEMENTS: dict[str, tuple[int, int]] = {
    #                      numpy     cupy
    # Largest per-chunk temporary of the EM pass (B x n x max(K, D) x D elements): ~8 MB keeps a
    # 2-core CPU's temporaries in cache; the GPU wants few launches (2**20 was 2x slower on an H200).
    "mixture": (1 << 20, 1 << 24),
    # Matrices per chunk of the rotation checks: the nine entry rows of a CPU chunk stay in cache.
    "rotations": (1 << 12, 1 << 20),
    # Rows x columns per block of the ray loops: the blocked numpy loop keeps a dozen float64 rows
    # of the image width in cache (256 KiB); the GPU fallbacks take large blocks.
    "rays_block": (1 << 15, 1 << 24),
    # Points per map_coordinates call on the general ray paths (any order, any mode, dense rays).
    "rays_points": (1 << 21, 1 << 21),
}


def chunk_elements(xp: types.ModuleType, what: str) -> int:
    """How many elements one chunk of ``what`` should hold on the backend of ``xp``.

    Examples
    --------
    >>> import numpy as np
    >>> chunk_elements(np, "rotations")
    4096
    """
    numpy_size, cupy_size = _CHUNK_ELEMENTS[what]
    return cupy_size if is_cupy_namespace(xp) else numpy_size


_JIT_WORDS = {
    "": "auto",
    "auto": "auto",
    "1": "on",
    "true": "on",
    "on": "on",
    "yes": "on",
    "0": "off",
    "false": "off",
    "off": "off",
    "no": "off",
}


def compiled_setting() -> Literal["auto", "on", "off"]:
    """``GPUVEC_JIT`` as one of three settings for the compiled implementations.

    ``auto`` (unset or empty): compiled code runs where it pays; on the CPU the
    numba loops take work large enough to repay numba's one-time load in a new
    process (about half a second), or any work once they are loaded. ``on``
    (``1``/``true``/``yes``): always, where an implementation exists. ``off``
    (``0``/``false``/``no``): never; the namespace reference runs, on either
    backend. Read on every call, so tests and benchmarks can switch it.

    Raises
    ------
    ValueError
        If ``GPUVEC_JIT`` holds anything else.

    Examples
    --------
    >>> compiled_setting() in ("auto", "on", "off")
    True
    """
    value = os.environ.get("GPUVEC_JIT", "").strip().lower()
    if value in _JIT_WORDS:
        return _JIT_WORDS[value]  # type: ignore[return-value]
    msg = (
        "GPUVEC_JIT must be one of auto or empty (compiled paths where they pay), 1, true, on, yes (always) "
        f"or 0, false, off, no (never); got {value!r}"
    )
    raise ValueError(msg)


def compiled_enabled() -> bool:
    """Whether compiled implementations may run at all (``GPUVEC_JIT`` is not off); see :func:`compiled_setting`.

    Examples
    --------
    >>> compiled_enabled() == (compiled_setting() != "off")
    True
    """
    return compiled_setting() != "off"


def sync() -> None:
    """Wait until the GPU has finished all queued work; a no-op without cupy.

    Examples
    --------
    >>> import gpuvec
    >>> gpuvec.sync()
    """
    if "cupy" in sys.modules and _probe_cache is not None and _probe_cache.usable:
        sys.modules["cupy"].cuda.runtime.deviceSynchronize()
