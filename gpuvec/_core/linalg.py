"""Batched linear algebra that reports failures per matrix instead of for the whole stack."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np


def batched_cholesky(xp: Any, A: Any) -> tuple[Any, Any]:
    """Lower Cholesky factors of a (..., d, d) stack, and which ones succeeded.

    numpy raises LinAlgError for the whole stack if one matrix fails; cupy (by
    default) returns unchecked output. Here every matrix gets a factor (the
    identity where it failed) and ``ok`` (shape (...)) says which are real:
    finite, and ``L L^T`` reproducing ``A`` to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> L, ok = batched_cholesky(np, np.stack([np.eye(2) * 4, [[1.0, 2.0], [2.0, 1.0]]]))
    >>> L[0].tolist(), ok.tolist()
    ([[2.0, 0.0], [0.0, 2.0]], [True, False])
    """
    d = A.shape[-1]
    try:
        L = xp.linalg.cholesky(A)
    except np.linalg.LinAlgError:  # numpy: find the failures one by one (the rare path)
        flat = A.reshape(-1, d, d)
        L = xp.full_like(flat, xp.nan)
        for i in range(flat.shape[0]):
            with contextlib.suppress(np.linalg.LinAlgError):
                L[i] = xp.linalg.cholesky(flat[i])
        L = L.reshape(A.shape)
    with np.errstate(invalid="ignore", over="ignore"):
        scale = xp.abs(A).max(axis=(-1, -2)) if A.size else xp.zeros(A.shape[:-2])
        resid = xp.abs(xp.matmul(L, xp.swapaxes(L, -1, -2)) - A).max(axis=(-1, -2)) if A.size else scale
        ok = xp.isfinite(L).all(axis=(-1, -2)) & (resid <= 1e3 * d * np.finfo(np.float64).eps * scale)
    L = xp.where(ok[..., None, None], L, xp.eye(d, dtype=A.dtype))
    return L, ok
