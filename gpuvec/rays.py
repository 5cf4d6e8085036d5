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
from typing import Any, Literal, Sequence

import numpy as np

from gpuvec import _jit
from gpuvec._backend import get_namespace, is_cupy_namespace, ndimage_for, to_numpy
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
    origin: Sequence[float],
    num: int | None = 5,
    *,
    order: int = 1,
    mode: Mode = "nearest",
    cval: float = 0.0,
    channel_axis: int | None = None,
    return_coords: bool = False,
) -> tuple[Any, ...]:
    """Max of the image sampled along the ray from every cell to ``origin``.

    Parameters
    ----------
    image : array, shape (M, N), (M, N, P), ... [with one channel axis]
        numpy or cupy array of an integer or floating dtype (float16, bool and
        complex are rejected, as scipy's map_coordinates cannot interpolate them).
        2-D images, 3-D volumes, any number of spatial axes.
    origin : sequence of float, one per spatial axis
        ``(row, col[, ...])`` of the rays' common end; integers or floats,
        inside the image or not.
    num : int or None, default 5
        Samples per ray, both ends included (``num >= 2``): sample ``k`` of cell
        ``x`` is at ``np.linspace(x[d], origin[d], num)[k]`` on every axis d.
        ``None`` samples every pixel the ray crosses (dense rays, see Notes).
    order : int, default 1
        Spline order, 0 to 5, as in ``scipy.ndimage.map_coordinates``.
    mode : {'nearest', 'constant', 'reflect', 'grid-mirror', 'mirror', 'grid-wrap', 'wrap', 'grid-constant'}
        How samples outside the image are treated, as in map_coordinates.
    cval : float, default 0.0
        The value outside the image for ``mode='constant'`` and ``'grid-constant'``.
    channel_axis : int, optional
        The axis of ``image`` that holds channels (e.g. -1 for an (H, W, 3)
        photograph): each channel gets its own result, on that axis.
    return_coords : bool, default False
        Also return the coordinates of each ray's max sample.

    Returns
    -------
    max_values : array, shape of image, dtype of image
        The largest sample on each cell's ray (NaN if any sample is NaN, as
        ``ndarray.max`` gives).
    argmax : array, shape of image, unsigned integer
        Index (0 at the cell, ``num - 1`` at the origin) of the first sample
        equal to the max; dtype uint8 for up to 256 samples per ray, uint16 up
        to 65536, uint32 beyond.
    coords : array of float64, shape (ndim,) + shape of image
        Only with ``return_coords``: ``coords[d]`` is the axis-d coordinate of
        the max sample, ``np.linspace(x[d], origin[d], num)[argmax]``
        (``ndim`` counts spatial axes; with channels, each channel's own).

    Notes
    -----
    ``order`` 0 and 1 with ``mode`` 'nearest' or 'constant' run on the streaming
    path, bit-identical to ``map_coordinates`` then max/argmax (the seed's
    accepted answer). Beyond the outputs it holds cache-sized buffers and 1-D
    axis tables of under 40 ``num (M + N + ...)`` bytes: nothing of size
    ``num M N``. For 2-D images on the CPU it is a compiled loop where numba
    is installed (``pip install gpuvec[jit]``; ``GPUVEC_JIT=0`` turns it off)
    and a blocked numpy loop otherwise; on cupy it is one fused kernel. All of
    them follow scipy's arithmetic (double accumulation, no fused
    multiply-add, scipy's rounding) and agree bit for bit. Volumes (3 or more
    axes) take the numpy loop on the CPU, ``map_coordinates`` on the GPU.

    Every other order and mode, and volumes on the GPU, run through
    ``map_coordinates`` (cupyx's on the GPU, whose arithmetic can differ from
    scipy's in the last bit) on chunks of at most ``2**21`` points; for
    ``order > 1`` each chunk repeats the spline prefilter, so that path is slow.

    Dense rays (``num=None``): the ray from cell ``x`` takes
    ``n(x) = L(x) + 1`` samples, ``L(x) = ceil(max_d |origin[d] - x[d]|)``, so
    consecutive samples are at most one pixel apart on every axis (unit steps
    along the longest axis); sample ``k`` is at
    ``np.linspace(x[d], origin[d], n(x))[k]``, interpolated by ``order`` and
    ``mode`` as above (``order=0``: the nearest pixel). The cost is the number
    of samples, ``sum(n(x))``, about ``cells * mean distance to the origin``:
    O(M N max(M, N)) for a 2-D image, streamed through ``map_coordinates`` in
    chunks of ``2**21`` samples, so memory stays O(M N).

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

    Where the max is, and every pixel on the ray:

    >>> _, _, coords = gpuvec.ray_max(m, (3, 3), num=5, return_coords=True)
    >>> coords[:, 5, 0]
    array([4.5 , 0.75])
    >>> gpuvec.ray_max(m, (3, 3), num=None, order=0)[0][5]
    array([7, 7, 8, 8, 8, 8])
    """
    xp = get_namespace(image)
    image = xp.asarray(image)
    if image.dtype.kind not in "iuf" or image.dtype == np.float16:
        msg = f"image must have an integer, float32 or float64 dtype; got {image.dtype}"
        raise TypeError(msg)
    if channel_axis is not None:
        channel_axis = check_int("channel_axis", channel_axis, minimum=-image.ndim, maximum=image.ndim - 1) % image.ndim
    spatial = image.ndim - (channel_axis is not None)
    if isinstance(origin, (str, bytes)) or not hasattr(origin, "__len__"):
        msg = f"origin must be a sequence of {spatial} finite numbers, one per spatial axis; got {origin!r}"
        raise TypeError(msg)
    if len(origin) != spatial or spatial < 1:
        msg = (
            f"origin must have one coordinate per spatial axis of image: image has shape {image.shape}"
            f"{f' with channel_axis={channel_axis}' if channel_axis is not None else ''} ({spatial} spatial axes), "
            f"origin has {len(origin)} values: {origin!r}"
        )
        raise ValueError(msg)
    origin = tuple(check_real(f"origin[{i}]", float(v) if hasattr(v, "dtype") else v) for i, v in enumerate(origin))
    if num is not None:
        num = check_int("num", num, minimum=2)
    order = check_int("order", order, minimum=0, maximum=5)
    check_choice("mode", mode, MODES)
    cval = check_real("cval", cval, finite=image.dtype.kind != "f")
    if 0 in image.shape:
        msg = f"image must have at least one element along every axis; got shape {image.shape}"
        raise ValueError(msg)

    if channel_axis is not None:
        channels = [_ray_max(xp, xp.take(image, c, axis=channel_axis), origin, num, order, mode, cval, return_coords) for c in range(image.shape[channel_axis])]
        out = [xp.stack([r[i] for r in channels], axis=channel_axis) for i in (0, 1)]
        if return_coords:  # coords keep their leading axis of spatial dimensions
            out.append(xp.stack([r[2] for r in channels], axis=channel_axis + 1))
        return tuple(out)
    return _ray_max(xp, image, origin, num, order, mode, cval, return_coords)


