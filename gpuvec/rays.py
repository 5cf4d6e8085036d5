"""The max of an image along the ray from every cell to an origin.

For every cell ``(r, c)`` of an image, ``num`` points are spaced evenly on the
segment from ``(r, c)`` to ``origin`` (exactly as ``np.linspace(r, orow, num)``
and ``np.linspace(c, ocol, num)`` space them), the image is interpolated there
as ``scipy.ndimage.map_coordinates`` does, and the max of those samples and the
index of the first sample reaching it are returned.

How it stays exact and small: for a fixed sample index ``k`` every cell's
sample point is ``(r + (orow - r) t_k, c + (ocol - c) t_k)``, an axis-aligned
grid, so all interpolation indices and weights come from two 1-D tables (one
per axis) and the work streams over ``k`` holding O(rows x cols) memory.
The samples are formed with scipy's arithmetic (weights ``w0 = 1 - f``,
``w1 = 1 - w0``, the four terms ``(m * wy) * wx`` summed in scipy's order in
float64, each sample cast to the image dtype with scipy's rounding), so the
results are bit-identical to ``map_coordinates`` followed by max/argmax.
"""

from __future__ import annotations

import math
import types
from typing import Any, Literal

import numpy as np

from gpuvec import _jit
from gpuvec._backend import get_namespace, is_cupy_namespace, ndimage_for
from gpuvec._checks import check_choice, check_int, check_real

__all__ = ["ray_max"]

Mode = Literal["nearest", "constant", "reflect", "grid-mirror", "mirror", "grid-wrap", "wrap", "grid-constant"]
MODES = ("nearest", "constant", "reflect", "grid-mirror", "mirror", "grid-wrap", "wrap", "grid-constant")
STREAMING_MODES = ("nearest", "constant")

# Rows per block on the CPU streaming path: each block's working set (about a
# dozen float64 rows of the image width) stays in cache while the loop runs
# over the samples.
_BLOCK_BYTES = 1 << 18
# Coordinates per map_coordinates call on the general (any order, any mode) path.
_GENERAL_CHUNK = 1 << 21


