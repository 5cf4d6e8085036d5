"""Batched rotation-matrix checks: is_rotation, rotation_residuals, nearest_rotation.

A matrix R is a rotation when R R^T = I and det R = 1. With floating-point
data both hold only to rounding, so gpuvec measures how far each matrix is
from them (:func:`rotation_residuals`) and compares both residuals with one
absolute tolerance (:func:`is_rotation`). There is no relative slack: an
``allclose(R @ R.T, I)`` test accepts ``1.000002 * I`` through its rtol and
rejects most float32 rotations at its default atol.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from gpuvec._core.checks import check_bool, check_matrix_stack, check_real
from gpuvec._core.dlpack import dlpack_io
from gpuvec._core.namespace import get_namespace, is_dask_array
from gpuvec.rotations import _dispatch

__all__ = ["RotationResiduals", "default_atol", "is_rotation", "nearest_rotation", "rotation_residuals"]


class RotationResiduals(NamedTuple):
    """How far each matrix is from a rotation.

    Attributes
    ----------
    orthogonality : array, shape (...)
        ``max |R R^T - I|`` over the entries (NaN if the matrix has NaN or inf).
    det : array, shape (...)
        ``det R``: 1 for a rotation, -1 for a reflection.
    """

    orthogonality: Any
    det: Any


def default_atol(n: int, dtype: Any) -> float:
    """The default tolerance of :func:`is_rotation`: ``n * eps(dtype) ** 0.75``.

    About 5.5e-12 for float64 3x3 and 1.9e-5 for float32 3x3: well above the
    rounding of a Gram entry (which grows like ``n * eps``) and of rotations
    built through a few float operations, far below any real
    non-orthogonality.

    Parameters
    ----------
    n : int
        The matrices' size (n x n).
    dtype : dtype
        The floating dtype whose precision sets the tolerance.

    Returns
    -------
    atol : float
        The absolute tolerance on both residuals.

    Examples
    --------
    >>> import numpy as np, gpuvec.rotations as rot
    >>> f"{rot.default_atol(3, np.float64):.1e}", f"{rot.default_atol(3, np.float32):.1e}"
    ('5.5e-12', '1.9e-05')
    """
    return float(n * np.finfo(dtype).eps ** 0.75)


def _prepare(R: Any, name: str) -> tuple[Any, Any, Any]:
    """Namespace, the stack in its computation dtype, and the dtype whose precision sets the tolerance."""
    xp = get_namespace(R)
    R = xp.asarray(R)
    check_matrix_stack(name, R)
    precision = R.dtype if R.dtype.kind == "f" else np.dtype(np.float64)
    if R.dtype.kind != "f":
        R = R.astype(xp.float64)  # integers and bools are checked exactly, in float64
    elif R.dtype.itemsize < 4:
        R = R.astype(xp.float32)  # float16 is computed in float32, judged at float16's precision
    if not R.dtype.isnative:
        R = R.astype(R.dtype.newbyteorder("="))
    return xp, R, precision


@dlpack_io
def rotation_residuals(R: Any) -> RotationResiduals:
    """Per matrix, the orthogonality error ``max|R R^T - I|`` and the determinant.

    Parameters
    ----------
    R : array, shape (..., n, n)
        numpy or cupy stack of square matrices; float32 is computed in float32,
        float64 in float64, integers exactly in float64.

    Returns
    -------
    residuals : RotationResiduals
        ``(orthogonality, det)``, each of shape (...) in the computation dtype.

    Notes
    -----
    A dask array ``R`` (``pip install 'gpuvec[dask]'``) gives two lazy dask
    arrays chunked like its batch axes, with its chunk type (numpy or cupy),
    from one task per block of matrices; the matrix axes are rechunked to one
    chunk each where they are not. Each value equals the in-memory call's.

    Examples
    --------
    >>> import numpy as np, gpuvec
    >>> res = gpuvec.rotation_residuals(np.diag([-1.0, 1.0, 1.0]))
    >>> float(res.orthogonality), float(res.det)
    (0.0, -1.0)
    """
    if is_dask_array(R):  # lazy: dask is imported only for dask inputs
        from gpuvec.rotations import _dask

        return RotationResiduals(*_dask.rotation_residuals(R, rotation_residuals))
    xp, R, _ = _prepare(R, "R")
    batch = R.shape[:-2]
    err = xp.empty(batch, R.dtype).reshape(-1)
    det = xp.empty_like(err)
    for s, e, d in _dispatch.residual_chunks(xp, R):
        err[s], det[s] = e, d
    return RotationResiduals(err.reshape(batch), det.reshape(batch))


@dlpack_io
def is_rotation(R: Any, *, atol: float | None = None, proper: bool = True) -> Any:
    """Whether each matrix of a stack is a rotation: ``R R^T = I`` and ``det R = 1``.

    Parameters
    ----------
    R : array, shape (..., n, n)
        numpy or cupy stack of square matrices, any n >= 1.
    atol : float, optional
        Absolute tolerance on both ``max|R R^T - I|`` and ``|det R - 1|``;
        default :func:`default_atol` of n and the input's precision
        (``n * eps ** 0.75``: 5.5e-12 for float64 3x3, 1.9e-5 for float32,
        1.7e-2 for float16, which is computed in float32; integers are exact
        and judged as float64).
    proper : bool, default True
        False also accepts reflections (orthogonal with ``det R = -1``).

    Returns
    -------
    result : bool array, shape (...)
        In the namespace of ``R``; a 0-d array for a single matrix (``bool(result)``
        gives a Python bool). NaN or inf in a matrix makes it False, silently.

    Notes
    -----
    A dask array ``R`` (``pip install 'gpuvec[dask]'``) gives a lazy dask bool
    array chunked like its batch axes, with its chunk type (numpy or cupy), from
    one task per block of matrices; the matrix axes are rechunked to one chunk
    each where they are not. Nothing is computed until you compute the result,
    and each answer equals the in-memory call's.

    Examples
    --------
    A rotation, a reflection, and a stack whose second matrix is not orthogonal:

    >>> import numpy as np, gpuvec
    >>> bool(gpuvec.is_rotation(np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]])))
    True
    >>> bool(gpuvec.is_rotation(np.diag([-1, 1, 1])))
    False
    >>> gpuvec.is_rotation(np.stack([np.eye(3), 1.000002 * np.eye(3)]))
    array([ True, False])
    """
    proper = check_bool("proper", proper)
    if is_dask_array(R):  # lazy: dask is imported only for dask inputs
        from gpuvec.rotations import _dask

        return _dask.is_rotation(R, is_rotation, atol=atol, proper=proper)
    xp, R, precision = _prepare(R, "R")
    n = R.shape[-1]
    atol = default_atol(n, precision) if atol is None else check_real("atol", atol)
    if atol < 0:
        msg = f"atol must be >= 0; got {atol}"
        raise ValueError(msg)
    result = xp.empty(R.shape[:-2], bool).reshape(-1)
    for s, err, det in _dispatch.residual_chunks(xp, R):
        det_error = xp.abs(det - 1) if proper else xp.abs(xp.abs(det) - 1)
        result[s] = (err <= atol) & (det_error <= atol)
    return result.reshape(R.shape[:-2])


@dlpack_io
def nearest_rotation(M: Any) -> Any:
    """The proper rotation closest (in Frobenius norm) to each matrix.

    ``U diag(1, ..., 1, det(U V^T)) V^T`` from the SVD ``M = U S V^T``, batched.
    Large stacks of 3x3 matrices take Newton's polar iteration on the CPU
    instead, equal to the SVD's result to rounding (see the user guide's
    rotations page); which one runs depends only on the stack's size and
    ``GPUVEC_JIT``, so a call gives the same result in any process.

    Parameters
    ----------
    M : array, shape (..., n, n)
        numpy or cupy stack of square matrices.

    Returns
    -------
    R : array, shape (..., n, n)
        Rotations, float64 (float32 for float32 and float16 input), in M's namespace.

    Notes
    -----
    A dask array ``M`` (``pip install 'gpuvec[dask]'``) gives a lazy dask array
    with M's chunks and chunk type, from one task per block (the matrix axes are
    rechunked to one chunk each where they are not), equal to the in-memory
    call's (each block makes the whole call's choice of method; to rounding
    only where the workers' ``GPUVEC_JIT`` differs from the caller's). The
    finiteness check then runs per block when the result is computed: NaN or
    inf raises the ValueError at that time.

    Examples
    --------
    >>> import numpy as np, gpuvec
    >>> R = gpuvec.nearest_rotation(np.array([[1.1, 0.1, 0], [-0.1, 0.9, 0], [0, 0, 1.05]]))
    >>> bool(gpuvec.is_rotation(R))
    True
    """
    if is_dask_array(M):  # lazy: dask is imported only for dask inputs
        from gpuvec.rotations import _dask

        return _dask.nearest_rotation(M, _nearest_rotation)
    return _nearest_rotation(M)


def _nearest_rotation(M: Any, matrices: int | None = None) -> Any:
    """nearest_rotation of an in-memory M; ``matrices``: the whole call's count (a dask block's choice)."""
    xp, M, _ = _prepare(M, "M")
    if not bool(xp.isfinite(M).all()):
        msg = "M must contain only finite values: the SVD of NaN or inf is undefined"
        raise ValueError(msg)
    if M.size == 0:
        return M.copy()
    return _dispatch.nearest(xp, M, matrices)
