"""Namespace-generic ray_max: ``map_coordinates`` (scipy's or cupyx's) on chunks of sample points.

Serves every order and mode, any number of axes, dense rays, and the GPU where no
fused kernel exists yet. On numpy it is bit-identical to ``map_coordinates`` then max/argmax
by construction (it *is* map_coordinates, on the positions of
:func:`gpuvec.rays._rules.linspace`); on cupy, cupyx's arithmetic can differ from
scipy's in the last bit. Same names and signatures as :mod:`gpuvec.rays._numpy`,
:mod:`gpuvec.rays._numba` and :mod:`gpuvec.rays._cuda`; the image read must be the
whole image here (``window.offset`` all zero), since the spline modes look past
any region.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from gpuvec._core.dispatch import chunk_elements
from gpuvec._core.namespace import get_namespace, ndimage_for, to_numpy
from gpuvec._core.threads import run_parallel, threads_for
from gpuvec.rays._rules import Window, axis_positions, better, cast_rule, linspace, to_dtype

# Samples up to which a numpy call takes all of them in one map_coordinates call (a few hundred KiB).
ONE_CALL_POINTS = 1 << 14


def _whole_image_only(image: Any, window: Window) -> None:
    if tuple(image.shape) != tuple(window.shape) or any(window.offset):
        msg = (
            "this ray_max path (map_coordinates: orders above 1, modes other than 'nearest'/'constant', dense rays) "
            f"reads the whole image; got a region of shape {tuple(image.shape)} at offset {window.offset} "
            f"of an image of shape {window.shape}"
        )
        raise ValueError(msg)


def _sampler(xp: Any, image: Any, order: int, mode: str, cval: float) -> tuple[Callable[[Any], Any], np.dtype[Any]]:
    """map_coordinates at given points, returning each sample as the image dtype gives it back.

    Float images: in their dtype. Integer images: rounded and clipped by
    :func:`gpuvec.rays._rules.cast_rule` here rather than by map_coordinates, whose own
    cast overflows near the int64/uint64 limits (older scipy versions wrap spline
    overshoot; cupyx rounds half to even); in the image dtype up to 32 bits, as float64
    values for 64.
    """
    ndimage = ndimage_for(xp)
    kind, lo, hi = cast_rule(image.dtype)
    if kind and mode == "grid-constant" and order > 1:  # scipy pads the image with cval in its dtype: a cval
        cval = min(max(cval, lo), hi)  # outside it is clipped first (the samples would clip it anyway)
    if kind == 0:
        return lambda pts: ndimage.map_coordinates(image, pts, order=order, mode=mode, cval=cval), image.dtype
    # Up to 32 bits the dtype's max is a float64 and the cast truncates as trunc does: the clipped samples
    # are cast to the image dtype (max and argmax over 1-4 bytes a sample, not 8; 256 x 256 uint8, num=50,
    # order 3: 163 -> 144 ms in one run); int64 and uint64 keep float64 samples for to_dtype's saturation.
    direct = image.dtype.itemsize <= 4

    def sample(pts: Any) -> Any:
        t = ndimage.map_coordinates(image, pts, output=xp.float64, order=order, mode=mode, cval=cval)
        if kind == 2:  # half away from zero: for t >= 0, + 0.5 then truncate
            xp.maximum(t, 0.0, out=t)
            t += 0.5
        else:
            t += xp.copysign(0.5, t)
        if direct:
            return xp.clip(t, lo, hi, out=t).astype(image.dtype)
        return xp.clip(xp.trunc(t, out=t), lo, hi, out=t)

    return sample, image.dtype if direct else np.dtype(np.float64)


def streaming(
    image: Any, origin: tuple[float, ...], num: int, order: int, mode: str, cval: float, arg_dtype: Any, window: Window
) -> tuple[Any, Any]:
    """Fixed ``num``, any order and mode: map_coordinates on blocks of axis 0, per sample index."""
    _whole_image_only(image, window)
    xp = get_namespace(image)
    sample, work_dtype = _sampler(xp, image, order, mode, cval)
    shape = window.out_shape
    lins = [axis_positions(xp, range(a, b), o, num) for a, b, o in zip(window.start, window.stop, origin)]
    if xp is np and num * math.prod(shape) <= ONE_CALL_POINTS:  # small: every sample in one call, as the seed's
        best, arg = _all_samples(sample, lins, image.ndim, num, slice(0, shape[0]))
        return to_dtype(best, image.dtype), arg.astype(arg_dtype)
    points = chunk_elements(xp, "rays_points")
    if order > 1 and xp is np and num * math.prod(shape[1:]) <= points:  # a prefilter per call: a block in one
        best = xp.empty(shape, work_dtype)
        arg = xp.empty(shape, arg_dtype)
        # blocks on the threads (scipy's map_coordinates releases the GIL: 1.8-2x on 2 cores), at least one
        # each, at most two budgets of points in flight whatever the cores (one budget across two threads:
        # 256 x 256 num=50 order 3 1.65x against 1.9x the accepted answer); each call also holds its own
        # prefiltered float64 copy of the image, as map_coordinates makes one per call
        threads = threads_for("rays", num * math.prod(shape))
        in_flight = points if threads == 1 else 2 * points // threads
        block = max(1, min(-(-shape[0] // threads), in_flight // (num * math.prod(shape[1:]))))

        def run(lo: int, hi: int) -> None:
            best[lo:hi], arg[lo:hi] = _all_samples(sample, lins, image.ndim, num, slice(lo, hi))

        run_parallel(run, [(r0, min(shape[0], r0 + block)) for r0 in range(0, shape[0], block)], threads)
        return to_dtype(best, image.dtype), arg
    best = xp.empty(shape, work_dtype)
    arg = xp.zeros(shape, arg_dtype)
    block = max(1, min(shape[0], chunk_elements(xp, "rays_points") // math.prod(shape[1:])))
    for r0 in range(0, shape[0], block):
        rs = slice(r0, min(shape[0], r0 + block))
        coords = xp.empty((image.ndim, rs.stop - r0) + shape[1:])
        best_b, arg_b = best[rs], arg[rs]
        for k in range(num):
            for d, lin in enumerate(lins):
                coords[d] = (lin[k, rs] if d == 0 else lin[k]).reshape((-1,) + (1,) * (image.ndim - 1 - d))
            cur = sample(coords)
            if k == 0:
                best_b[...] = cur
                continue
            step_better = better(xp, cur, best_b)
            best_b[...] = xp.where(step_better, cur, best_b)  # where(), not a mask: no device sync per step
            arg_b[...] = xp.where(step_better, arg_b.dtype.type(k), arg_b)
    return to_dtype(best, image.dtype), arg


def _all_samples(sample: Callable[[Any], Any], lins: list[Any], ndim: int, num: int, rows: slice) -> tuple[Any, Any]:
    """Max and first argmax over the ``num`` samples of the cells in ``rows`` (of axis 0), from one
    map_coordinates call: NaN wins, the first one, as ``better`` decides step by step."""
    xp = get_namespace(lins[0])
    n0 = rows.stop - rows.start
    coords = xp.empty((ndim, num, n0) + tuple(lin.shape[1] for lin in lins[1:]))
    for d, lin in enumerate(lins):
        lin = lin[:, rows] if d == 0 else lin
        coords[d] = lin.reshape((num,) + (1,) * d + (-1,) + (1,) * (ndim - 1 - d))
    samples = sample(coords)
    return samples.max(0), samples.argmax(0)


def dense(
    image: Any, origin: tuple[float, ...], order: int, mode: str, cval: float, arg_dtype: Any, window: Window
) -> tuple[Any, Any, Any]:
    """Every pixel on the ray: n(x) = ceil(max_d |origin[d] - x[d]|) + 1 samples from cell x.

    Cells with the same n go through map_coordinates together, in chunks of at
    most ``chunk_elements(xp, 'rays_points')`` samples, so memory stays O(cells).
    """
    _whole_image_only(image, window)
    xp = get_namespace(image)
    sample, work_dtype = _sampler(xp, image, order, mode, cval)
    shape, ndim = window.out_shape, image.ndim
    axes = (xp.arange(a, b, dtype=xp.float64) for a, b in zip(window.start, window.stop))
    grid = xp.stack(xp.meshgrid(*axes, indexing="ij")).reshape(ndim, -1)
    stop = xp.asarray(origin, dtype=xp.float64)[:, None]
    length = xp.ceil(xp.abs(stop - grid).max(axis=0)).astype(xp.int64)  # L(x); n(x) = L + 1
    max_len = int(length.max())
    best = xp.empty(grid.shape[1], work_dtype)
    arg = xp.empty(grid.shape[1], arg_dtype)
    coords_out = xp.empty((ndim, grid.shape[1]))
    order_cells = xp.argsort(length)  # groups cells by ray length; order within a group does not matter
    counts = xp.bincount(length, minlength=max_len + 1)
    starts = np.concatenate([[0], np.cumsum(to_numpy(counts))])
    budget = chunk_elements(xp, "rays_points")
    for L in range(max_len + 1):
        cells_all = order_cells[starts[L] : starts[L + 1]]
        per_chunk = max(1, budget // (L + 1))
        for c0 in range(0, cells_all.shape[0], per_chunk):
            cells = cells_all[c0 : c0 + per_chunk]
            pts = xp.moveaxis(linspace(xp, grid[:, cells], stop, L + 1), 0, -1)  # (ndim, cells, L + 1)
            samples = sample(pts.reshape(ndim, -1)).reshape(cells.shape[0], L + 1)
            k = samples.argmax(axis=1)
            best[cells] = samples.max(axis=1)
            arg[cells] = k
            coords_out[:, cells] = xp.take_along_axis(pts, k[None, :, None], axis=2)[..., 0]
    return to_dtype(best, image.dtype).reshape(shape), arg.reshape(shape), coords_out.reshape((ndim,) + shape)
