"""Starting responsibilities for EM, batched: k-means++, kmeans, random, random_from_data.

:func:`initial_labels` is the entry for 'k-means++' and 'kmeans' (one label per
sample: the start's responsibilities are one-hot, and never built), and
:func:`initial_resp` for every method; :class:`gpuvec.mixture.GaussianMixture`
turns them into starting parameters with one (chunked) M-step. Every method
draws from the ``rng`` it is given (a :class:`gpuvec.random.Generator`) and skips
zero-weight (padding) samples where it picks samples.

Every pass over X runs in chunks of samples (the mixture chunk budget): the
largest temporaries are a few (B, N) arrays (distances, labels), never (B, N, D)
or (B, N, K, D).
"""

from __future__ import annotations

import math
from typing import Any, Literal

import gpuvec.mixture._dispatch as _dispatch
from gpuvec._core.dispatch import chunk_elements

__all__ = ["INIT_PARAMS", "LABEL_METHODS", "InitParams", "initial_labels", "initial_resp"]

InitParams = Literal["k-means++", "kmeans", "random", "random_from_data"]
INIT_PARAMS: tuple[InitParams, ...] = ("k-means++", "kmeans", "random", "random_from_data")
LABEL_METHODS = ("k-means++", "kmeans")  # starts that are one label per sample
_LLOYD_ITERATIONS = 10  # of init_params='kmeans'


