"""Gaussian mixtures fitted by EM, many independent problems at once, with sklearn's API and numerics.

The functional core works on batches: ``X`` of shape (B, N, D), parameters with
a leading B axis. :func:`e_step` and :func:`m_step` are one EM half-step each;
:func:`em_pass` does both in one chunked pass over the samples (the E-step of a
chunk feeds the M-step statistics at once), so no (B, K, N, D) temporary is
ever built. :class:`GaussianMixture` wraps them in sklearn's estimator API.

Parameterisation is sklearn's: precision Cholesky factors, log-sum-exp, and
``reg_covar`` added to the covariance diagonals. Sums over samples run in
float64 whatever the input dtype.
"""

from __future__ import annotations

import inspect
import math
import types
import warnings
from typing import Any, Literal, NamedTuple

import numpy as np

from gpuvec import random as gv_random
from gpuvec._backend import get_namespace, is_cupy_namespace
from gpuvec._checks import check_choice, check_int, check_real
from gpuvec._linalg import batched_cholesky

__all__ = ["GaussianMixture", "MixtureParams", "e_step", "em_pass", "estimate_log_prob", "m_step"]

CovarianceType = Literal["full", "tied", "diag", "spherical"]
COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_PARAMS = ("k-means++", "kmeans", "random", "random_from_data")
_EPS = 10 * np.finfo(np.float64).eps  # sklearn's guard on empty components
# Elements of the largest per-chunk temporary of the E/M pass (B x n x max(K, D) x D). CPU:
# about 8 MB, measured best on a 2-core CPU for both benchmark cases (2**16..2**22 tried).
# GPU: larger, so that launches stay few (2**20 measured 2x slower than unchunked on an H200).
_CHUNK_ELEMENTS = 1 << 20
_CHUNK_ELEMENTS_GPU = 1 << 24


class ConvergenceWarning(UserWarning):
    """EM stopped at max_iter before the lower bound settled (sklearn's warning of the same name)."""


class MixtureParams(NamedTuple):
    """Parameters of a batch of Gaussian mixtures (B problems, K components, D features).

    Attributes
    ----------
    weights : array, shape (B, K)
    means : array, shape (B, K, D)
    covariances : array
        (B, K, D, D) full, (B, D, D) tied, (B, K, D) diag, (B, K) spherical.
    precisions_cholesky : array
        Same shape as covariances: ``P`` with ``P P^T`` the precision
        (sklearn's ``precisions_cholesky_``).
    """

    weights: Any
    means: Any
    covariances: Any
    precisions_cholesky: Any


# --------------------------------------------------------------------------- functional core


