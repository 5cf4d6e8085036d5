"""The mixture's dask plumbing: block tasks, the passes over N-split data, the weights as dask arrays.

Used by :mod:`gpuvec.mixture._dask` (the entry points of both estimators). A pass maps one task over X's
(b, n, D) blocks; each returns one packed float64 numpy row (zeros for the problems of other blocks) and
``sum(split_every=8)`` adds the rows in a tree, so the client receives one small vector per pass whatever
the number of blocks or the chunk type.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from gpuvec._core.dispatch import chunk_elements
from gpuvec._core.namespace import get_namespace, is_dask_array, to_numpy
from gpuvec._core.threads import blas_limited
from gpuvec.mixture._covariance import COVARIANCE_TYPES
from gpuvec.mixture._validation import check_weight_values
from gpuvec.mixture._xp import MixtureParams, SufficientStats, e_step, sufficient_statistics

__all__ = [
    "SPLIT_EVERY",
    "FirstPass",
    "compute",
    "dask_modules",
    "first_pass",
    "map_blocks",
    "predict_block",
    "result_dtype",
    "split_pass",
    "tree_sum",
    "weight_as_dask",
]

SPLIT_EVERY = 8
"""Fan-in of the tree that adds the blocks' statistics."""


def dask_modules():
    try:
        import dask
        import dask.array as da
    except ImportError:  # pragma: no cover - a dask array without dask cannot exist
        msg = "GaussianMixture on dask arrays needs the extra: pip install 'gpuvec[dask]'"
        raise TypeError(msg) from None
    return dask, da


def compute(*collections):
    dask, _ = dask_modules()
    with blas_limited(always=True):  # held around the whole compute: the tasks run in dask's threads
        return dask.compute(*collections)


def result_dtype(X):
    return np.float32 if X.dtype == np.float32 else np.float64


def weight_as_dask(sample_weight, X, shape, chunks, scaled=False):
    """sample_weight (dask or in memory) as a float64 dask array of ``shape`` chunked like X's leading axes."""
    _, da = dask_modules()
    if type(sample_weight).__module__.split(".sparse")[0] in ("scipy", "cupyx.scipy"):
        raise TypeError("sample_weight must be a dense array; got a sparse matrix (use .toarray())")
    if not is_dask_array(sample_weight):
        in_memory = (
            sample_weight
            if hasattr(sample_weight, "__array_namespace__") or hasattr(sample_weight, "__cuda_array_interface__")
            else np.asarray(sample_weight)
        )
        get_namespace(X._meta, in_memory)  # TypeError for numpy weights with cupy chunks: no silent copy
        sw = da.from_array(in_memory, chunks=-1)
    else:
        sw = sample_weight
        get_namespace(X._meta, sw._meta)  # the same chunk type as X's
    if np.dtype(sw.dtype).kind not in "biuf":
        raise TypeError(f"sample_weight must be a real numeric array; got dtype {sw.dtype}")
    if tuple(sw.shape) != shape:
        raise ValueError(f"sample_weight must have shape {shape} to match X; got shape {tuple(sw.shape)}")
    sw = sw.astype(np.float64).rechunk(chunks)
    if not scaled:  # for in-memory fits of blocks, which scale their own
        return sw
    # scaled to mean 1 over each problem's positive weights, as in memory (validate_sample_weight)
    positive, total = compute((sw > 0).sum(axis=-1), sw.sum(axis=-1))
    positive, total = np.asarray(positive, dtype=np.float64), np.asarray(total)
    scale = np.where(total > 0, positive / np.where(total > 0, total, 1.0), 1.0)
    return sw * (scale[..., None] if scale.ndim else float(scale))


class FirstPass(NamedTuple):
    """What the first pass over N-split data gives the client: per problem the (weighted) mean (B, D), the
    shift of the statistics (B, 1, D), the total weight (B,) (the rows without weights), the rows of
    positive weight (B,) (all rows without weights)."""

    mean: Any
    shift: Any
    total: Any
    positive: Any