def _sample_chunks(xp, N, per_sample):
    step = max(1, chunk_elements(xp, "mixture") // max(1, per_sample))
    for s in range(0, N, step):
        yield slice(s, min(N, s + step))


def _sample_index(xp, p, rng):
    """One index per row of p (B, N), with probabilities proportional to p (uniform where p sums to 0).

    The running sum is taken chunk by chunk, carried across chunks so that it is
    numpy's sequential ``cumsum`` bit for bit, without an (B, N) cumulative array.
    """
    B, N = p.shape
    chunks = list(_sample_chunks(xp, N, B))
    total = xp.zeros(B)
    for s in chunks:  # the last value of cumsum(p): a sequential sum (in float64 for float32 p)
        c = p[:, s].astype(xp.float64)
        c[:, 0] += total
        total = xp.cumsum(c, axis=1)[:, -1]
    positive = total > 0
    if not bool(positive.all()):  # uniform where p sums to 0
        p = xp.where(positive[:, None], p, 1.0)
        total = xp.where(positive, total, float(N))
    u = rng.random((B, 1)) * total[:, None]
    count = xp.zeros(B, dtype=xp.int64)
    carry = xp.zeros(B)
    for s in chunks:
        c = p[:, s].astype(xp.float64)
        c[:, 0] += carry
        cdf = xp.cumsum(c, axis=1)
        count += (cdf <= u).sum(1)
        carry = cdf[:, -1]
    return xp.minimum(count, N - 1)


def _sq_dist(xp, X, center, s):
    """Squared distances of samples s of X (B, N, D) to one centre per problem (B, D): (B, n)."""
    d = X[:, s].astype(xp.float64) - center[:, None, :]
    d *= d
    return d.sum(-1)


def _kmeans_pp_centers(xp, X, K, rng, sample_weight):
    """Batched greedy k-means++ seeding: indices (B, K).

    Each centre after the first is the best of ``2 + int(log(K))`` candidates drawn by D^2 sampling (the
    one that leaves the smallest weighted sum of squared distances), as sklearn's ``kmeans_plusplus``:
    one draw per centre (Arthur & Vassilvitskii's plain rule) puts two centres in one cluster often
    enough that EM ends in a worse optimum for a third of seeds on well-separated clusters.
    """
    B, N, D = X.shape
    idx = xp.empty((B, K), dtype=xp.int64)
    bidx = xp.arange(B)
    if sample_weight is None:  # _sample_index of ones (cdf 1, 2, ..., N exactly), without the ones
        u = rng.random((B, 1)) * float(N)
        idx[:, 0] = xp.minimum(xp.floor(u[:, 0]).astype(xp.int64), N - 1)
    else:
        idx[:, 0] = _sample_index(xp, sample_weight, rng)
    # Squared distances in float64, kept in X's precision (float32 X: a float32 (B, N) array).
    dtype = X.dtype if X.dtype == xp.float32 else xp.float64
    d2 = xp.empty((B, N), dtype=dtype)
    update = _distance_update(xp, X, B * N * K * D)
    update(X[bidx, idx[:, 0]].astype(xp.float64), d2, True)
    wd2 = d2 if sample_weight is None else xp.empty((B, N), dtype=dtype)
    trials = 2 + int(math.log(K)) if K > 1 else 1
    trial_d2 = xp.empty_like(d2)
    chunks = list(_sample_chunks(xp, N, B))
    for k in range(1, K):
        if sample_weight is not None:  # a zero-weight row is never drawn, whatever its distance (0 * inf is NaN)
            for s in chunks:
                wd2[:, s] = xp.where(sample_weight[:, s] > 0, sample_weight[:, s] * d2[:, s], 0.0)
        best_cost = xp.full(B, xp.inf)
        for trial in range(trials):  # the candidate that leaves the least: only its index is kept
            candidate = _sample_index(xp, wd2, rng)
            trial_d2[...] = d2
            update(X[bidx, candidate].astype(xp.float64), trial_d2, False)
            cost = _weighted_sum(xp, trial_d2, sample_weight, chunks)
            better = cost < best_cost
            idx[:, k] = xp.where(better, candidate, idx[:, k]) if trial else candidate
            best_cost = xp.where(better, cost, best_cost)
        update(X[bidx, idx[:, k]].astype(xp.float64), d2, False)
    return idx


def _weighted_sum(xp, d2, sample_weight, chunks):
    """Per problem, the (sample-weighted) sum of d2 (B, N) in float64, a chunk at a time."""
    total = xp.zeros(d2.shape[0])
    for s in chunks:
        part = d2[:, s].astype(xp.float64)
        if sample_weight is not None:
            part = xp.where(sample_weight[:, s] > 0, sample_weight[:, s] * part, 0.0)
        total += part.sum(1)
    return total


def _distance_update(xp, X, work):
    """``update(center (B, D), d2 (B, N), first)``: ``d2 = dist^2`` to the centre (first) or the minimum with it."""
    compiled = _dispatch.compiled(xp, work)
    if compiled is not None:
        return lambda center, d2, first: compiled.min_sq_dist(X, center, d2, first)
    chunks = list(_sample_chunks(xp, X.shape[1], X.shape[0] * X.shape[2]))

    def update(center, d2, first):
        for s in chunks:
            if first:
                d2[:, s] = _sq_dist(xp, X, center, s)
            else:
                xp.minimum(d2[:, s], _sq_dist(xp, X, center, s), out=d2[:, s])

    return update


def _one_hot_resp(xp, labels, K):
    return (labels[..., None] == xp.arange(K)).astype(xp.float64)


def _label_dtype(xp, K):
    """The narrowest signed integer type that holds labels 0..K-1 (int8 for K <= 127): N labels of 1 byte."""
    return xp.int8 if K <= 127 else xp.int16 if K <= 32767 else xp.int32


def _nearest(xp, X, centers):
    """The nearest centre (B, K, D) of every sample, chunk by chunk: labels (B, N)."""
    B, N, D = X.shape
    K = centers.shape[1]
    labels = xp.empty((B, N), dtype=_label_dtype(xp, K))
    compiled = _dispatch.compiled(xp, B * N * K * D)
    if compiled is not None:
        return compiled.nearest(X, centers, labels)
    for s in _sample_chunks(xp, N, B * K * D):
        if D <= 8:  # a feature at a time, in order (numpy's reduce over a short axis is slow; same sums)
            x = X[:, s].astype(xp.float64)
            d2 = (x[:, :, None, 0] - centers[:, None, :, 0]) ** 2
            for j in range(1, D):
                d2 += (x[:, :, None, j] - centers[:, None, :, j]) ** 2
            labels[:, s] = d2.argmin(-1)
            continue
        d = X[:, s, None, :].astype(xp.float64) - centers[:, None, :, :]
        d *= d
        labels[:, s] = d.sum(-1).argmin(-1)
    return labels


def _lloyd_centers(xp, X, labels, K, w, centers):
    """The mean of each cluster (weighted by w (B, N) unless None; chunked sums), or the old centre for an
    empty cluster."""
    B, N, D = X.shape
    sums = xp.zeros((B, K, D))
    counts = xp.zeros((B, K, 1))
    for s in _sample_chunks(xp, N, B * K):
        resp = _one_hot_resp(xp, labels[:, s], K)
        if w is not None:
            resp *= w[:, s, None]
        counts += resp.sum(1)[..., None]
        sums += xp.matmul(xp.swapaxes(resp, 1, 2), X[:, s].astype(xp.float64, copy=False))
    return xp.where(counts > 0, sums / xp.maximum(counts, 1e-300), centers)


def initial_labels(xp: Any, X: Any, K: int, method: str, rng: Any, sample_weight: Any = None) -> Any:
    """The starting component of every sample for 'k-means++' or 'kmeans', shape (B, N), the narrowest int type.

    'k-means++' seeds centres by D^2 sampling and assigns every sample to its
    nearest centre; 'kmeans' adds 10 Lloyd iterations. Memory: a few (B, N)
    arrays; X is read in chunks.

    Examples
    --------
    >>> import numpy as np
    >>> from gpuvec.random import default_rng
    >>> X = np.array([[[0.0], [0.1], [9.0], [9.1]]])
    >>> labels = initial_labels(np, X, 2, "kmeans", default_rng(0))
    >>> bool(labels[0, 0] == labels[0, 1] != labels[0, 2] == labels[0, 3])
    True
    """
    B = X.shape[0]
    bidx = xp.arange(B)[:, None]
    centers = X[bidx, _kmeans_pp_centers(xp, X, K, rng, sample_weight)].astype(xp.float64)
    if method == "kmeans":  # a few batched Lloyd iterations
        for _ in range(_LLOYD_ITERATIONS):
            centers = _lloyd_centers(xp, X, _nearest(xp, X, centers), K, sample_weight, centers)
    return _nearest(xp, X, centers)


def initial_resp(xp: Any, X: Any, K: int, method: str, rng: Any, sample_weight: Any = None) -> Any:
    """Starting responsibilities of every sample, batched.

    Parameters
    ----------
    xp : module
    X : array, shape (B, N, D)
    K : int
        Components.
    method : {'k-means++', 'kmeans', 'random', 'random_from_data'}
        'k-means++' and 'kmeans': see :func:`initial_labels` (whose labels are
        one-hot here); 'random' draws uniform responsibilities;
        'random_from_data' gives K distinct samples one component each.
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
    return _one_hot_resp(xp, initial_labels(xp, X, K, method, rng, sample_weight), K)
