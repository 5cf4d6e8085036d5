"""numba's decorator for gpuvec's compiled loops: cached on disk where numba can, uncached where it cannot.

Every ``_numba`` module compiles its loops with :func:`cached_njit`, so that a new
process loads the machine code from numba's on-disk cache instead of compiling.
numba refuses ``cache=True`` outright (``RuntimeError: cannot cache function ...:
no locator available``) when none of its cache locations is writable: a read-only
install in a container, with no writable ``__pycache__`` beside the module, no
writable user cache directory and no ``NUMBA_CACHE_DIR``. There the loops are
compiled without the cache (the same machine code, compiled again in every new
process) and one RuntimeWarning per process says so and how to fix it. Imported
only by the ``_numba`` modules, so numba loads only on their paths.
"""

from __future__ import annotations

import sys
import threading
import types
import warnings
from collections.abc import Callable
from typing import Any

import numba

__all__ = ["cached_njit"]

_warned = False
_INSIDE = ("gpuvec", "importlib", "_frozen_importlib")
_lock = threading.Lock()


def cached_njit(**options: Any) -> Callable[[Callable[..., Any]], Any]:
    """``numba.njit(cache=True, **options)``, or ``numba.njit(**options)`` (one warning) where numba cannot cache.

    Only for functions of a module file (numba caches nothing defined in a session or a doctest).

    Examples
    --------
    >>> decorate = cached_njit(nogil=True)  # as gpuvec's _numba modules use it: @cached_njit(nogil=True)
    >>> callable(decorate)
    True
    """

    def decorate(fn: Callable[..., Any]) -> Any:
        try:
            return numba.njit(cache=True, **options)(fn)
        except RuntimeError as exc:  # numba decides where to cache as it decorates, and raises if nowhere
            if "cannot cache" not in str(exc):
                raise
            _warn_uncached(exc)
            return numba.njit(**options)(fn)

    return decorate


def _warn_uncached(exc: Exception) -> None:
    """One RuntimeWarning per process, however many loops numba cannot cache."""
    global _warned
    with _lock:
        if _warned:
            return
        _warned = True
    # The user's line: past gpuvec's frames and the import machinery of the lazy import that decorates the
    # loops (warnings.warn skips importlib's frames itself, so they are not counted).
    frame: types.FrameType | None = sys._getframe(1)
    level = 2
    while frame is not None and (name := frame.f_globals.get("__name__", "")).split(".")[0] in _INSIDE:
        frame, level = frame.f_back, level + ("importlib" not in name)
    warnings.warn(
        f"numba cannot cache gpuvec's compiled loops ({exc}): no cache directory is writable (a read-only "
        "install?). They run uncached, compiled again in every new process (seconds each time); set "
        "NUMBA_CACHE_DIR to a writable directory to cache them.",
        RuntimeWarning,
        stacklevel=level,
    )