def ray_max(
    image: Any,
    origin: tuple[float, float],
    num: int = 5,
    *,
    order: int = 1,
    mode: Mode = "nearest",
    cval: float = 0.0,
) -> tuple[Any, Any]:
    """Max of the image sampled along the ray from every cell to ``origin``.

    Parameters
    ----------
    image : array, shape (M, N)
        numpy or cupy array of an integer or floating dtype (float16, bool and
        complex are rejected, as scipy's map_coordinates cannot interpolate them).
    origin : pair of float
        ``(row, col)`` of the ray's end; integers or floats, inside the image or
        not.
    num : int, default 5
        Samples per ray, both ends included (``num >= 2``): sample ``k`` of cell
        ``(r, c)`` is at ``(np.linspace(r, orow, num)[k], np.linspace(c, ocol, num)[k])``.
    order : int, default 1
        Spline order, 0 to 5, as in ``scipy.ndimage.map_coordinates``.
    mode : {'nearest', 'constant', 'reflect', 'grid-mirror', 'mirror', 'grid-wrap', 'wrap', 'grid-constant'}
        How samples outside the image are treated, as in map_coordinates.
    cval : float, default 0.0
        The value outside the image for ``mode='constant'`` and ``'grid-constant'``.

    Returns
    -------
    max_values : array, shape (M, N), dtype of image
        The largest sample on each cell's ray (NaN if any sample is NaN, as
        ``ndarray.max`` gives).
    argmax : array, shape (M, N), unsigned integer
        Index (0 at the cell, ``num - 1`` at the origin) of the first sample
        equal to the max; dtype uint8 for ``num <= 256``, uint16 for
        ``num <= 65536``, uint32 beyond.

    Notes
    -----
    ``order`` 0 and 1 with ``mode`` 'nearest' or 'constant' run on the streaming
    path, bit-identical to ``map_coordinates`` then max/argmax (the seed's
    accepted answer). Beyond the outputs it holds cache-sized row buffers and
    1-D axis tables of under 40 ``num (M + N)`` bytes: nothing of size
    ``num M N``. On the CPU it is a compiled loop where numba is installed
    (``pip install gpuvec[jit]``; ``GPUVEC_JIT=0`` turns it off) and a blocked
    numpy loop otherwise; on cupy it is one fused kernel. All three follow
    scipy's arithmetic (double accumulation, no fused multiply-add, scipy's
    rounding) and agree bit for bit. Every other order and mode runs through
    ``map_coordinates`` (cupyx's on the GPU, whose arithmetic can differ from
    scipy's in the last bit) on chunks of at most ``2**21`` points; for
    ``order > 1`` each chunk repeats the spline prefilter, so that path is slow.

    Integer samples are rounded half away from zero and clipped to the dtype,
    as scipy does. Integer images beyond 2**53 in magnitude lose precision in
    the float64 arithmetic, as they do in scipy.

    Examples
    --------
    The seed's 6x6 example:

    >>> import numpy as np, gpuvec
    >>> m = np.array([[10, 10, 10, 10, 10, 10],
    ...               [ 9,  9,  9, 10,  9,  9],
    ...               [ 9,  8,  9, 10,  8,  9],
    ...               [ 9,  7,  8,  0,  8,  9],
    ...               [ 8,  7,  7,  8,  8,  9],
    ...               [ 5,  6,  7,  7,  6,  7]])
    >>> m_max, m_dist = gpuvec.ray_max(m, (3, 3), num=5)
    >>> m_max[5]
    array([7, 7, 8, 8, 8, 8])
    >>> m_dist[5]
    array([1, 1, 2, 1, 2, 1], dtype=uint8)
    """
    xp = get_namespace(image)
    image = xp.asarray(image)
    if image.ndim != 2:
        msg = f"image must be a 2-D array of shape (rows, cols); got shape {image.shape}"
        raise ValueError(msg)
    if image.dtype.kind not in "iuf" or image.dtype == np.float16:
        msg = f"image must have an integer, float32 or float64 dtype; got {image.dtype}"
        raise TypeError(msg)
    if not isinstance(origin, (tuple, list)) and not hasattr(origin, "__len__"):
        msg = f"origin must be a pair (row, col) of finite numbers; got {origin!r}"
        raise TypeError(msg)
    if len(origin) != 2:
        msg = f"origin must be a pair (row, col) of finite numbers; got {len(origin)} values: {origin!r}"
        raise ValueError(msg)
    orow, ocol = (check_real(f"origin[{i}]", float(v) if hasattr(v, "dtype") else v) for i, v in enumerate(origin))
    num = check_int("num", num, minimum=2)
    order = check_int("order", order, minimum=0, maximum=5)
    check_choice("mode", mode, MODES)
    cval = check_real("cval", cval, finite=image.dtype.kind != "f")
    if 0 in image.shape:
        msg = f"image must have at least one row and one column; got shape {image.shape}"
        raise ValueError(msg)

    arg_dtype = np.uint8 if num <= 256 else np.uint16 if num <= 65536 else np.uint32
    if order <= 1 and mode in STREAMING_MODES:
        if is_cupy_namespace(xp):
            from gpuvec import _kernels

            return _kernels.ray_max_streaming(image, (orow, ocol), num, order, mode, cval, arg_dtype)
        ytab = _axis_table(image.shape[0], orow, num, order, mode)
        xtab = _axis_table(image.shape[1], ocol, num, order, mode)
        if _jit.enabled():
            return _jit.ray_max_streaming(image, ytab, xtab, num, order, cval, arg_dtype)
        return _stream_numpy(image, ytab, xtab, num, order, cval, arg_dtype)
    return _general(xp, image, (orow, ocol), num, order, mode, cval, arg_dtype)


# --------------------------------------------------------------------------- shared pieces