def _ray_max(xp, image, origin, num, order, mode, cval, return_coords):
    """ray_max on one channel, after validation."""
    if num is None:
        return _dense(xp, image, origin, order, mode, cval, return_coords)
    arg_dtype = _arg_dtype(num)
    if order <= 1 and mode in STREAMING_MODES and (image.ndim == 2 or not is_cupy_namespace(xp)):
        if is_cupy_namespace(xp):
            from gpuvec import _kernels

            best, arg = _kernels.ray_max_streaming(image, origin, num, order, mode, cval, arg_dtype)
        else:
            tabs = [_axis_table(n, o, num, order, mode) for n, o in zip(image.shape, origin)]
            if image.ndim == 2 and _jit.enabled():
                best, arg = _jit.ray_max_streaming(image, *tabs, num, order, cval, arg_dtype)
            else:
                best, arg = _stream_numpy(image, tabs, num, order, cval, arg_dtype)
    else:
        best, arg = _general(xp, image, origin, num, order, mode, cval, arg_dtype)
    if not return_coords:
        return best, arg
    coords = xp.empty((image.ndim,) + image.shape)
    for d, (n, o) in enumerate(zip(image.shape, origin)):
        along = xp.arange(n).reshape((n,) + (1,) * (image.ndim - 1 - d))
        coords[d] = _axis_positions(xp, n, o, num)[arg.astype(xp.intp), along]
    return best, arg, coords


