"""Starting responsibilities for EM, batched: k-means++, kmeans, random, random_from_data.

:func:`initial_resp` is the one entry; :class:`gpuvec.mixture.GaussianMixture`
turns its responsibilities into starting parameters with one M-step. Every
method draws from the ``rng`` it is given (a :class:`gpuvec.random.Generator`)
and skips zero-weight (padding) samples where it picks samples.
"""

from __future__ import annotations

from typing import Any

__all__ = ["INIT_PARAMS", "initial_resp"]

INIT_PARAMS = ("k-means++", "kmeans", "random", "random_from_data")
_LLOYD_ITERATIONS = 10  # of init_params='kmeans'


def _sample_index(xp, p, rng):
    """One index per row of p (B, N), with probabilities proportional to p (uniform where p sums to 0)."""
    total = p.sum(1, keepdims=True)
    p = xp.where(total > 0, p, 1.0)
    cdf = xp.cumsum(p, axis=1)
    u = rng.random((p.shape[0], 1)) * cdf[:, -1:]
    return xp.minimum((cdf <= u).sum(1), p.shape[1] - 1)


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


def _one_hot_resp(xp, labels, K):
    return (labels[..., None] == xp.arange(K)).astype(xp.float64)


def _nearest(xp, X, centers):
    d2 = ((X[:, :, None, :] - centers[:, None, :, :]) ** 2).sum(-1)
    return d2.argmin(-1)


def initial_resp(xp: Any, X: Any, K: int, method: str, rng: Any, sample_weight: Any = None) -> Any:
    """Starting responsibilities of every sample, batched.

    Parameters
    ----------
    xp : module
    X : array, shape (B, N, D)
    K : int
        Components.
    method : {'k-means++', 'kmeans', 'random', 'random_from_data'}
        'k-means++' seeds centres by D^2 sampling and assigns every sample to
        its nearest centre; 'kmeans' adds 10 Lloyd iterations; 'random' draws
        uniform responsibilities; 'random_from_data' gives K distinct samples
        one component each.
    rng : gpuvec.random.Generator
    sample_weight : array, shape (B, N), optional

    Returns
    -------
    resp : array, shape (B, N, K)
        Rows sum to 1, except for 'random_from_data' (rows of zeros but K).

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.random import default_rng
    >>> X = np.array([[[0.0], [0.1], [9.0], [9.1]]])
    >>> resp = initial_resp(np, X, 2, "kmeans", default_rng(0))
    >>> bool((resp[0, 0] == resp[0, 1]).all() and (resp[0, 0] != resp[0, 2]).any())
    True
    """
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
        for _ in range(_LLOYD_ITERATIONS):
            resp = _one_hot_resp(xp, _nearest(xp, X, centers), K) * w[..., None]
            counts = resp.sum(1)[..., None]
            centers = xp.where(counts > 0, xp.matmul(xp.swapaxes(resp, 1, 2), X) / xp.maximum(counts, 1e-300), centers)
    return _one_hot_resp(xp, _nearest(xp, X, centers), K)
