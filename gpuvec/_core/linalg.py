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
    finite, and (on cupy, where nothing raised) ``L L^T`` reproducing ``A`` to
    rounding.

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
    if xp is np:  # LAPACK raised for every matrix that is not positive definite: what is left is exact to rounding
        # (a NaN or inf anywhere in a row of the lower triangle reaches that row's pivot, which potrf rejects;
        # failed matrices are NaN): the diagonal says it
        ok = np.isfinite(np.diagonal(L, axis1=-2, axis2=-1)).all(axis=-1)
        return _identity_where_failed(xp, L, ok), ok
    # cupy returns what potrf left for a failed matrix: check that L L^T reproduces A (a GEMM, cheap there)
    with np.errstate(invalid="ignore", over="ignore"):
        scale = xp.abs(A).max(axis=(-1, -2)) if A.size else xp.zeros(A.shape[:-2])
        resid = xp.abs(xp.matmul(L, xp.swapaxes(L, -1, -2)) - A).max(axis=(-1, -2)) if A.size else scale
        ok = xp.isfinite(L).all(axis=(-1, -2)) & (resid <= 1e3 * d * np.finfo(np.float64).eps * scale)
    return _identity_where_failed(xp, L, ok), ok


def _identity_where_failed(xp: Any, L: Any, ok: Any) -> Any:
    """L with the identity in place of each failed factor (in place: no copy of a large stack)."""
    if not bool(ok.all()):
        L[~ok] = xp.eye(L.shape[-1], dtype=L.dtype)
    return L


def upper_inverse_transpose(xp: Any, L: Any) -> Any:
    """``inv(L)^T`` of a (..., d, d) stack of lower-triangular factors: upper triangular, as sklearn's
    ``solve_triangular(L, I, lower=True).T`` (to rounding).

    It is ``inv(L^T)``, and the inverse of an upper-triangular matrix is taken by LU without a row
    exchange (nothing below the diagonal to pivot on): a triangular solve's accuracy whatever the
    scales of the rows. On numpy with d >= 32, :func:`_upper_inverse`: the halves' inverses and one
    product, recursively, as batched GEMMs in numpy's own BLAS (scipy's ``trtri``, in scipy's
    separate OpenBLAS, stalled for 80-110 ms in one call of ten right after numpy's GEMMs on this
    2-core machine: 1.1-3.5 ms otherwise at d = 512; this takes 2.2 ms every time). Otherwise the
    batched general inverse. A factor with a zero on its diagonal gives NaN (numpy).

    Examples
    --------
    >>> import numpy as np
    >>> L = np.array([[2.0, 0.0], [1.0, 4.0]])
    >>> upper_inverse_transpose(np, L).tolist()
    [[0.5, -0.125], [0.0, 0.25]]
    """
    d = L.shape[-1]
    U = xp.swapaxes(L, -1, -2)
    if xp is not np or d < 32 or L.dtype != np.float64:
        if xp is not np:  # LU of an upper-triangular U exchanges no rows: zeros below the diagonal stay exact
            return xp.linalg.inv(U)
        try:
            return np.triu(np.linalg.inv(U))
        except np.linalg.LinAlgError:
            return _one_by_one(lambda u: np.triu(np.linalg.inv(u)), U.reshape(-1, d, d)).reshape(L.shape)
    flat = U.reshape(-1, d, d)
    try:
        inverse = _upper_inverse(flat)
    except np.linalg.LinAlgError:  # an exactly singular factor (a zero pivot): NaN for it, the others one by one
        inverse = _one_by_one(_upper_inverse, flat)
    return inverse.reshape(L.shape)


def _one_by_one(invert: Any, flat: Any) -> Any:
    """``invert`` of each (1, d, d) slice of a (n, d, d) stack, NaN where it raises LinAlgError."""
    out = np.full(flat.shape, np.nan, dtype=flat.dtype)
    for i in range(flat.shape[0]):
        with contextlib.suppress(np.linalg.LinAlgError):
            out[i] = invert(flat[i : i + 1])[0]
    return out


def _upper_inverse(U: np.ndarray) -> np.ndarray:
    """The inverses of a (n, d, d) stack of upper-triangular matrices: ``[[A, B], [0, C]]`` has the inverse
    ``[[A^-1, -A^-1 B C^-1], [0, C^-1]]``, down to blocks of at most 64 (numpy's batched inverse there:
    no row exchanges on an upper-triangular block; its lower triangle's rounding dropped)."""
    d = U.shape[-1]
    if d <= 64:
        return np.triu(np.linalg.inv(U))
    h = d // 2
    out = np.zeros(U.shape, dtype=U.dtype)
    out[:, :h, :h] = first = _upper_inverse(U[:, :h, :h])
    out[:, h:, h:] = last = _upper_inverse(U[:, h:, h:])
    out[:, :h, h:] = -np.matmul(first, np.matmul(U[:, :h, h:], last))
    return out
