"""The rotation checks written once against the array namespace ``xp``: the reference.

Each function takes a (B, n, n) chunk of matrices and returns two arrays of
shape (B,): ``max |R R^T - I|`` (NaN for a matrix with NaN or inf) and
``det R``. 2x2 and 3x3 use closed forms of the Gram entries and the
determinant on rows of entries (no (B, n, n) temporaries); other sizes use
matmul and ``linalg.det``. :func:`residual_chunks` runs them chunk by chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from gpuvec._core.dispatch import chunk_elements

__all__ = ["closed_form_2x2", "closed_form_3x3", "empty_matrices", "general", "nearest", "residual_chunks"]


def residual_chunks(xp: Any, flat: Any) -> Iterator[tuple[slice, Any, Any]]:
    """(slice, orthogonality error, determinant) per chunk of a (B, n, n) stack.

    On the CPU the chunks stay in cache, and a caller that reduces them at once
    (is_rotation) never holds a full-size temporary.
    """
    n = flat.shape[-1]
    chunk = chunk_elements(xp, "rotations")
    residuals = {0: empty_matrices, 2: closed_form_2x2, 3: closed_form_3x3}.get(n, general)
    with np.errstate(invalid="ignore", over="ignore"):
        for s in range(0, flat.shape[0], chunk):
            yield (slice(s, s + chunk), *residuals(xp, flat[s : s + chunk]))


def empty_matrices(xp: Any, M: Any) -> tuple[Any, Any]:
    """0x0 matrices: R R^T = I (both empty) and det R = 1 (the empty product), as numpy's det gives."""
    return xp.zeros(M.shape[0], M.dtype), xp.ones(M.shape[0], M.dtype)


def _entries(xp: Any, M: Any) -> Any:
    """The n*n entries of a (B, n, n) chunk as contiguous rows of length B."""
    return xp.ascontiguousarray(M.reshape(M.shape[0], -1).T)


def closed_form_2x2(xp: Any, M: Any) -> tuple[Any, Any]:
    a, b, c, d = _entries(xp, M)
    err = xp.abs(a * a + b * b - 1)
    xp.maximum(err, xp.abs(c * c + d * d - 1), out=err)
    xp.maximum(err, xp.abs(a * c + b * d), out=err)
    return _nan_if_not_finite(xp, M, err, a * d - b * c)


SMALL_3X3 = 2048
"""Up to this many 3x3 matrices, :func:`closed_form_3x3` forms the Gram matrix in one broadcast product
(fewer numpy calls: 11.2 us for one matrix here, the determinant's cofactors in four calls on (3, B) rows;
row by row 21.9 us); beyond, row by row (its (3, 3, 3, B) temporary
made 1e5 matrices 2x slower). Both add the three products left to right: bit-identical results."""


# The entries of the three cofactors along the first row, ``c_j = E[i0] E[i1] - E[i2] E[i3]``: a11 a22 - a12 a21,
# a10 a22 - a12 a20, a10 a21 - a11 a20 (as the large stacks' formula writes them).
_COFACTORS = np.array([[4, 3, 3], [8, 8, 7], [5, 5, 4], [7, 6, 6]])


def closed_form_3x3(xp: Any, M: Any) -> tuple[Any, Any]:
    E = _entries(xp, M)
    if M.shape[0] <= SMALL_3X3:  # the same operations on whole (3, 3, B) and (3, B) blocks: fewer numpy calls
        rows = E.reshape(3, 3, -1)
        gram = (rows[:, None] * rows[None, :]).sum(2).reshape(9, -1)  # sum_k a_ik a_jk, k = 0, 1, 2 in order
        gram[::4] -= 1  # the diagonal
        err = xp.abs(gram).max(0)
        T = E[_COFACTORS if xp is np else xp.asarray(_COFACTORS)]
        cofactors = T[0] * T[1]
        cofactors -= T[2] * T[3]
        terms = E[:3] * cofactors
        return _nan_if_not_finite(xp, M, err, terms[0] - terms[1] + terms[2])
    a00, a01, a02, a10, a11, a12, a20, a21, a22 = E  # row by row: no (3, 3, 3, B) temporary
    err = xp.abs(a00 * a00 + a01 * a01 + a02 * a02 - 1)
    xp.maximum(err, xp.abs(a10 * a10 + a11 * a11 + a12 * a12 - 1), out=err)
    xp.maximum(err, xp.abs(a20 * a20 + a21 * a21 + a22 * a22 - 1), out=err)
    xp.maximum(err, xp.abs(a00 * a10 + a01 * a11 + a02 * a12), out=err)
    xp.maximum(err, xp.abs(a00 * a20 + a01 * a21 + a02 * a22), out=err)
    xp.maximum(err, xp.abs(a10 * a20 + a11 * a21 + a12 * a22), out=err)
    det = a00 * (a11 * a22 - a12 * a21) - a01 * (a10 * a22 - a12 * a20) + a02 * (a10 * a21 - a11 * a20)
    return _nan_if_not_finite(xp, M, err, det)


def general(xp: Any, M: Any) -> tuple[Any, Any]:
    n = M.shape[-1]
    gram = xp.matmul(M, xp.swapaxes(M, -1, -2))
    gram -= xp.eye(n, dtype=M.dtype)
    err = xp.abs(gram).max(axis=(-1, -2))
    det = xp.linalg.det(M) if M.shape[0] else xp.empty(0, M.dtype)
    return _nan_if_not_finite(xp, M, err, det)


def _nan_if_not_finite(xp: Any, M: Any, err: Any, det: Any) -> tuple[Any, Any]:
    """NaN error for a matrix with a NaN or inf entry (never a rotation; inf - inf can hide in a maximum as a
    finite number); inf for one whose finite entries overflow the products, as numpy's matmul gives."""
    ok = xp.isfinite(err) & xp.isfinite(det)
    if bool(ok.all()):
        return err, det
    entries_finite = xp.isfinite(M.reshape(M.shape[0], -1)).all(-1)
    return xp.where(ok, err, xp.where(entries_finite, xp.inf, xp.nan)), det


def nearest(xp: Any, M: Any) -> Any:
    """The proper rotation nearest each matrix of a (..., n, n) stack: ``U diag(1, .., 1, det(U V^T)) V^T``."""
    U, _, Vt = xp.linalg.svd(M)
    sign = xp.sign(xp.linalg.det(xp.matmul(U, Vt)))
    U[..., :, -1] *= sign[..., None]
    return xp.matmul(U, Vt)