# --------------------------------------------------------------------------- shared pieces


def _arg_dtype(samples: int) -> type:
    """The smallest unsigned dtype that holds every sample index (0 .. samples - 1)."""
    return np.uint8 if samples <= 256 else np.uint16 if samples <= 65536 else np.uint32


def _linspace(xp: types.ModuleType, start: Any, stop: Any, num: int) -> Any:
    """``out[k] == np.linspace(start, stop, num)[k]`` element by element, bit for bit.

    Shape ``(num,) + broadcast(start, stop).shape``. A vectorised
    ``np.linspace(array_start, stop, num)`` is *not* the same: it switches every
    element to ``k / div * delta`` as soon as one of them has a zero step. This
    follows the scalar calls, on either backend.
    """
    shape = np.broadcast_shapes(start.shape, np.shape(stop))
    if num == 1:
        return xp.broadcast_to(start, shape)[None].copy()
    div = num - 1
    delta = stop - start
    step = delta / div
    k = xp.arange(num, dtype=xp.float64).reshape((num,) + (1,) * len(shape))
    table = xp.where(step == 0, (k / div) * delta, k * step)
    table += start
    table[-1] = stop
    return table


def _axis_positions(xp: types.ModuleType, n: int, stop: float, num: int) -> Any:
    """``table[k, i] == np.linspace(i, stop, num)[k]``, shape (num, n): one axis of every ray."""
    return _linspace(xp, xp.arange(n, dtype=xp.float64), stop, num)


def _axis_table(n: int, stop: float, num: int, order: int, mode: str) -> dict[str, Any]:
    """Indices and weights along one axis for every sample index, shape (num, n) each.

    Follows scipy's ni_interpolation: 'constant' marks points outside
    [0, n-1]; order 1 weights are ``w0 = 1 - f``, ``w1 = 1 - w0``; order 0
    rounds with ``floor(c + 0.5)``. The CuPy kernel recomputes these per thread
    with the same operations (``ray_axis`` in ``gpuvec/_kernels.py``).
    """
    coord = _axis_positions(np, n, stop, num)
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


def _cast_rule(dtype: np.dtype) -> tuple[int, float, float]:
    """How a float64 sample becomes the image dtype, for the compiled loops:
    (kind, lo, hi), kind 0 float, 1 signed (round half away, clip), 2 unsigned."""
    if dtype.kind == "f":
        return 0, 0.0, 0.0
    info = np.iinfo(dtype)
    return (1 if dtype.kind == "i" else 2), float(info.min), float(info.max)


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


