"""Covariance types of the Gaussian mixtures: one table row each, and the formulas that differ by type.

The lowest mixture module (it imports no other): every other mixture module
reads the table and calls the formulas; none branches on the type's name. Adding a covariance
type means one :class:`CovarianceSpec` row in :data:`COVARIANCE_TYPES` and a
branch in each formula function below:

=====================================  ================================================
:func:`log_det_and_mahalanobis`        the two terms of the log density (E-step)
:func:`covariances_from_statistics`    the M-step's covariance from shifted moments
:func:`precision_cholesky`             covariance -> precision Cholesky factor
:func:`covariances_from_cholesky`      precision Cholesky factor -> covariance
:func:`precisions_from_cholesky`       precision Cholesky factor -> precision
:func:`cholesky_from_precisions`       a user's precisions -> precision Cholesky factor
:func:`per_component`                  one factor or covariance per component (sampling,
                                       the compiled loops)
=====================================  ================================================

Shapes (B problems, K components, D features): 'full' (B, K, D, D), 'tied'
(B, D, D), 'diag' (B, K, D), 'spherical' (B, K), for covariances, precisions
and precision Cholesky factors alike.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, Literal

import numpy as np

from gpuvec._core.linalg import batched_cholesky, upper_inverse_transpose

__all__ = [
    "COVARIANCE_TYPES",
    "EPS",
    "CovarianceSpec",
    "CovarianceType",
    "cholesky_from_precisions",
    "covariances_from_cholesky",
    "covariances_from_statistics",
    "exp_nonpositive",
    "log_det_and_mahalanobis",
    "logsumexp_last",
    "row_max",
    "per_component",
    "precision_cholesky",
    "precisions_from_cholesky",
]

CovarianceType = Literal["full", "tied", "diag", "spherical"]
EPS = 10 * np.finfo(np.float64).eps  # sklearn's guard on empty components


@dataclasses.dataclass(frozen=True)
class CovarianceSpec:
    """One covariance type: its shapes and parameter count.

    Attributes
    ----------
    name : {'full', 'tied', 'diag', 'spherical'}
    precision_shape : callable (K, D) -> tuple
        Shape of one problem's covariances (and precisions, and their Cholesky factors).
    shared : bool
        One covariance for all components ('tied').
    n_parameters : callable (K, D) -> int
        Free parameters of the covariances (for BIC and AIC).
    full_matrix : bool
        Stored as D x D matrices ('full', 'tied'), not as variances.
    moments_shape : callable (K, D) -> tuple
        Shape of one problem's second-moment statistics (``SufficientStats.sxx``):
        one D x D sum per component ('full'), one for all of them ('tied': only
        their total enters the shared covariance), their diagonals ('diag'), or
        the diagonals' sums ('spherical': ``sum r |z|^2`` per component).

    Examples
    --------
    >>> COVARIANCE_TYPES["diag"].precision_shape(3, 2)
    (3, 2)
    """

    name: str
    precision_shape: Callable[[int, int], tuple[int, ...]]
    shared: bool
    n_parameters: Callable[[int, int], int]
    full_matrix: bool
    moments_shape: Callable[[int, int], tuple[int, ...]]


COVARIANCE_TYPES: dict[str, CovarianceSpec] = {
    "full": CovarianceSpec(
        "full", lambda K, D: (K, D, D), False, lambda K, D: K * D * (D + 1) // 2, True, lambda K, D: (K, D, D)
    ),
    "tied": CovarianceSpec(
        "tied", lambda K, D: (D, D), True, lambda K, D: D * (D + 1) // 2, True, lambda K, D: (1, D, D)
    ),
    "diag": CovarianceSpec("diag", lambda K, D: (K, D), False, lambda K, D: K * D, False, lambda K, D: (K, D)),
    "spherical": CovarianceSpec("spherical", lambda K, D: (K,), False, lambda K, D: K, False, lambda K, D: (K,)),
}


def sum_last(xp: Any, a: Any) -> Any:
    """Sum over a short last axis as a matrix-vector product (numpy's reduce is slow there)."""
    return xp.matmul(a, xp.ones(a.shape[-1], dtype=a.dtype))


def row_max(xp: Any, a: Any) -> Any:
    """The maximum over the last axis, where finite (else 0): the shift of a log-sum-exp."""
    K = a.shape[-1]
    if K > 32:  # one reduce (at K = 128: 2.3x the loop's speed over 5000 rows, 2.8x over 50000)
        amax = a.max(-1)
    else:
        amax = a[..., 0].copy()
        for k in range(1, K):  # K passes over (B, N): faster than a reduce over a short K
            xp.maximum(amax, a[..., k], out=amax)
    return xp.where(xp.isfinite(amax), amax, 0.0)


# numpy's SIMD exp leaves its fast path, for about ten times the time, on every vector of arguments where
# one result underflows (below about e^-708); log-probabilities less their row maximum often go there.
_EXP_FLOOR = -700.0


def exp_nonpositive(xp: Any, a: Any, out: Any = None) -> Any:
    """``exp(a)`` of log-probabilities less their row maximum (``a <= 0``), with 0 where ``a < -700``.

    The exact results there are below 1e-304, and every row they come from also
    holds an entry of at least ``1 / K`` (``exp(0)`` after the shift by the row's
    maximum): a row's sum is the same float either way, and a responsibility
    moves by less than 1e-304. numpy's exp of such arguments runs
    about ten times slower (a (5000, 64) block with a third of them: 1.9 against
    0.46 ms on the 2-core machine). NaN stays NaN, ``-inf`` gives 0.

    Examples
    --------
    >>> import numpy as np
    >>> r = exp_nonpositive(np, np.array([0.0, -1.0, -701.0, -np.inf]))
    >>> r[[0, 2, 3]].tolist(), bool(r[1] == np.exp(-1.0))
    ([1.0, 0.0, 0.0], True)
    """
    keep = a >= _EXP_FLOOR
    if xp is np and bool(keep.all()):  # nothing underflows (on a GPU the check would cost a synchronisation)
        return xp.exp(a, out=out)
    r = xp.maximum(a, _EXP_FLOOR, out=out)
    xp.exp(r, out=r)
    r *= keep  # a multiply, not a masked write (10x faster in numpy); NaN * 0 stays NaN
    return r


def logsumexp_last(xp: Any, a: Any) -> Any:
    """log(sum(exp(a))) over the last axis, shifted by the max as scipy's logsumexp is."""
    amax = row_max(xp, a)
    shifted = a - amax[..., None]
    with np.errstate(divide="ignore"):
        return xp.log(sum_last(xp, exp_nonpositive(xp, shifted, out=shifted))) + amax


def log_det_and_mahalanobis(xp: Any, X: Any, means: Any, P: Any, covariance_type: str) -> tuple[Any, Any]:
    """The log-determinant of each precision Cholesky factor and each sample's squared Mahalanobis distance.

    Parameters
    ----------
    xp : module
    X : array, shape (B, N, D)
    means : array, shape (B, K, D)
    P : array
        Precision Cholesky factors, shaped by covariance_type.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    log_det : array, shape (B, K), or (B, 1) for 'tied'
        ``sum(log(diag(P)))``, i.e. half the log-determinant of the precision.
    maha : array, shape (B, N, K)
        ``|(x - mu_k) P_k|^2``.

    Examples
    --------
    >>> import numpy as np
    >>> ones, zeros = np.ones((1, 1, 2)), np.zeros((1, 1, 2))
    >>> log_det, maha = log_det_and_mahalanobis(np, ones, zeros, np.ones((1, 1)), "spherical")
    >>> float(log_det[0, 0]), float(maha[0, 0, 0])
    (0.0, 2.0)
    """
    B, N, D = X.shape
    K = means.shape[1]
    if covariance_type == "full":
        # One GEMM for all components: column block k of P_all is P_k (sklearn: X @ P_k - mu_k @ P_k).
        log_det = xp.log(xp.diagonal(P, axis1=-2, axis2=-1)).sum(-1)  # (B, K)
        mu_p = xp.matmul(means[:, :, None, :], P)[:, :, 0, :]  # (B, K, D)
        y = xp.matmul(X, xp.swapaxes(P, 1, 2).reshape(B, D, K * D))
        y -= mu_p.reshape(B, 1, K * D)
        y *= y
        return log_det, sum_last(xp, y.reshape(B, N, K, D))
    if covariance_type == "tied":
        log_det = xp.log(xp.diagonal(P, axis1=-2, axis2=-1)).sum(-1)[:, None]  # (B, 1)
        mu_p = xp.matmul(means, P)  # (B, K, D)
        y = xp.matmul(X, P)[:, :, None, :] - mu_p[:, None, :, :]  # (B, N, K, D)
        y *= y
        return log_det, sum_last(xp, y)
    if covariance_type == "diag":
        prec = P * P
        maha = (
            (means**2 * prec).sum(-1)[:, None, :]
            - 2.0 * xp.matmul(X, xp.swapaxes(means * prec, 1, 2))
            + xp.matmul(X**2, xp.swapaxes(prec, 1, 2))
        )
        return xp.log(P).sum(-1), maha
    prec = P * P  # spherical
    maha = (
        (means**2).sum(-1)[:, None, :] * prec[:, None, :]
        - 2.0 * xp.matmul(X, xp.swapaxes(means, 1, 2)) * prec[:, None, :]
        + (X**2).sum(-1)[:, :, None] * prec[:, None, :]
    )
    return D * xp.log(P), maha


def covariances_from_statistics(
    xp: Any, nk: Any, sx: Any, sxx: Any, d: Any, reg_covar: Any, covariance_type: str, n_total: Any, shift: Any
) -> Any:
    """sklearn's covariance estimates from moments about a shift, plus ``reg_covar`` on the diagonals.

    With ``z = x - shift`` and ``d = mean - shift``, the scatter about the mean is
    ``sum r (x-m)(x-m)^T = sxx - d sx^T - sx d^T + R d d^T`` (R the raw weight sum):
    'full' and 'tied' divide it by ``nk = R + EPS`` (or the total weight), as
    sklearn does. 'diag' and 'spherical' follow sklearn's other formula,
    ``avg(x^2) - mean^2`` in the data's own coordinates, which depends on where
    the origin is through ``EPS``: it is the scatter about the mean over ``nk``
    plus ``EPS mean^2 / nk``. The last term is zero (rounded) for any component
    of real weight, and of the order of ``mean^2`` for a component whose weight
    has collapsed to a few ``EPS``: there it is what makes gpuvec's precisions
    (and lower bound) sklearn's. (sklearn's means, ``sum r x / nk``, depend on
    the origin the same way; see ``params_from_statistics``.)

    Parameters
    ----------
    xp : module
    nk : array, shape (B, K)
        Weighted responsibility sums, without sklearn's ``EPS`` (added here).
    sx : array, shape (B, K, D)
    sxx : array, shape (B, K, D, D) for 'full', (B, 1, D, D) for 'tied', (B, K, D) for 'diag', (B, K) for 'spherical'
    d : array, shape (B, K, D)
        Means minus the shift.
    reg_covar : array, shape (B,)
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    n_total : array, shape (B,)
        The total weight, the divisor of the 'tied' covariance.
    shift : array, shape (B, 1, D)
        The centre of the moments (where z = 0).

    Returns
    -------
    covariances : array, shaped by covariance_type

    Examples
    --------
    >>> import numpy as np
    >>> nk, sx, sxx = np.array([[2.0]]), np.zeros((1, 1, 1)), np.array([[[2.0]]])
    >>> zero = np.zeros((1, 1, 1))
    >>> covariances_from_statistics(np, nk, sx, sxx, zero, np.zeros(1), "diag", np.array([2.0]), zero)
    array([[[1.]]])
    """
    R = nk[..., None]
    nk = nk + EPS
    if COVARIANCE_TYPES[covariance_type].full_matrix:
        D = d.shape[-1]
        if covariance_type == "full" and D >= 32:
            # d sx^T + sx d^T - R d d^T = d u^T + u d^T with u = sx - R d / 2: one batched rank-2 product and
            # one pass over the (B, K, D, D) sums (the broadcast form below made six, two of them transposed:
            # 304 against 38 ms at K = 16, D = 1024; 0.9 against 0.24 ms at K = 16, D = 128; the broadcast
            # form is 15% faster at D = 8)
            u = sx - 0.5 * R * d
            scatter = sxx - xp.matmul(xp.stack([d, u], axis=-1), xp.stack([u, d], axis=-2))
            scatter /= nk[..., None, None]
            diagonal = xp.arange(D)
            scatter[..., diagonal, diagonal] += reg_covar[:, None, None]
            return scatter
        eye = xp.eye(D)
        if covariance_type == "full":
            outer = d[..., :, None] * sx[..., None, :]
            scatter = sxx - outer - xp.swapaxes(outer, -1, -2) + R[..., None] * d[..., :, None] * d[..., None, :]
            return scatter / nk[..., None, None] + reg_covar[:, None, None, None] * eye
        # tied: sxx is the total over the components, (B, 1, D, D); the sums over k as GEMMs (no (B, K, D, D))
        cross = xp.matmul(xp.swapaxes(d, 1, 2), sx)  # sum_k d_k sx_k^T
        about_means = cross + xp.swapaxes(cross, -1, -2) - xp.matmul(xp.swapaxes(d * R, 1, 2), d)
        scatter = sxx.sum(1) - about_means
        return scatter / n_total[:, None, None] + reg_covar[:, None, None] * eye
    # sklearn's sum r x^2 / nk - m^2 is the scatter about the mean over nk plus EPS m^2 / nk (nk = R + EPS),
    # m = shift + d; that last term as m^2 - m^2 (R / nk), which rounds to exactly 0 for a component of
    # real weight (R / nk == 1), and about the means, not the shift: no cancellation of shift^2 terms
    # (an empty component gets exactly reg_covar, as in sklearn, wherever the data lie).
    m2 = (shift + d) ** 2
    ratio = R / nk[..., None]
    if covariance_type == "spherical":  # the same, summed over the features (sxx holds only that sum): their mean
        scatter = sxx - sum_last(xp, 2 * d * sx) + R[..., 0] * sum_last(xp, d * d)
        return scatter / (nk * d.shape[-1]) + (m2 - m2 * ratio).mean(-1) + reg_covar[:, None]
    cov = (sxx - 2 * d * sx + R * d * d) / nk[..., None] + (m2 - m2 * ratio)
    cov += reg_covar[:, None, None]
    return cov


def precision_cholesky(xp: Any, cov: Any, covariance_type: str) -> Any:
    """sklearn's ``_compute_precision_cholesky``, batched; NaN where Cholesky fails (never raises).

    Examples
    --------
    >>> import numpy as np
    >>> precision_cholesky(np, np.array([[4.0, 0.0]]), "spherical")
    array([[0.5, nan]])
    """
    if not COVARIANCE_TYPES[covariance_type].full_matrix:
        with np.errstate(invalid="ignore", divide="ignore"):
            return xp.where(cov > 0, 1.0 / xp.sqrt(xp.where(cov > 0, cov, 1.0)), xp.nan)
    # Cholesky reads the lower triangle; factor (and check against) the symmetric matrix it holds, so
    # that rounding asymmetry of the scatter (~eps |x|^2) is not mistaken for a failure.
    lower = xp.tril(cov)
    L, ok = batched_cholesky(xp, lower + xp.swapaxes(xp.tril(cov, -1), -1, -2))
    P = upper_inverse_transpose(xp, L)
    return xp.where(ok[..., None, None], P, xp.nan)


def per_component(xp: Any, a: Any, covariance_type: str, K: int, D: int, *, dense: bool = False) -> Any:
    """Covariances (or precision Cholesky factors) ``a`` of a batch, one per component.

    (B, K, D, D) matrices for 'full' and 'tied'; (B, K, D) diagonals for
    'diag' and 'spherical', or with ``dense`` (B, K, D, D) diagonal matrices.
    'tied' and 'spherical' diagonals are broadcast (views, no copy).

    Examples
    --------
    >>> import numpy as np
    >>> per_component(np, np.array([[2.0, 3.0]]), "spherical", 2, 2, dense=True)[0, 1]
    array([[3., 0.],
           [0., 3.]])
    """
    spec = COVARIANCE_TYPES[covariance_type]
    B = a.shape[0]
    if spec.full_matrix:
        return xp.broadcast_to(a[:, None], (B, K, D, D)) if spec.shared else a
    diagonal = a if a.ndim == 3 else xp.broadcast_to(a[..., None], (B, K, D))  # spherical: one variance each
    return diagonal[..., None] * xp.eye(D) if dense else diagonal


def covariances_from_cholesky(xp: Any, P: Any, covariance_type: str) -> Any:
    """Covariances from precision Cholesky factors: inv(P P^T), or 1 / P**2 for 'diag' and 'spherical'.

    Full matrices are symmetrised (``(C + C^T) / 2``), so that the inverse's
    rounding does not make them fail a symmetry check (sampling does one).

    Examples
    --------
    >>> import numpy as np
    >>> covariances_from_cholesky(np, np.array([[0.5]]), "spherical")
    array([[4.]])
    """
    if COVARIANCE_TYPES[covariance_type].full_matrix:
        C = xp.linalg.inv(xp.matmul(P, xp.swapaxes(P, -1, -2)))
        return 0.5 * (C + xp.swapaxes(C, -1, -2))
    return 1.0 / (P * P)


def precisions_from_cholesky(xp: Any, P: Any, covariance_type: str) -> Any:
    """Precisions from their Cholesky factors: P P^T, or P**2 for 'diag' and 'spherical'.

    Examples
    --------
    >>> import numpy as np
    >>> precisions_from_cholesky(np, np.array([[0.5]]), "spherical")
    array([[0.25]])
    """
    if COVARIANCE_TYPES[covariance_type].full_matrix:
        return xp.matmul(P, xp.swapaxes(P, -1, -2))
    return P * P


def cholesky_from_precisions(xp: Any, precisions: Any, covariance_type: str) -> tuple[Any, Any]:
    """Precision Cholesky factors from precisions, and which problems' factors are valid.

    For 'full' and 'tied' this is sklearn's (>= 1.3, its issue 26415)
    ``_compute_precision_cholesky_from_precisions``: the *upper* triangular
    ``U`` with ``U U^T`` = precision, the same kind of factor that
    :func:`precision_cholesky` gives from a covariance (``inv(L)^T``). It is
    ``J chol(J A J) J`` with ``J`` the exchange matrix (rows and columns reversed).

    Returns
    -------
    P : array, shaped as ``precisions``
        The upper factor for 'full' and 'tied'; the square root for 'diag' and 'spherical'.
    ok : array of bool, shape (B,)
        Every matrix positive definite (or every value positive).

    Examples
    --------
    >>> import numpy as np
    >>> P, ok = cholesky_from_precisions(np, np.array([[[5.0, 2.0], [2.0, 1.0]]]), "tied")
    >>> P.tolist(), ok.tolist()
    ([[[1.0, 2.0], [0.0, 1.0]]], [True])
    >>> P, ok = cholesky_from_precisions(np, np.array([[4.0, 9.0]]), "spherical")
    >>> P.tolist(), ok.tolist()
    ([[2.0, 3.0]], [True])
    """
    B = precisions.shape[0]
    if COVARIANCE_TYPES[covariance_type].full_matrix:
        flipped = xp.flip(precisions, axis=(-2, -1))
        L, ok = batched_cholesky(xp, flipped)
        return xp.ascontiguousarray(xp.flip(L, axis=(-2, -1))), ok.reshape(B, -1).all(-1)
    ok = (precisions > 0).reshape(B, -1).all(-1)
    with np.errstate(invalid="ignore"):
        return xp.sqrt(precisions), ok
