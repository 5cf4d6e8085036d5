"""Dask in, dask out for the rotation checks: one task per block of matrices.

Imported only when a public function of :mod:`gpuvec.rotations` is handed a
dask array. Blockwise over the batch axes (``map_blocks``); the matrix axes
must be one chunk each and are rechunked so when they are not. Each block
runs the in-memory function (passed in as ``func``) with BLAS at one thread,
so every value equals the in-memory call's.
"""

from __future__ import annotations

import math
import types
from typing import Any

import numpy as np

from gpuvec._core.checks import check_matrix_stack, check_real
from gpuvec._core.dask import check_known_shape, chunk_namespace, in_block, meta_of, require_dask
from gpuvec._core.namespace import get_namespace
from gpuvec._core.threads import blas_limited

__all__ = ["is_rotation", "nearest_rotation", "rotation_residuals"]


def _matrix_stack(R: Any, name: str) -> tuple[types.ModuleType, Any, np.dtype[Any]]:
    """Chunk namespace, the stack with single-chunk matrix axes, and the dtype results come in."""
    require_dask()
    xp = chunk_namespace(R, name)
    check_matrix_stack(name, R)
    check_known_shape(R, name)
    if R.numblocks[-1] > 1 or R.numblocks[-2] > 1:  # every matrix whole in one block
        R = R.rechunk({R.ndim - 2: -1, R.ndim - 1: -1})
    work: np.dtype[Any]
    if R.dtype.kind != "f":
        work = np.dtype(np.float64)
    elif R.dtype.itemsize < 4:
        work = np.dtype(np.float32)
    else:
        work = R.dtype.newbyteorder("=")
    return xp, R, work


def _residuals_block(func: Any, R: Any) -> Any:
    with blas_limited(always=True):
        res = func(R)
    xp = get_namespace(res.orthogonality)
    return xp.stack([res.orthogonality, res.det], axis=-1)


def is_rotation(R: Any, func: Any, *, atol: float | None = None, proper: bool = True) -> Any:
    """:func:`gpuvec.is_rotation` (``func``, run on each block) on a dask stack: a dask bool array."""
    xp, R, _ = _matrix_stack(R, "R")
    if atol is not None:
        atol = check_real("atol", atol)
        if atol < 0:
            msg = f"atol must be >= 0; got {atol}"
            raise ValueError(msg)
    batch = R.ndim - 2
    da = require_dask()
    return da.map_blocks(
        in_block,
        func,
        R,
        atol=atol,
        proper=proper,
        drop_axis=(batch, batch + 1),
        dtype=bool,
        meta=meta_of(xp, batch, bool),
    )


def rotation_residuals(R: Any, func: Any) -> tuple[Any, Any]:
    """:func:`gpuvec.rotation_residuals` (``func``) on a dask stack: (orthogonality, det), from one task per block."""
    xp, R, work = _matrix_stack(R, "R")
    batch = R.ndim - 2
    da = require_dask()
    both = da.map_blocks(
        _residuals_block,
        func,
        R,
        drop_axis=batch + 1,
        chunks=R.chunks[:batch] + ((2,),),
        dtype=work,
        meta=meta_of(xp, batch + 1, work),
    )
    return both[..., 0], both[..., 1]


def nearest_rotation(M: Any, func: Any) -> Any:
    """:func:`gpuvec.nearest_rotation` (``func``) on a dask stack: one task per block, a dask array of M's chunks."""
    xp, M, work = _matrix_stack(M, "M")
    da = require_dask()
    # every block makes the whole call's choice of method (Newton or SVD: equal only to rounding)
    matrices = math.prod(M.shape[:-2])
    return da.map_blocks(in_block, func, M, matrices=matrices, dtype=work, meta=meta_of(xp, M.ndim, work))