def _stream_numpy(image, tabs, num, order, cval, arg_dtype):
    """The blocked numpy loop: blocks along axis 0 that stay in cache, streaming over the samples."""
    shape, dtype = image.shape, image.dtype
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

    best = np.empty(shape, work_dtype)
    arg = np.empty(shape, arg_dtype)
    inner = math.prod(shape[1:])
    block = max(1, min(shape[0], _BLOCK_BYTES // (8 * inner)))
    bshape = (block,) + shape[1:]
    buffers = {
        "acc": np.empty(bshape),
        "src": np.empty(bshape, dtype),
        "levels": [np.empty(bshape) for _ in shape],
        "cur": np.empty(bshape, work_dtype),
        "mask": np.empty(bshape, bool),
        "nan": np.empty(bshape, bool),
        "best": np.empty(bshape, work_dtype),
        "arg": np.empty(bshape, arg_dtype),
        "argk": np.empty(bshape, arg_dtype),
    }
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN in scipy too, silently
        for r0 in range(0, shape[0], block):
            rs = slice(r0, min(shape[0], r0 + block))
            n = rs.stop - r0
            buf = {name: [b[:n] for b in v] if name == "levels" else v[:n] for name, v in buffers.items()}
            for k in range(num):
                acc = _sample_block(image, tabs, k, rs, order, buf)
                if is_int:
                    _round_like_scipy(acc, dtype)
                cur = acc
                if work_dtype != np.float64:  # the cast to a float32 image's dtype
                    cur = buf["cur"]
                    cur[...] = acc
                if tabs[0]["inside"] is not None:
                    outside = np.logical_not(_inside_mask(tabs, k, rs, buf["mask"]), out=buf["mask"])
                    cur[outside] = cval_sample
                _update_max(buf["best"], buf["arg"], cur, k, nan_aware, buf)
            # The running max lives in cache-sized buffers; the outputs are written once.
            best[rs] = buf["best"]
            arg[rs] = buf["arg"]
    if is_int:
        info = np.iinfo(dtype)
        return np.clip(best, info.min, info.max).astype(dtype), arg
    best += 0.0  # scipy's sums start at 0.0, so a sample is never -0.0
    return best, arg


def _axis_slice(tabs, name, d, k, rs, ndim):
    """Table ``name`` of axis d at step k (rows ``rs`` for axis 0), shaped to broadcast along axis d."""
    values = tabs[d][name][k, rs] if d == 0 else tabs[d][name][k]
    return values.reshape((-1,) + (1,) * (ndim - 1 - d))


def _inside_mask(tabs, k, rs, out):
    out[...] = True
    for d in range(len(tabs)):
        out &= _axis_slice(tabs, "inside", d, k, rs, len(tabs))
    return out


def _sample_block(image, tabs, k, rs, order, buf):
    """Step k's samples for the block ``rs`` of axis 0, in float64, with scipy's arithmetic.

    scipy sums the 2**ndim corner terms ``((m * w_0) * w_1) * ...`` in C order
    of the corners. Scaling whole slabs by each axis' weight before taking the
    next axis' indices makes the same products with fewer multiplications.
    """
    ndim, acc = image.ndim, buf["acc"]
    if order == 0:
        picked = np.take(image, tabs[0]["i0"][k, rs], axis=0, out=buf["src"], mode="wrap")
        for d in range(1, ndim):
            picked = np.take(picked, tabs[d]["i0"][k], axis=d, mode="wrap")
        np.copyto(acc, picked)
        return acc
    terms = _corner_terms(image, tabs, k, rs, 0, buf)
    np.copyto(acc, next(terms))
    for term in terms:
        acc += term
    return acc


def _corner_terms(src, tabs, k, rs, d, buf):
    ndim = len(tabs)
    level = buf["levels"][d]
    for j in (0, 1):
        if d == 0:
            taken = np.take(src, tabs[0][f"i{j}"][k, rs], axis=0, out=buf["src"], mode="wrap")
        else:
            taken = np.take(src, tabs[d][f"i{j}"][k], axis=d, out=level, mode="wrap")
        part = np.multiply(taken, _axis_slice(tabs, f"w{j}", d, k, rs, ndim), out=level)
        if d == ndim - 1:
            yield part
        else:
            yield from _corner_terms(part, tabs, k, rs, d + 1, buf)


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
    """Any order and mode, any number of axes: map_coordinates on blocks of axis 0, per sample index."""
    ndimage = ndimage_for(xp)
    shape = image.shape
    lins = [_axis_positions(xp, n, o, num) for n, o in zip(shape, origin)]
    best = xp.empty(shape, image.dtype)
    arg = xp.zeros(shape, arg_dtype)
    block = max(1, min(shape[0], _GENERAL_CHUNK // math.prod(shape[1:])))
    for r0 in range(0, shape[0], block):
        rs = slice(r0, min(shape[0], r0 + block))
        coords = xp.empty((image.ndim, rs.stop - r0) + shape[1:])
        best_b, arg_b = best[rs], arg[rs]
        for k in range(num):
            for d, lin in enumerate(lins):
                coords[d] = (lin[k, rs] if d == 0 else lin[k]).reshape((-1,) + (1,) * (image.ndim - 1 - d))
            cur = ndimage.map_coordinates(image, coords, order=order, mode=mode, cval=cval)
            if k == 0:
                best_b[...] = cur
                continue
            better = (cur > best_b) | (xp.isnan(cur) & ~xp.isnan(best_b))
            best_b[...] = xp.where(better, cur, best_b)  # where(), not a mask: no device sync per step
            arg_b[...] = xp.where(better, arg_b.dtype.type(k), arg_b)
    return best, arg


# --------------------------------------------------------------------------- dense rays


def _dense(xp, image, origin, order, mode, cval, return_coords):
    """Every pixel on the ray: n(x) = ceil(max_d |origin[d] - x[d]|) + 1 samples from cell x.

    2-D images on the CPU with numba: a compiled loop. Otherwise cells with the
    same n go through map_coordinates together, in chunks of at most
    ``_GENERAL_CHUNK`` samples, so memory stays O(cells).
    """
    shape, ndim = image.shape, image.ndim
    if ndim == 2 and order <= 1 and mode in STREAMING_MODES and not is_cupy_namespace(xp) and _jit.enabled():
        longest = math.ceil(max(max(abs(o), abs(o - (n - 1))) for n, o in zip(shape, origin)))  # at a corner
        best, arg, coords = _jit.ray_max_dense(image, origin, order, mode, cval, _arg_dtype(longest + 1))
        return (best, arg, coords) if return_coords else (best, arg)
    ndimage = ndimage_for(xp)
    grid = xp.stack(xp.meshgrid(*(xp.arange(n, dtype=xp.float64) for n in shape), indexing="ij")).reshape(ndim, -1)
    stop = xp.asarray(origin, dtype=xp.float64)[:, None]
    length = xp.ceil(xp.abs(stop - grid).max(axis=0)).astype(xp.int64)  # L(x); n(x) = L + 1
    max_len = int(length.max())
    best = xp.empty(grid.shape[1], image.dtype)
    arg = xp.empty(grid.shape[1], _arg_dtype(max_len + 1))
    coords_out = xp.empty((ndim, grid.shape[1])) if return_coords else None
    order_cells = xp.argsort(length)  # groups cells by ray length; order within a group does not matter
    counts = xp.bincount(length, minlength=max_len + 1)
    starts = np.concatenate([[0], np.cumsum(to_numpy(counts))])
    for L in range(max_len + 1):
        cells_all = order_cells[starts[L] : starts[L + 1]]
        per_chunk = max(1, _GENERAL_CHUNK // (L + 1))
        for c0 in range(0, cells_all.shape[0], per_chunk):
            cells = cells_all[c0 : c0 + per_chunk]
            pts = xp.moveaxis(_linspace(xp, grid[:, cells], stop, L + 1), 0, -1)  # (ndim, cells, L + 1)
            samples = ndimage.map_coordinates(image, pts.reshape(ndim, -1), order=order, mode=mode, cval=cval)
            samples = samples.reshape(cells.shape[0], L + 1)
            k = samples.argmax(axis=1)
            best[cells] = samples.max(axis=1)
            arg[cells] = k
            if return_coords:
                coords_out[:, cells] = xp.take_along_axis(pts, k[None, :, None], axis=2)[..., 0]
    out = (best.reshape(shape), arg.reshape(shape))
    return out + (coords_out.reshape((ndim,) + shape),) if return_coords else out
