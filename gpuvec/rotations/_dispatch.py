"""Which implementation of the rotation checks runs: the one place that decides.

================  =======  =====================================  =================
matrices          backend  ``GPUVEC_JIT`` unset or on             ``GPUVEC_JIT=0``
================  =======  =====================================  =================
3x3               cupy     ``_cuda`` (one fused kernel)           ``_xp``
3x3               numpy    ``_xp`` (closed form, cache-sized      ``_xp``
                           chunks)
any other n       either   ``_xp`` (closed form for 2x2, matmul   ``_xp``
                           and ``linalg.det`` beyond)
================  =======  =====================================  =================

There is no numba loop for the checks: on the CPU the closed forms run on rows
of entries, chunk by chunk; the CUDA kernel takes the whole stack in one launch.

``nearest_rotation`` chooses in :func:`nearest`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import gpuvec.rotations._xp as _xp
from gpuvec._core.dispatch import NUMBA_PAYS_MATRICES, compiled_enabled, compiled_setting
from gpuvec._core.namespace import is_cupy_namespace

__all__ = ["nearest", "residual_chunks"]


def residual_chunks(xp: Any, R: Any) -> Iterator[tuple[Any, Any, Any]]:
    """(index, orthogonality error, determinant) per chunk of the flattened stack ``R`` (..., n, n).

    The index selects the chunk's entries in the flattened batch.
    """
    n = R.shape[-1]
    flat = R.reshape((math.prod(R.shape[:-2]), n, n))  # not -1: a stack of 0x0 matrices has size 0
    if is_cupy_namespace(xp) and n == 3 and compiled_enabled():
        from gpuvec.rotations import _cuda  # lazy: cupy's kernels load only on this path

        yield (slice(None), *_cuda.residuals_3x3(flat, R.dtype))
        return
    yield from _xp.residual_chunks(xp, flat)


def nearest(xp: Any, M: Any, matrices: int | None = None) -> Any:
    """The nearest proper rotations of a validated (..., n, n) stack M (float32 or float64).

    ``matrices``: the size of the whole call M is a block of (default: M's), which decides with
    ``GPUVEC_JIT`` alone, so that a call's result never depends on what the process ran before.

    ================  =======  ==========================================  =================
    matrices          backend  ``GPUVEC_JIT`` unset or on                  ``GPUVEC_JIT=0``
    ================  =======  ==========================================  =================
    3x3, det > 0      numpy    ``_numba`` (Newton's polar iteration; auto:  ``_xp``
                               stacks from ``NUMBA_PAYS_MATRICES``)
    any other         either   ``_xp`` (batched SVD)                       ``_xp``
    ================  =======  ==========================================  =================

    Newton's iteration leaves a matrix it did not settle (det <= 0: a reflection to undo, or no
    convergence) to the SVD.
    """
    n, batch = M.shape[-1], math.prod(M.shape[:-2])
    setting = compiled_setting()
    pays = setting == "on" or (setting == "auto" and (batch if matrices is None else matrices) >= NUMBA_PAYS_MATRICES)
    if is_cupy_namespace(xp) or n != 3 or not pays:
        return _xp.nearest(xp, M)
    from gpuvec.rotations import _numba  # lazy: numba loads only on this path

    R, ok = _numba.nearest_3x3(M.reshape(batch, 3, 3))
    R = R.astype(M.dtype, copy=False)
    if not bool(ok.all()):  # det <= 0 (a reflection to undo) or no convergence: the SVD for those
        R[~ok] = _xp.nearest(xp, M.reshape(batch, 3, 3)[~ok])
    return R.reshape(M.shape)