def first_pass(X3, sw, n_components, *also):
    """The first pass over (B, N, D) dask data: the checks of X and sample_weight (non-finite values, bad
    weights, fewer than ``n_components`` positive weights), the means and shifts; the dask collections
    ``also`` are computed in the same call. Returns (:class:`FirstPass`, the computed ``also``)."""
    B, _, D = X3.shape
    K = n_components
    sums, *computed = compute(
        tree_sum(map_blocks(_first_pass_block, X3, sw, width=B * (2 * D + 5), n_problems=B)), *also
    )
    sums = sums.reshape(B, 2 * D + 5)
    if (sums[:, 2 * D + 2] > 0).any():
        raise ValueError("Input X contains NaN or infinity (or a value too large for dtype('float64')).")
    if sw is not None:
        check_weight_values(
            bad_values=bool((sums[:, 2 * D + 3] > 0).any()),
            empty_problem=bool((sums[:, 2 * D + 1] == 0).any()),
            too_few_positive=bool((sums[:, 2 * D + 4] < K).any()),
            n_components=K,
        )
    mean = sums[:, :D] / sums[:, D : D + 1]
    total = positive = sums[:, D]
    if sw is not None:
        positive = sums[:, 2 * D + 4]
        total = sums[:, 2 * D + 1]
        weighted = sums[:, D + 1 : 2 * D + 1] / np.where(total > 0, total, 1.0)[:, None]
        mean = np.where(total[:, None] > 0, weighted, mean)
    return FirstPass(mean, mean.reshape(B, 1, D), total, positive), computed


def _layout(S, K, D, covariance_type):
    """Shapes of the packed statistics of S starts: nk, sx, sxx, log-likelihood, weight sum."""
    tail = COVARIANCE_TYPES[covariance_type].moments_shape(K, D)
    return ((S, K), (S, K, D), (S,) + tail, (S,), (S,))


def _unpack(vec, shapes):
    out, at = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(vec[at : at + size].reshape(shape))
        at += size
    return out


def _first_pass_block(x, w=None, *, n_problems, block_info=None):
    """One (b, n, D) block's sums for the shifts and the checks, as a (1, 1, B * (2D + 5)) float64 numpy row
    (zeros for the problems of other blocks). Per problem: sum x (D), rows, sum w x (D), sum w, non-finite
    x, bad weights (non-finite or negative), positive weights."""
    xp = get_namespace(x)
    b0, b1 = block_info[0]["array-location"][0]
    b, n, D = x.shape
    x64 = x.astype(xp.float64, copy=False)
    rows = xp.zeros((b, 2 * D + 5))
    rows[:, :D] = x64.sum(1)
    rows[:, D] = n
    finite = xp.isfinite(x64)
    rows[:, 2 * D + 2] = n * D - finite.sum((1, 2))
    if w is not None:
        w = w.reshape(b, n)
        good = xp.isfinite(w) & (w >= 0)
        wz = xp.where(good, w, 0.0)
        rows[:, D + 1 : 2 * D + 1] = xp.matmul(wz[:, None, :], xp.where(finite, x64, 0.0))[:, 0]
        rows[:, 2 * D + 1] = wz.sum(1)
        rows[:, 2 * D + 3] = n - good.sum(1)
        rows[:, 2 * D + 4] = (wz > 0).sum(1)
    out = np.zeros((n_problems, 2 * D + 5))
    out[b0:b1] = to_numpy(rows)
    return out.reshape(1, 1, -1)


def _stats_block(x, w=None, *, params, problems, shift, covariance_type, block_info=None):
    """One (b, n, D) block's :class:`SufficientStats` of the starts in ``params`` (start s fits problem
    ``problems[s]``), packed in one (1, 1, width) float64 numpy row; zeros for the starts of other blocks."""
    xp = get_namespace(x)
    b0, b1 = block_info[0]["array-location"][0]
    weights, means, P = params
    S, K, D = means.shape
    shapes = _layout(S, K, D, covariance_type)
    out = [np.zeros(s) for s in shapes]
    mine = np.nonzero((problems >= b0) & (problems < b1))[0]
    if mine.size:
        b, n, _ = x.shape
        local = problems[mine] - b0
        w = None if w is None else w.reshape(b, n)
        if b == 1:  # every start reads the same rows (a view)
            X = xp.broadcast_to(x, (mine.size, n, D))
            sw = None if w is None else xp.broadcast_to(w, (mine.size, n))
        elif mine.size == b and bool((local == np.arange(b)).all()):
            X, sw = x, w
        else:
            idx = xp.asarray(local)
            X, sw = x[idx], None if w is None else w[idx]
        part = MixtureParams(*(None if a is None else xp.asarray(a[mine]) for a in (weights, means, None, P)))
        stats = sufficient_statistics(X, part, covariance_type, sw, xp.asarray(shift[problems[mine]]))
        for full, got in zip(out, (stats.nk, stats.sx, stats.sxx, stats.log_likelihood, stats.weight_sum)):
            full[mine] = to_numpy(got)
    return np.concatenate([a.reshape(-1) for a in out]).reshape(1, 1, -1)


