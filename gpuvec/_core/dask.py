"""What every algorithm's dask path (its ``_dask.py``) shares: dask in, dask out.

Imported only when a public function is handed a dask array
(:func:`gpuvec._core.namespace.is_dask_array` answers without importing dask).
Every algorithm's dask module builds a lazy graph and returns dask arrays whose
chunks have the input's type (numpy or cupy, taken from the input's ``_meta``):
nothing is computed there, and gpuvec never starts a cluster. Whatever
scheduler is active when the user computes runs the tasks: dask's threaded
scheduler by default, or the active ``distributed.Client``.

Every task runs gpuvec's in-memory function on its blocks with BLAS at one
thread (:func:`in_block`, :func:`~gpuvec._core.threads.blas_limited` with
``always=True``): OpenBLAS's threads on top of dask's threads made an EM pass
3.5x slower, and a per-task ``threadpool_limits`` does not work, since the
setting is process-wide and concurrent tasks would undo each other.
"""

from __future__ import annotations

import importlib
import math
import types
from typing import Any

import numpy as np

from gpuvec._core.namespace import get_namespace, is_cupy_array
from gpuvec._core.threads import blas_limited

__all__ = ["INSTALL", "check_known_shape", "chunk_namespace", "in_block", "meta_of", "require_dask"]

INSTALL = "pip install 'gpuvec[dask]'"


def require_dask() -> types.ModuleType:
    """``dask.array``, or a TypeError naming the ``gpuvec[dask]`` extra when it cannot be imported."""
    try:
        return importlib.import_module("dask.array")
    except ImportError as exc:
        msg = (
            f"gpuvec got a dask array, but dask.array cannot be imported ({exc}): install the extra with {INSTALL} "
            "(dask[array], distributed, zarr, threadpoolctl)"
        )
        raise TypeError(msg) from None


def chunk_namespace(x: Any, name: str) -> types.ModuleType:
    """numpy or cupy: the namespace of the chunks of dask array ``x`` (from its ``_meta``), or a TypeError."""
    meta = getattr(x, "_meta", None)
    if not (isinstance(meta, np.ndarray) or is_cupy_array(meta)):
        kind = f"{type(meta).__module__}.{type(meta).__name__}"
        msg = f"{name} must be a dask array of numpy or cupy chunks; its chunks are {kind}"
        raise TypeError(msg)
    return get_namespace(meta)


def meta_of(xp: types.ModuleType, ndim: int, dtype: Any) -> Any:
    """An empty array of ``xp``, ``ndim`` and ``dtype``: the ``meta=`` that keeps the chunk type."""
    return xp.empty((0,) * ndim, dtype=dtype)


def check_known_shape(x: Any, name: str) -> None:
    """A ValueError naming ``x`` when its chunk sizes are unknown (NaN in its shape)."""
    if any(math.isnan(n) for n in x.shape):
        msg = f"{name} has unknown chunk sizes (shape {x.shape}); call {name}.compute_chunk_sizes() first"
        raise ValueError(msg)


def in_block(func: Any, *args: Any, **kwargs: Any) -> Any:
    """One block through gpuvec's in-memory function, BLAS at one thread."""
    with blas_limited(always=True):
        return func(*args, **kwargs)