def _chunks(n: int, per_sample: int, budget: int):
    step = max(1, budget // max(1, per_sample))
    for s in range(0, n, step):
        yield slice(s, min(n, s + step))


def estimate_log_prob(X: Any, means: Any, precisions_cholesky: Any, covariance_type: CovarianceType = "full") -> Any:
    """Log density of every sample under every component, batched.

    Parameters
    ----------
    X : array, shape (B, N, D)
    means : array, shape (B, K, D)
    precisions_cholesky : array
        (B, K, D, D), (B, D, D), (B, K, D) or (B, K) by covariance_type.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    log_prob : array, shape (B, N, K)

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import estimate_log_prob
    >>> lp = estimate_log_prob(np.zeros((1, 1, 2)), np.zeros((1, 1, 2)), np.eye(2)[None, None])
    >>> bool(np.isclose(lp[0, 0, 0], -np.log(2 * np.pi)))
    True
    """
    xp = get_namespace(X, means, precisions_cholesky)
    D = X.shape[-1]
    P = precisions_cholesky
    B, N, _ = X.shape
    K = means.shape[1]
    if covariance_type == "full":
        # One GEMM for all components: column block k of P_all is P_k (sklearn: X @ P_k - mu_k @ P_k).
        log_det = xp.log(xp.diagonal(P, axis1=-2, axis2=-1)).sum(-1)  # (B, K)
        mu_p = xp.matmul(means[:, :, None, :], P)[:, :, 0, :]  # (B, K, D)
        y = xp.matmul(X, xp.swapaxes(P, 1, 2).reshape(B, D, K * D))
        y -= mu_p.reshape(B, 1, K * D)
        y *= y
        maha = _sum_last(xp, y.reshape(B, N, K, D))  # (B, N, K)
    elif covariance_type == "tied":
        log_det = xp.log(xp.diagonal(P, axis1=-2, axis2=-1)).sum(-1)[:, None]  # (B, 1)
        mu_p = xp.matmul(means, P)  # (B, K, D)
        y = xp.matmul(X, P)[:, :, None, :] - mu_p[:, None, :, :]  # (B, N, K, D)
        y *= y
        maha = _sum_last(xp, y)
    elif covariance_type == "diag":
        log_det = xp.log(P).sum(-1)
        prec = P * P
        maha = (
            (means**2 * prec).sum(-1)[:, None, :]
            - 2.0 * xp.matmul(X, xp.swapaxes(means * prec, 1, 2))
            + xp.matmul(X**2, xp.swapaxes(prec, 1, 2))
        )
    else:
        log_det = D * xp.log(P)
        prec = P * P
        maha = (
            (means**2).sum(-1)[:, None, :] * prec[:, None, :]
            - 2.0 * xp.matmul(X, xp.swapaxes(means, 1, 2)) * prec[:, None, :]
            + (X**2).sum(-1)[:, :, None] * prec[:, None, :]
        )
    return -0.5 * (D * math.log(2 * math.pi) + maha) + log_det[:, None, :]


def _sum_last(xp, a):
    """Sum over a short last axis as a matrix-vector product (numpy's reduce is slow there)."""
    return xp.matmul(a, xp.ones(a.shape[-1], dtype=a.dtype))


def _logsumexp_last(xp, a):
    """log(sum(exp(a))) over the last axis, shifted by the max as scipy's logsumexp is."""
    amax = a[..., 0].copy()
    for k in range(1, a.shape[-1]):  # K passes over (B, N): faster than a reduce over K
        xp.maximum(amax, a[..., k], out=amax)
    amax = xp.where(xp.isfinite(amax), amax, 0.0)
    with np.errstate(divide="ignore"):
        return xp.log(_sum_last(xp, xp.exp(a - amax[..., None]))) + amax


def e_step(X: Any, weights: Any, means: Any, precisions_cholesky: Any, covariance_type: CovarianceType = "full") -> tuple[Any, Any]:
    """The E-step: log-responsibilities and per-sample log-likelihood, batched.

    Parameters
    ----------
    X : array, shape (B, N, D)
    weights : array, shape (B, K)
    means : array, shape (B, K, D)
    precisions_cholesky : array
        See :class:`MixtureParams`.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}

    Returns
    -------
    log_resp : array, shape (B, N, K)
    log_prob_norm : array, shape (B, N)
        ``log p(x_n)``; its mean over N is sklearn's lower bound.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import e_step
    >>> X = np.array([[[0.0], [10.0]]])
    >>> log_resp, _ = e_step(X, np.array([[0.5, 0.5]]), np.array([[[0.0], [10.0]]]), np.ones((1, 2, 1)), "diag")
    >>> np.exp(log_resp).round(3)[0]
    array([[1., 0.],
           [0., 1.]])
    """
    xp = get_namespace(X, weights, means, precisions_cholesky)
    with np.errstate(divide="ignore"):
        weighted = estimate_log_prob(X, means, precisions_cholesky, covariance_type) + xp.log(weights)[:, None, :]
    log_prob_norm = _logsumexp_last(xp, weighted)
    return weighted - log_prob_norm[..., None], log_prob_norm


class _Stats(NamedTuple):
    nk: Any  # (B, K) sum of weighted responsibilities r
    sx: Any  # (B, K, D) sum of r * z, z = x - shift
    sxx: Any  # (B, K, D, D) sum of r * z z^T (full, tied), or (B, K, D) its diagonal
    shift: Any  # (B, 1, D): a centre of the data, so that the sums lose no precision


def _center(xp, X, sample_weight):
    """A centre of each problem's data, shape (B, 1, D): the (sample-weighted) mean."""
    if sample_weight is None:
        return X.mean(1, keepdims=True)
    total = sample_weight.sum(1)[:, None, None]
    weighted = xp.matmul(sample_weight[:, None, :], X)
    return xp.where(total > 0, weighted / xp.where(total > 0, total, 1.0), X.mean(1, keepdims=True))


def _accumulate(xp, X, resp, shift, full, stats=None):
    """Add a chunk's sufficient statistics: three GEMMs over the chunk, no (B, K, n, D) temporary."""
    B, n, D = X.shape
    Z = X - shift
    rT = xp.swapaxes(resp, 1, 2)  # (B, K, n)
    nk = resp.sum(1)
    sx = xp.matmul(rT, Z)
    if full:
        outer = (Z[..., :, None] * Z[..., None, :]).reshape(B, n, D * D)
        sxx = xp.matmul(rT, outer).reshape(B, -1, D, D)
    else:
        sxx = xp.matmul(rT, Z * Z)
    if stats is None:
        return _Stats(nk, sx, sxx, shift)
    return _Stats(stats.nk + nk, stats.sx + sx, stats.sxx + sxx, shift)


def _params_from_stats(xp, stats, reg_covar, covariance_type, n_total):
    """sklearn's _estimate_gaussian_parameters from shifted sums, then weights normalised."""
    nk = stats.nk + _EPS
    means = stats.shift + stats.sx / nk[..., None]
    d = means - stats.shift  # sum r (x-m)(x-m)^T = sxx - d sx^T - sx d^T + R d d^T
    R = stats.nk[..., None]
    if covariance_type in ("full", "tied"):
        outer = d[..., :, None] * stats.sx[..., None, :]
        scatter = stats.sxx - outer - xp.swapaxes(outer, -1, -2) + R[..., None] * d[..., :, None] * d[..., None, :]
        D = means.shape[-1]
        eye = xp.eye(D)
        if covariance_type == "full":
            cov = scatter / nk[..., None, None] + reg_covar[:, None, None, None] * eye
        else:
            cov = scatter.sum(1) / n_total[:, None, None] + reg_covar[:, None, None] * eye
    else:
        scatter = stats.sxx - 2 * d * stats.sx + R * d * d
        cov = scatter / nk[..., None] + reg_covar[:, None, None]
        if covariance_type == "spherical":
            cov = cov.mean(-1)
    weights = nk / nk.sum(-1, keepdims=True)
    return weights, means, cov


def _precision_cholesky(xp, cov, covariance_type):
    """sklearn's _compute_precision_cholesky, batched; NaN where Cholesky fails (never raises)."""
    if covariance_type in ("diag", "spherical"):
        with np.errstate(invalid="ignore", divide="ignore"):
            return xp.where(cov > 0, 1.0 / xp.sqrt(xp.where(cov > 0, cov, 1.0)), xp.nan)
    L, ok = batched_cholesky(xp, cov)
    P = xp.swapaxes(xp.linalg.inv(L), -1, -2)
    return xp.where(ok[..., None, None], P, xp.nan)


def m_step(X: Any, log_resp: Any, reg_covar: Any = 1e-6, covariance_type: CovarianceType = "full", sample_weight: Any = None) -> MixtureParams:
    """The M-step: mixture parameters from responsibilities, batched.

    Parameters
    ----------
    X : array, shape (B, N, D)
    log_resp : array, shape (B, N, K)
    reg_covar : float or array of shape (B,)
        Added to the covariance diagonals.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    sample_weight : array, shape (B, N), optional

    Returns
    -------
    params : MixtureParams
        ``precisions_cholesky`` is NaN for a problem whose covariance is not
        positive definite.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import m_step
    >>> X = np.array([[[0.0], [2.0]]])
    >>> params = m_step(X, np.log(np.array([[[1.0], [1.0]]])), reg_covar=0.0, covariance_type="diag")
    >>> round(float(params.means[0, 0, 0]), 9), round(float(params.covariances[0, 0, 0]), 9)
    (1.0, 1.0)
    """
    xp = get_namespace(X, log_resp)
    resp = xp.exp(log_resp)
    if sample_weight is not None:
        resp = resp * sample_weight[..., None]
    B = X.shape[0]
    reg = xp.broadcast_to(xp.asarray(reg_covar, dtype=xp.float64), (B,))
    stats = _accumulate(xp, X, resp, _center(xp, X, sample_weight), covariance_type in ("full", "tied"))
    weights, means, cov = _params_from_stats(xp, stats, reg, covariance_type, resp.sum((1, 2)))
    return MixtureParams(weights, means, cov, _precision_cholesky(xp, cov, covariance_type))


def em_pass(X: Any, params: MixtureParams, reg_covar: Any, covariance_type: CovarianceType, sample_weight: Any = None) -> tuple[MixtureParams, Any]:
    """One EM iteration in one chunked pass over the samples.

    Each chunk's E-step responsibilities go straight into the M-step sums
    (centred on the data's mean, so no precision is lost to raw moments), so
    memory is O(chunk), not O(N K D).

    Parameters
    ----------
    X : array, shape (B, N, D)
    params : MixtureParams
        The current parameters.
    reg_covar : array, shape (B,)
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    sample_weight : array, shape (B, N), optional

    Returns
    -------
    new_params : MixtureParams
    lower_bound : array, shape (B,)
        The (sample-weighted) mean log-likelihood under ``params``, before the update.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.mixture import MixtureParams, em_pass
    >>> X = np.array([[[0.0], [0.2], [10.0], [10.2]]])
    >>> start = MixtureParams(np.array([[0.5, 0.5]]), np.array([[[1.0], [9.0]]]), None, np.ones((1, 2, 1)))
    >>> new, lb = em_pass(X, start, np.array([1e-6]), "diag")
    >>> new.means[0, :, 0].round(2)
    array([ 0.1, 10.1])
    """
    xp = get_namespace(X)
    B, N, D = X.shape
    per_sample = max(params.means.shape[1], D) * D  # widest per-sample temporary
    full = covariance_type in ("full", "tied")
    shift = _center(xp, X, sample_weight)
    stats = []
    ll_sum = xp.zeros(B)
    weight_sum = xp.zeros(B)
    # Groups of whole problems while a problem fits the budget, else slices of one problem's samples:
    # either way the temporaries stay cache-sized.
    budget = _CHUNK_ELEMENTS_GPU if is_cupy_namespace(xp) else _CHUNK_ELEMENTS
    for bs in _chunks(B, N * per_sample, budget):
        group = None
        part = MixtureParams(*(None if a is None else a[bs] for a in params))
        for s in _chunks(N, (bs.stop - bs.start) * per_sample, budget):
            Xc = X[bs, s]
            log_resp, log_norm = e_step(Xc, part.weights, part.means, part.precisions_cholesky, covariance_type)
            resp = xp.exp(log_resp)
            if sample_weight is not None:
                sw = sample_weight[bs, s]
                resp *= sw[..., None]
                ll_sum[bs] += _sum_last(xp, xp.where(sw > 0, log_norm, 0.0) * sw)
                weight_sum[bs] += _sum_last(xp, sw)
            else:
                ll_sum[bs] += _sum_last(xp, log_norm)
                weight_sum[bs] += s.stop - s.start
            group = _accumulate(xp, Xc, resp, shift[bs], full, group)
        stats.append(group)
    stats = _Stats(*(xp.concatenate(parts) for parts in zip(*stats)))
    weights, means, cov = _params_from_stats(xp, stats, reg_covar, covariance_type, weight_sum)
    new = MixtureParams(weights, means, cov, _precision_cholesky(xp, cov, covariance_type))
    return new, ll_sum / weight_sum


# --------------------------------------------------------------------------- initialisation


def _kmeans_pp_centers(xp, X, K, rng, sample_weight):
    """Batched k-means++ seeding (D^2 sampling, one trial per centre): indices (B, K)."""
    B, N, _ = X.shape
    w = xp.ones((B, N)) if sample_weight is None else sample_weight
    idx = xp.empty((B, K), dtype=xp.int64)
    bidx = xp.arange(B)
    idx[:, 0] = _sample_index(xp, w, rng)
    d2 = ((X - X[bidx, idx[:, 0]][:, None, :]) ** 2).sum(-1)
    for k in range(1, K):
        idx[:, k] = _sample_index(xp, w * d2, rng)
        d2 = xp.minimum(d2, ((X - X[bidx, idx[:, k]][:, None, :]) ** 2).sum(-1))
    return idx


def _sample_index(xp, p, rng):
    """One index per row of p (B, N), with probabilities proportional to p (uniform where p sums to 0)."""
    total = p.sum(1, keepdims=True)
    p = xp.where(total > 0, p, 1.0)
    cdf = xp.cumsum(p, axis=1)
    u = rng.random((p.shape[0], 1)) * cdf[:, -1:]
    return xp.minimum((cdf <= u).sum(1), p.shape[1] - 1)


def _one_hot_resp(xp, labels, K):
    return (labels[..., None] == xp.arange(K)).astype(xp.float64)


def _nearest(xp, X, centers):
    d2 = ((X[:, :, None, :] - centers[:, None, :, :]) ** 2).sum(-1)
    return d2.argmin(-1)


def _initial_resp(xp, X, K, method, rng, sample_weight):
    B, N, _ = X.shape
    bidx = xp.arange(B)[:, None]
    if method == "random":
        resp = rng.random((B, N, K))
        return resp / resp.sum(-1, keepdims=True)
    if method == "random_from_data":
        w = xp.ones((B, N)) if sample_weight is None else sample_weight
        keys = rng.random((B, N)) + (w <= 0)  # zero-weight (padding) samples are never picked
        idx = xp.argsort(keys, axis=1)[:, :K]
        resp = xp.zeros((B, N, K))
        resp[bidx, idx, xp.arange(K)] = 1.0
        return resp
    centers = X[bidx, _kmeans_pp_centers(xp, X, K, rng, sample_weight)]
    if method == "kmeans":  # a few batched Lloyd iterations
        w = xp.ones((B, N)) if sample_weight is None else sample_weight
        for _ in range(10):
            resp = _one_hot_resp(xp, _nearest(xp, X, centers), K) * w[..., None]
            counts = resp.sum(1)[..., None]
            centers = xp.where(counts > 0, xp.matmul(xp.swapaxes(resp, 1, 2), X) / xp.maximum(counts, 1e-300), centers)
    return _one_hot_resp(xp, _nearest(xp, X, centers), K)


# --------------------------------------------------------------------------- estimator


class GaussianMixture:
    """Gaussian mixture fitted by EM; one problem (N, D) or a batch (B, N, D) at once.

    sklearn's parameters, methods and attributes (``sklearn.mixture.GaussianMixture``),
    on numpy or cupy data. With ``X`` of shape (B, N, D), every fitted attribute
    gains a leading B axis and the B problems are fitted independently in one
    call; problems that have converged leave the active set.

    Parameters
    ----------
    n_components : int, default 1
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default 'full'
    tol : float, default 1e-3
        Convergence threshold on the change of the lower bound.
    reg_covar : float, default 1e-6
        Added to the covariance diagonals. A problem whose covariance still
        fails Cholesky gets ten times more, up to six times (see ``reg_covar_``).
    max_iter : int, default 100
    n_init : int, default 1
        Starts per problem, run as one more batch axis; the best lower bound wins.
    init_params : {'k-means++', 'kmeans', 'random', 'random_from_data'}, default 'k-means++'
        'k-means++' seeds centres by D^2 sampling and assigns every sample to
        its nearest centre; 'kmeans' adds 10 Lloyd iterations. (sklearn's
        default is 'kmeans'; its 'k-means++' gives each centre only its own seed
        sample.)
    weights_init : array, shape (K,) or (B, K), optional
    means_init : array, shape (K, D) or (B, K, D), optional
    precisions_init : array, optional
        Shaped by covariance_type as sklearn's, with an optional leading B axis.
    random_state : None, int or Generator
        Seed for :func:`gpuvec.random.default_rng` on the data's backend.
    warm_start : bool, default False
    verbose : int, default 0

    Attributes
    ----------
    weights_ : array, shape ([B,] K)
    means_ : array, shape ([B,] K, D)
    covariances_, precisions_, precisions_cholesky_ : array
        Shaped by covariance_type, with the leading B axis for batches.
    converged_ : bool or array, shape (B,)
    n_iter_ : int or array, shape (B,)
    lower_bound_ : float or array, shape (B,)
    lower_bounds_ : list of float, or array, shape (B, n_iter)
        The lower bound after each iteration (NaN-padded past a problem's n_iter_).
    reg_covar_ : float or array, shape (B,)
        The regularisation each problem ended with.

    Examples
    --------
    The seed's data, fitted without the seed's fixed-point start:

    >>> import numpy as np, gpuvec
    >>> rng = np.random.default_rng(1)
    >>> X = np.concatenate([rng.normal(0, 1, (1000, 2)), rng.normal(5, 1, (1000, 2))])
    >>> gm = gpuvec.GaussianMixture(2, random_state=0).fit(X)
    >>> bool(np.allclose(np.sort(gm.means_[:, 0]), [0, 5], atol=0.1))
    True
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: CovarianceType = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "k-means++",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose

    # ------------------------------------------------------------------ sklearn protocol

    @classmethod
    def _get_param_names(cls) -> list[str]:
        return sorted(p for p in inspect.signature(cls.__init__).parameters if p != "self")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """The constructor parameters, as sklearn's ``BaseEstimator.get_params``."""
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> GaussianMixture:
        """Set constructor parameters, as sklearn's ``BaseEstimator.set_params``."""
        valid = self._get_param_names()
        for name, value in params.items():
            if name not in valid:
                msg = f"Invalid parameter {name!r} for estimator {type(self).__name__}. Valid parameters are: {valid!r}."
                raise ValueError(msg)
            setattr(self, name, value)
        return self

    def __sklearn_tags__(self):
        """sklearn (>= 1.6) estimator tags: an unsupervised density estimator."""
        from sklearn.utils import InputTags, Tags, TargetTags

        return Tags(estimator_type="density_estimator", target_tags=TargetTags(required=False), input_tags=InputTags(allow_nan=False))

    def __repr__(self) -> str:
        defaults = {p.name: p.default for p in inspect.signature(type(self).__init__).parameters.values()}
        changed = [f"{k}={v!r}" for k, v in self.get_params().items() if not (v is defaults[k] or (np.isscalar(v) and v == defaults[k]))]
        return f"GaussianMixture({', '.join(changed)})"

    # ------------------------------------------------------------------ validation

    def _check_parameters(self) -> None:
        check_int("n_components", self.n_components, minimum=1)
        check_choice("covariance_type", self.covariance_type, COVARIANCE_TYPES)
        check_choice("init_params", self.init_params, INIT_PARAMS)
        if check_real("tol", self.tol) < 0:
            raise ValueError(f"tol must be >= 0; got {self.tol}")
        if check_real("reg_covar", self.reg_covar) < 0:
            raise ValueError(f"reg_covar must be >= 0; got {self.reg_covar}")
        check_int("max_iter", self.max_iter, minimum=0)
        check_int("n_init", self.n_init, minimum=1)

    def _validate_X(self, X: Any, *, fitting: bool) -> tuple[types.ModuleType, Any, bool]:
        if type(X).__module__.split(".sparse")[0] in ("scipy", "cupyx.scipy") and hasattr(X, "toarray"):
            raise TypeError("Sparse data was passed for X, but dense data is required. Use X.toarray() to convert to a dense array.")
        xp = get_namespace(X)
        X = xp.asarray(X)
        if X.dtype.kind == "c":
            raise ValueError("Complex data not supported: X must be real")
        if X.dtype.kind == "O":
            X = X.astype(xp.float64)  # raises numpy's own error for non-numbers
        if X.dtype.kind not in "biuf":
            raise ValueError(f"X must be numeric; got dtype {X.dtype}")
        if X.ndim == 1:
            raise ValueError(f"Expected 2D array (n_samples, n_features) or 3D (batch, n_samples, n_features), got 1D array of shape {X.shape}. Reshape your data either using array.reshape(-1, 1) if your data has a single feature or array.reshape(1, -1) if it contains a single sample.")
        if X.ndim not in (2, 3):
            raise ValueError(f"X must have shape (n_samples, n_features) or (batch, n_samples, n_features); got shape {X.shape}")
        for axis, what in ((-2, "sample(s)"), (-1, "feature(s)"), (0, "problem(s)")):
            if X.shape[axis] == 0:
                raise ValueError(f"Found array with 0 {what} (shape={X.shape}) while a minimum of 1 is required.")
        batched = X.ndim == 3
        X = (X if batched else X[None]).astype(xp.float64)
        if not bool(xp.isfinite(X).all()):  # once, up front
            kind = "NaN" if bool(xp.isnan(X).any()) else "infinity or a value too large for dtype('float64')"
            raise ValueError(f"Input X contains {kind}.")
        if fitting:
            if X.shape[1] < self.n_components:
                raise ValueError(f"Expected n_samples >= n_components but got n_components = {self.n_components}, n_samples = {X.shape[1]}")
        else:
            self._check_fitted()
            if X.shape[2] != self.means_.shape[-1]:
                raise ValueError(f"X has {X.shape[2]} features, but GaussianMixture is expecting {self.means_.shape[-1]} features as input.")
            if batched != self._batched or (batched and X.shape[0] != self._B):
                expected = f"(B={self._B}, N, D)" if self._batched else "(N, D)"
                raise ValueError(f"X must have shape {expected} as in fit; got shape {X.shape}")
        return xp, X, batched

    def _check_fitted(self) -> None:
        if not hasattr(self, "means_"):
            msg = f"This {type(self).__name__} instance is not fitted yet. Call 'fit' with appropriate arguments before using this estimator."
            raise _not_fitted_error()(msg)

    @staticmethod
    def _batched_init(xp, value, label, B, tail):
        """A user's initial parameter, shaped ``tail`` or ``(B,) + tail``, as a (B,) + tail array."""
        if value is None:
            return None
        value = xp.asarray(value, dtype=xp.float64)
        if tuple(value.shape) == tail:
            return xp.broadcast_to(value, (B,) + tail)
        if tuple(value.shape) != (B,) + tail:
            msg = f"The parameter '{label}' should have the shape of {tail}, or {(B,) + tail} for a batch, but got {tuple(value.shape)}"
            raise ValueError(msg)
        return value

    def _user_init(self, xp, B, K, D):
        ct = self.covariance_type
        prec_tail = {"full": (K, D, D), "tied": (D, D), "diag": (K, D), "spherical": (K,)}[ct]
        w = self._batched_init(xp, self.weights_init, "weights", B, (K,))
        m = self._batched_init(xp, self.means_init, "means", B, (K, D))
        p = self._batched_init(xp, self.precisions_init, f"{ct} precision", B, prec_tail)
        if w is not None:
            if bool((w < 0).any()) or bool((w > 1).any()):
                raise ValueError("The parameter 'weights' should be in the range [0, 1]")
            if not bool((xp.abs(1.0 - w.sum(-1)) < 1e-6).all()):
                raise ValueError(f"The parameter 'weights' should be normalized, but got sum(weights) = {_float_list(w.sum(-1))}")
        if p is not None:
            if ct in ("full", "tied"):
                symmetric = bool((xp.abs(p - xp.swapaxes(p, -1, -2)) <= 1e-10 * xp.abs(p).max()).all())
                p, ok = batched_cholesky(xp, p)
                if not (symmetric and bool(ok.all())):
                    raise ValueError(f"'{ct} precision' should be symmetric, positive-definite")
            else:
                if bool((p <= 0).any()):
                    raise ValueError(f"'{ct} precision' should be positive")
                p = xp.sqrt(p)
        return w, m, p

    # ------------------------------------------------------------------ fitting

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GaussianMixture:
        """Fit by EM; X of shape (N, D), or (B, N, D) for B independent problems.

        Parameters
        ----------
        X : array, shape (N, D) or (B, N, D)
        y : ignored
        sample_weight : array, shape (N,) or (B, N), optional
            Non-negative weights; zero-weight rows let problems of different
            sizes share a batch.

        Returns
        -------
        self : GaussianMixture
        """
        self.fit_predict(X, y, sample_weight=sample_weight)
        return self

    @np.errstate(over="ignore", invalid="ignore", divide="ignore")  # failures are reported as warnings below
    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit, then return the component labels of X, shape (N,) or (B, N)."""
        self._check_parameters()
        xp, X, batched = self._validate_X(X, fitting=True)
        B, N, D = X.shape
        K, n_init = self.n_components, self.n_init
        sw = self._validate_sample_weight(xp, sample_weight, B, N)
        rng = gv_random.default_rng(self.random_state, backend="cupy" if is_cupy_namespace(xp) else "numpy")
        w_init, m_init, p_init = self._user_init(xp, B, K, D)

        warm = self.warm_start and hasattr(self, "means_") and getattr(self, "_B", None) == B and self.means_.shape[-1] == D
        if warm:
            n_init = 1
        S = B * n_init  # every start of every problem is one problem of the batch
        Xs = xp.repeat(X, n_init, axis=0) if n_init > 1 else X
        sws = None if sw is None else (xp.repeat(sw, n_init, axis=0) if n_init > 1 else sw)
        reg = xp.full(S, float(self.reg_covar))

        rep = (lambda a: xp.repeat(a, n_init, axis=0)) if n_init > 1 else (lambda a: a)
        if warm:
            params = MixtureParams(*(self._batch_attr(xp, a) for a in (self.weights_, self.means_, self.covariances_, self.precisions_cholesky_)))
        elif w_init is not None and m_init is not None and p_init is not None:
            # A complete explicit start: EM's first E-step needs nothing else.
            P = rep(p_init)
            params = MixtureParams(rep(w_init), rep(m_init), _covariances_from_cholesky(xp, P, self.covariance_type), P)
        else:
            log_resp = _safe_log(xp, _initial_resp(xp, Xs, K, self.init_params, rng, sws))
            params, reg = self._m_step_regularised(xp, Xs, log_resp, reg, sws)
            params = params._replace(
                weights=params.weights if w_init is None else rep(w_init),
                means=params.means if m_init is None else rep(m_init),
                precisions_cholesky=params.precisions_cholesky if p_init is None else rep(p_init),
            )
        if not warm:
            self._warn_identical_components(xp, params, n_init)

        params, lower_bound, n_iter, converged, failed, history = self._em(xp, Xs, params, reg, sws)
        if n_init > 1:
            best = xp.argmax(xp.where(xp.isnan(lower_bound), -xp.inf, lower_bound).reshape(B, n_init), axis=1) + xp.arange(B) * n_init
            params = MixtureParams(*(a[best] for a in params))
            lower_bound, n_iter, converged, failed, history, reg = (a[best] for a in (lower_bound, n_iter, converged, failed, history, reg))
        if bool((~converged & ~failed).any()) and self.max_iter > 0:
            where = f" (problems {_first(xp.nonzero(~converged & ~failed)[0])})" if batched else ""
            warnings.warn(
                f"Best performing initialization did not converge{where}. Try different init parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self._store(xp, params, lower_bound, n_iter, converged, history, reg, batched, B)
        log_resp, _ = e_step(X, params.weights, params.means, params.precisions_cholesky, self.covariance_type)
        labels = log_resp.argmax(-1)
        return labels if batched else labels[0]

    def _validate_sample_weight(self, xp, sample_weight, B, N):
        if sample_weight is None:
            return None
        sw = xp.asarray(sample_weight, dtype=xp.float64)
        if sw.ndim == 1:
            sw = xp.broadcast_to(sw, (B, N))
        if sw.shape != (B, N):
            raise ValueError(f"sample_weight must have shape (N,) = ({N},) or (B, N) = ({B}, {N}); got {tuple(sw.shape)}")
        if not bool(xp.isfinite(sw).all()) or bool((sw < 0).any()):
            raise ValueError("sample_weight must be finite and non-negative")
        if bool((sw.sum(1) == 0).any()):
            raise ValueError("sample_weight is zero for every sample of a problem: sample weights must not all be zero")
        if bool(((sw > 0).sum(1) < self.n_components).any()):
            raise ValueError(f"Expected n_samples >= n_components among samples of positive sample_weight in every problem, n_components = {self.n_components}")
        return sw

    def _warn_identical_components(self, xp, params, n_init):
        K = self.n_components
        if K < 2:
            return
        m = params.means
        same_mean = (m[:, :, None, :] == m[:, None, :, :]).all(-1)
        P = params.precisions_cholesky
        if self.covariance_type != "tied":
            Pf = P.reshape(P.shape[0], K, -1)
            same_prec = (Pf[:, :, None, :] == Pf[:, None, :, :]).all(-1)
        else:
            same_prec = True
        pair = same_mean & same_prec & ~xp.eye(K, dtype=bool)
        bad = pair.any(axis=(1, 2))
        if bool(bad.any()):
            problems = sorted({int(i) // n_init for i in xp.nonzero(bad)[0]})
            warnings.warn(
                f"GaussianMixture: problems {_first(problems)} start with identical components "
                "(the same means and precisions): that start is a fixed point of EM, which cannot separate them. "
                "Use distinct means_init, or init_params='k-means++'.",
                UserWarning,
                stacklevel=4,
            )

    def _m_step_regularised(self, xp, X, log_resp, reg, sw, max_tries=6):
        """The M-step; where a covariance fails Cholesky, that problem's reg_covar grows 10x and it is redone."""
        params = m_step(X, log_resp, reg, self.covariance_type, sw)
        for _ in range(max_tries):
            bad = ~_params_ok(xp, params)
            if not bool(bad.any()):
                break
            reg = _more_regularisation(xp, reg, bad)
            refit = m_step(X, log_resp, reg, self.covariance_type, sw)
            params = MixtureParams(*(_where_batch(xp, bad, new, old) for new, old in zip(refit, params)))
        return params, reg

    def _em(self, xp, X, params, reg, sw):
        S = X.shape[0]
        ct = self.covariance_type
        params = MixtureParams(*(a.copy() for a in params))  # filled in place below
        lower_bound = xp.full(S, -xp.inf)
        n_iter = xp.zeros(S, dtype=xp.int64)
        converged = xp.zeros(S, dtype=bool)
        history = xp.full((S, self.max_iter), xp.nan)
        active = xp.arange(S)
        failed = xp.zeros(S, dtype=bool)
        Xa, swa, pa, rega = X, sw, params, reg
        for it in range(1, self.max_iter + 1):
            new, lb = em_pass(Xa, pa, rega, ct, swa)
            # A problem whose covariance fails Cholesky gets 10x more regularisation and a retry;
            # if it still fails it keeps its last good parameters and leaves the batch.
            bad = ~_params_ok(xp, new)
            if bool(bad.any()):
                rega = _more_regularisation(xp, rega, bad)
                new, _ = em_pass(Xa, pa, rega, ct, swa)
                bad = ~_params_ok(xp, new)
                new = MixtureParams(*(_where_batch(xp, bad, old, part) for part, old in zip(new, pa)))
            change = lb - lower_bound[active]
            lower_bound[active] = lb
            history[active, it - 1] = lb
            n_iter[active] = it
            done = (xp.abs(change) < self.tol) & ~bad
            for full_arr, part in zip(params, new):
                full_arr[active] = part
            reg[active] = rega
            if self.verbose:
                print(f"  Iteration {it}: {int(done.sum())} of {int(active.shape[0])} active problems converged")
            leave = done | bad
            if bool(leave.any()):
                converged[active[done]] = True
                failed[active[bad]] = True
                keep = ~leave
                active = active[keep]
                if active.shape[0] == 0:
                    break
                Xa = Xa[keep]
                swa = None if swa is None else swa[keep]
                pa = MixtureParams(*(a[keep] for a in new))
                rega = rega[keep]
            else:
                pa = new
        if bool(failed.any()):
            warnings.warn(
                "Fitting the mixture model failed because some components have ill-defined empirical covariance "
                f"(for instance caused by singleton or collapsed samples) in problems {_first(xp.nonzero(failed)[0])}, "
                "even with reg_covar raised; they keep their last parameters (NaN if their start already failed) "
                "and converged_ False. "
                "Try to decrease the number of components, increase reg_covar, or scale the input data.",
                UserWarning,
                stacklevel=4,
            )
        return params, lower_bound, n_iter, converged, failed, history[:, : max(1, int(n_iter.max()) if S else 1)]

    def _store(self, xp, params, lower_bound, n_iter, converged, history, reg, batched, B):
        ct = self.covariance_type
        P = params.precisions_cholesky
        if ct in ("full", "tied"):
            precisions = xp.matmul(P, xp.swapaxes(P, -1, -2))
        else:
            precisions = P * P
        one = (lambda a: a) if batched else (lambda a: a[0])
        self.weights_ = one(params.weights)
        self.means_ = one(params.means)
        self.covariances_ = one(params.covariances)
        self.precisions_cholesky_ = one(P)
        self.precisions_ = one(precisions)
        if batched:
            self.converged_, self.n_iter_, self.lower_bound_, self.lower_bounds_, self.reg_covar_ = converged, n_iter, lower_bound, history, reg
        else:
            self.converged_ = bool(converged[0])
            self.n_iter_ = int(n_iter[0])
            self.lower_bound_ = float(lower_bound[0])
            self.lower_bounds_ = [float(v) for v in history[0, : self.n_iter_]]
            self.reg_covar_ = float(reg[0])
        self.n_features_in_ = params.means.shape[-1]
        self._batched, self._B = batched, B

    def _batch_attr(self, xp, a):
        return a if self._batched else a[None]

    # ------------------------------------------------------------------ prediction

    def _params(self, xp):
        return tuple(self._batch_attr(xp, a) for a in (self.weights_, self.means_, self.precisions_cholesky_))

    def _estimate(self, X):
        xp, X, batched = self._validate_X(X, fitting=False)
        w, m, p = self._params(xp)
        log_resp, log_norm = e_step(X, w, m, p, self.covariance_type)
        one = (lambda a: a) if batched else (lambda a: a[0])
        return xp, one(log_resp), one(log_norm)

    def score_samples(self, X: Any) -> Any:
        """Log-likelihood of each sample, shape (N,) or (B, N)."""
        return self._estimate(X)[2]

    def score(self, X: Any, y: Any = None) -> Any:
        """Mean log-likelihood: a float, or an array of shape (B,) for a batch."""
        s = self.score_samples(X).mean(-1)
        return float(s) if s.ndim == 0 else s

    def predict(self, X: Any) -> Any:
        """Component labels, shape (N,) or (B, N)."""
        return self._estimate(X)[1].argmax(-1)

    def predict_proba(self, X: Any) -> Any:
        """Responsibilities, shape (N, K) or (B, N, K)."""
        xp, log_resp, _ = self._estimate(X)
        return xp.exp(log_resp)

    def _n_parameters(self) -> int:
        K, D = self.n_components, self.means_.shape[-1]
        cov = {"full": K * D * (D + 1) / 2, "diag": K * D, "tied": D * (D + 1) / 2, "spherical": K}[self.covariance_type]
        return int(cov + K * D + K - 1)

    def bic(self, X: Any) -> Any:
        """Bayesian information criterion (lower is better): float or shape (B,)."""
        n = (X.shape[-2]) if hasattr(X, "shape") else len(X)
        return -2 * self.score(X) * n + self._n_parameters() * math.log(n)

    def aic(self, X: Any) -> Any:
        """Akaike information criterion (lower is better): float or shape (B,)."""
        n = (X.shape[-2]) if hasattr(X, "shape") else len(X)
        return -2 * self.score(X) * n + 2 * self._n_parameters()

    def sample(self, n_samples: int = 1) -> tuple[Any, Any]:
        """Draw samples from the fitted mixture (sklearn's semantics).

        Returns
        -------
        X : array, shape (n_samples, D), or (B, n_samples, D) for a batch
        y : array, shape (n_samples,) or (B, n_samples): component labels, sorted
        """
        self._check_fitted()
        n_samples = check_int("n_samples", n_samples, minimum=1)
        xp = get_namespace(self.means_)
        rng = gv_random.default_rng(self.random_state, backend="cupy" if is_cupy_namespace(xp) else "numpy")
        w, m, _ = self._params(xp)
        cov = self._batch_attr(xp, self.covariances_)
        B, K, D = m.shape
        ct = self.covariance_type
        if ct == "tied":
            cov = xp.broadcast_to(cov[:, None], (B, K, D, D))
        elif ct == "diag":
            cov = cov[..., None] * xp.eye(D)
        elif ct == "spherical":
            cov = cov[..., None, None] * xp.eye(D)
        # Component of each sample: the sorted order sklearn returns.
        u = rng.random((B, n_samples))
        labels = xp.sort((u[..., None] > xp.cumsum(w, -1)[:, None, :]).sum(-1), axis=-1)
        labels = xp.minimum(labels, K - 1)
        draws = rng.multivariate_normal(xp.zeros((B, K, D)), cov, size=n_samples)  # (n, B, K, D)
        draws = xp.swapaxes(draws, 0, 1)  # (B, n, K, D)
        bidx, nidx = xp.arange(B)[:, None], xp.arange(n_samples)[None, :]
        X = draws[bidx, nidx, labels] + m[bidx, labels]
        return (X, labels) if self._batched else (X[0], labels[0])


# --------------------------------------------------------------------------- helpers


def _safe_log(xp, resp):
    with np.errstate(divide="ignore"):
        return xp.log(resp)


def _covariances_from_cholesky(xp, P, covariance_type):
    """Covariances from precision Cholesky factors: inv(P P^T), or 1 / P**2 for diag and spherical."""
    if covariance_type in ("full", "tied"):
        return xp.linalg.inv(xp.matmul(P, xp.swapaxes(P, -1, -2)))
    return 1.0 / (P * P)


def _params_ok(xp, params):
    P = params.precisions_cholesky
    return xp.isfinite(P.reshape(P.shape[0], -1)).all(-1)


def _more_regularisation(xp, reg, bad):
    """reg_covar for the next try: 10x for the failing problems (at least 1e-12 from 0)."""
    return xp.where(bad, xp.maximum(reg * 10, 1e-12), reg)


def _where_batch(xp, mask, new, old):
    return xp.where(mask.reshape(mask.shape + (1,) * (new.ndim - 1)), new, old)


def _first(indices, most=10):
    """A short printable list of problem indices."""
    shown = [int(i) for i in indices[:most]]
    return f"{shown}{'...' if len(indices) > most else ''}"


def _float_list(a):
    return [round(float(v), 6) for v in a]


def _not_fitted_error():
    try:
        from sklearn.exceptions import NotFittedError

        return NotFittedError
    except ImportError:
        return AttributeError