def _linspace_table(xp: types.ModuleType, n: int, stop: float, num: int) -> Any:
    """``table[k, i] == np.linspace(i, stop, num)[k]`` bit for bit, shape (num, n).

    A vectorised ``np.linspace(arange(n), stop, num, axis=1)`` is *not* the
    same: it switches every row to ``k / div * delta`` as soon as one row has a
    zero step. This follows the scalar calls row by row, on either backend.
    """
    div = num - 1
    start = xp.arange(n, dtype=xp.float64)
    delta = stop - start
    step = delta / div
    k = xp.arange(num, dtype=xp.float64)[:, None]
    table = k * step
    zero = step == 0
    table = xp.where(zero, (k / div) * delta, table)
    table += start
    table[-1] = stop
    return table


def _axis_table(n: int, stop: float, num: int, order: int, mode: str) -> dict[str, Any]:
    """Indices and weights along one axis for every sample index, shape (num, n) each.

    Follows scipy's ni_interpolation: 'constant' marks points outside
    [0, n-1]; order 1 weights are ``w0 = 1 - f``, ``w1 = 1 - w0``; order 0
    rounds with ``floor(c + 0.5)``. The CuPy kernel recomputes these per thread
    with the same operations (``ray_axis`` in ``gpuvec/_kernels.py``).
    """
    coord = _linspace_table(np, n, stop, num)
    inside = None
    if mode == "constant":
        inside = (coord >= 0) & (coord <= n - 1)
        coord = np.where(inside, coord, 0.0)
    if order == 0:
        i0 = np.clip(np.floor(coord + 0.5), 0, n - 1).astype(np.int32)
        return {"i0": i0, "inside": inside}
    floor = np.floor(coord)
    w0 = 1.0 - (coord - floor)
    w1 = 1.0 - w0
    # 'nearest' clamps the two neighbours' indices (the weights come from the
    # unclamped coordinate); 'constant' mirrors the upper neighbour of a point
    # at exactly n - 1.
    i0 = np.clip(floor, 0, n - 1).astype(np.int32)
    i1 = floor + 1
    edge = n - 1 if mode == "nearest" else max(n - 2, 0)
    i1 = np.where(i1 > n - 1, edge, np.clip(i1, 0, None)).astype(np.int32)
    return {"i0": i0, "i1": i1, "w0": w0, "w1": w1, "inside": inside}


def _round_like_scipy(t: Any, dtype: np.dtype) -> Any:
    """scipy's cast of float64 samples to an integer dtype, in place, before clipping:
    round half away from zero (unsigned: negatives become 0)."""
    if dtype.kind == "u":
        np.maximum(t, 0.0, out=t)
        t += 0.5
    else:
        t += np.copysign(0.5, t)
    return np.trunc(t, out=t)


# --------------------------------------------------------------------------- CPU streaming path


