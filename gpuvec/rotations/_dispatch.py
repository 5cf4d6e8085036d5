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

There is no numba loop for the rotation checks: on the CPU the closed forms
run on rows of entries, chunk by chunk; the CUDA kernel takes the whole stack
in one launch.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

from gpuvec._core.dispatch import compiled_enabled
from gpuvec._core.namespace import is_cupy_namespace
from gpuvec.rotations import _xp

__all__ = ["residual_chunks"]


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
