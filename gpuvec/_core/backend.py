"""The backend: the one module of gpuvec that imports cupy, besides the CUDA kernel modules
(each algorithm's ``_cuda.py``, imported only on the cupy path).

gpuvec writes every algorithm once against an array namespace ``xp`` (numpy or
cupy) and an ``ndimage`` namespace (scipy.ndimage or cupyx.scipy.ndimage).
This module probes for a usable GPU and decides which pair is the default; the
namespace of the arrays a caller passes is found per call
(:mod:`gpuvec._core.namespace`).

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
import types
from collections.abc import Iterator
from typing import Literal

import numpy as np

BackendName = Literal["numpy", "cupy"]
BACKENDS: tuple[str, ...] = ("auto", "numpy", "cupy")

__all__ = [
    "BackendInfo",
    "BackendUnavailableError",
    "backend_info",
    "cupy_usable",
    "default_name",
    "default_ndimage",
    "default_xp",
    "namespaces",
    "sync",
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

    def set(self, backend: _Backend) -> contextvars.Token[_Backend | None]:
        return self._override.set(backend)

    def reset(self, token: contextvars.Token[_Backend | None]) -> None:
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


def namespaces(name: BackendName) -> tuple[types.ModuleType, types.ModuleType]:
    if name == "cupy":
        return importlib.import_module("cupy"), importlib.import_module("cupyx.scipy.ndimage")
    return np, importlib.import_module("scipy.ndimage")


def special_for(xp: types.ModuleType) -> types.ModuleType:
    """``scipy.special``, or ``cupyx.scipy.special`` for cupy: digamma, gammaln, betaln on ``xp``'s arrays."""
    return importlib.import_module("cupyx.scipy.special" if xp.__name__ == "cupy" else "scipy.special")


def default_xp() -> types.ModuleType:
    """The array namespace of the default backend (numpy or cupy)."""
    return namespaces(default_name())[0]


def default_ndimage() -> types.ModuleType:
    """The ndimage namespace of the default backend (scipy's or cupyx's)."""
    return namespaces(default_name())[1]


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


def sync() -> None:
    """Wait until the GPU has finished all queued work; a no-op without cupy.

    Examples
    --------
    Time GPU work with it: cupy returns before the device has finished.

    >>> import gpuvec
    >>> x = gpuvec.xp.ones((1000, 1000))  # on the GPU where cupy is the default backend
    >>> total = x.sum()  # queued on the device
    >>> gpuvec.sync()  # the sum has now run: time here
    >>> float(total)
    1000000.0
    """
    if "cupy" in sys.modules and _probe_cache is not None and _probe_cache.usable:
        sys.modules["cupy"].cuda.runtime.deviceSynchronize()