def _stream_numpy(image, ytab, xtab, num, order, cval, arg_dtype):
    rows, cols = image.shape
    dtype = image.dtype
    is_int = dtype.kind in "iu"
    # Samples are compared as map_coordinates would return them: in the image's
    # float dtype, or for integer images as their rounded float64 values.
    work_dtype = np.dtype(np.float64) if is_int else dtype
    cval_sample = np.array([cval])
    if is_int:
        _round_like_scipy(cval_sample, dtype)
    cval_sample = cval_sample.astype(work_dtype)[0]
    # ndarray.max's NaN rule costs three more passes; only NaN, inf (inf * 0) or a NaN cval need it.
    nan_aware = not is_int and not (math.isfinite(cval) and bool(np.isfinite(image).all()))

    best = np.empty((rows, cols), work_dtype)
    arg = np.empty((rows, cols), arg_dtype)
    block = max(1, min(rows, _BLOCK_BYTES // (8 * cols)))
    buffers = {
        "acc": np.empty((block, cols)),
        "term": np.empty((block, cols)),
        "rows": np.empty((block, cols)),
        "src": np.empty((block, cols), dtype),
        "cur": np.empty((block, cols), work_dtype),
        "mask": np.empty((block, cols), bool),
        "nan": np.empty((block, cols), bool),
        "best": np.empty((block, cols), work_dtype),
        "arg": np.empty((block, cols), arg_dtype),
        "argk": np.empty((block, cols), arg_dtype),
    }
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN in scipy too, silently
        for r0 in range(0, rows, block):
            rs = slice(r0, min(rows, r0 + block))
            buf = {name: b[: rs.stop - r0] for name, b in buffers.items()}
            for k in range(num):
                acc = _sample_rows(image, ytab, xtab, k, rs, order, buf)
                if is_int:
                    _round_like_scipy(acc, dtype)
                cur = acc if work_dtype == np.float64 else np.copyto(buf["cur"], acc) or buf["cur"]
                if ytab["inside"] is not None:
                    outside = np.logical_and.outer(ytab["inside"][k, rs], xtab["inside"][k], out=buf["mask"])
                    cur[np.logical_not(outside, out=outside)] = cval_sample
                _update_max(buf["best"], buf["arg"], cur, k, nan_aware, buf)
            # The running max lives in cache-sized buffers; the outputs are written once.
            best[rs] = buf["best"]
            arg[rs] = buf["arg"]
    if is_int:
        info = np.iinfo(dtype)
        return np.clip(best, info.min, info.max).astype(dtype), arg
    best += 0.0  # scipy's sums start at 0.0, so a sample is never -0.0
    return best, arg


def _sample_rows(image, ytab, xtab, k, rs, order, buf):
    """Step k's samples for the rows ``rs``, in float64, with scipy's arithmetic."""
    if order == 0:
        src = np.take(image, ytab["i0"][k, rs], axis=0, out=buf["src"], mode="wrap")
        np.copyto(buf["acc"], src[:, xtab["i0"][k]])
        return buf["acc"]
    acc, term, weighted = buf["acc"], buf["term"], buf["rows"]
    for j in (0, 1):
        # (m * wy) * wx: scaling whole rows by wy before picking columns makes
        # the same products as scipy's per-point loop, with fewer multiplications.
        src = np.take(image, ytab[f"i{j}"][k, rs], axis=0, out=buf["src"], mode="wrap")
        np.multiply(src, ytab[f"w{j}"][k, rs, None], out=weighted)
        for i in (0, 1):
            dest = acc if i == j == 0 else term
            np.take(weighted, xtab[f"i{i}"][k], axis=1, out=dest, mode="wrap")
            dest *= xtab[f"w{i}"][k]
            if dest is term:
                acc += term
    return acc


def _update_max(best, arg, cur, k, nan_aware, buf):
    """Fold step k into the running max and first argmax (ndarray.max/argmax's rules).

    Branch-free: masked copies run several times slower on the unpredictable
    masks that real images give.
    """
    if k == 0:
        best[...] = cur
        arg[...] = 0
        return
    better = np.greater(cur, best, out=buf["mask"])
    if nan_aware:  # the first NaN wins and stays
        isnan = np.isnan(cur, out=buf["nan"])
        better |= isnan
        better &= ~np.isnan(best, out=buf["nan"])
    np.maximum(best, cur, out=best)  # propagates NaN, as ndarray.max does
    # arg < k everywhere, so max(arg, k * better) sets exactly the improved cells to k.
    np.maximum(arg, np.multiply(better, arg.dtype.type(k), out=buf["argk"]), out=arg)


# --------------------------------------------------------------------------- any order, any mode


def _general(xp, image, origin, num, order, mode, cval, arg_dtype):
    ndimage = ndimage_for(xp)
    rows, cols = image.shape
    ylin = _linspace_table(xp, rows, origin[0], num)
    xlin = _linspace_table(xp, cols, origin[1], num)
    best = xp.empty((rows, cols), image.dtype)
    arg = xp.zeros((rows, cols), arg_dtype)
    block = max(1, min(rows, _GENERAL_CHUNK // cols))
    for r0 in range(0, rows, block):
        r1 = min(rows, r0 + block)
        coords = xp.empty((2, r1 - r0, cols))
        best_b, arg_b = best[r0:r1], arg[r0:r1]
        for k in range(num):
            coords[0] = ylin[k, r0:r1, None]
            coords[1] = xlin[k, None, :]
            cur = ndimage.map_coordinates(image, coords, order=order, mode=mode, cval=cval)
            if k == 0:
                best_b[...] = cur
                continue
            better = (cur > best_b) | (xp.isnan(cur) & ~xp.isnan(best_b))
            best_b[better] = cur[better]
            arg_b[better] = k
    return best, arg