def map_blocks(func, X, sw, *, width, **kwargs):
    """``func(x_block[, w_block], **kwargs)`` over X's (b, n, D) blocks, each giving a (1, 1, width) row."""
    _, da = dask_modules()
    nb, nn = X.numblocks[:2]
    args = (X,) if sw is None else (X, sw[:, :, None])
    chunks = ((1,) * nb, (1,) * nn, (width,))
    return da.map_blocks(func, *args, chunks=chunks, dtype=np.float64, meta=np.empty((0, 0, 0)), **kwargs)


def tree_sum(rows):
    """The blocks' rows added in a tree of fan-in :data:`SPLIT_EVERY`."""
    return rows.sum(axis=(0, 1), split_every=SPLIT_EVERY)


def split_pass(X, sw, params, problems, shift, covariance_type):
    """One EM pass: the summed statistics of the starts in ``params`` (numpy, on the client)."""
    dask, _ = dask_modules()
    S, K, D = params.means.shape
    shapes = _layout(S, K, D, covariance_type)
    width = sum(int(np.prod(s)) for s in shapes)
    packed = dask.delayed((params.weights, params.means, params.precisions_cholesky), pure=True)  # one key
    rows = map_blocks(
        _stats_block, X, sw, width=width, params=packed, problems=problems, shift=shift, covariance_type=covariance_type
    )
    (vec,) = compute(tree_sum(rows))
    nk, sx, sxx, ll, wsum = _unpack(vec, shapes)
    return SufficientStats(nk, sx, sxx, ll, wsum, shift[problems])


def predict_block(x, params=None, covariance_type="full", what="labels", out_dtype=np.float64, block_info=None):
    """Labels, responsibilities or log-likelihoods of one block, in cache-sized row chunks. ``params``: the
    weights, means and precision factors, and None or the per-problem shift of the log-likelihoods (the
    variational E-step's)."""
    xp = get_namespace(x)
    weights, means, P = (xp.asarray(a) for a in params[:3])
    shift = xp.zeros(weights.shape[:-1]) if params[3] is None else xp.asarray(params[3])
    batched = x.ndim == 3
    if batched:  # this block's problems
        b0, b1 = block_info[0]["array-location"][0]
        weights, means, P, shift = weights[b0:b1], means[b0:b1], P[b0:b1], shift[b0:b1]
    else:
        x, weights, means, P, shift = x[None], weights[None], means[None], P[None], shift[None]
    X = x.astype(xp.float64, copy=False)
    if not bool(xp.isfinite(X).all()):
        kind = "NaN" if bool(xp.isnan(X).any()) else "infinity or a value too large for dtype('float64')"
        raise ValueError(f"Input X contains {kind}.")
    B, N, D = X.shape
    K = means.shape[1]
    if what == "labels":
        out = xp.empty((B, N), dtype=xp.int64)
    else:
        out = xp.empty((B, N, K) if what == "proba" else (B, N), dtype=out_dtype)
    step = max(1, chunk_elements(xp, "mixture") // max(1, B * max(K, D) * D))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for s in range(0, N, step):
            sl = slice(s, min(N, s + step))
            log_resp, log_norm = e_step(X[:, sl], weights, means, P, covariance_type)
            if what == "labels":
                out[:, sl] = log_resp.argmax(-1)
            elif what == "proba":
                out[:, sl] = xp.exp(log_resp)
            else:
                out[:, sl] = log_norm + shift[:, None]
    return out if batched else out[0]
