"""Compiled CPU loops for ray_max (numba): 2-D images, ``order`` 0/1, ``mode`` 'nearest'/'constant'.

Module-level functions compiled with ``numba.njit(cache=True, nogil=True)``
(:func:`gpuvec._core.jit.cached_njit`: uncached, with one warning, where numba has no
writable cache directory), so a new process loads the machine code from numba's
on-disk cache instead of compiling (numba keys the cache on this file and the
argument types). Each loop takes a range of output rows;
:func:`gpuvec._core.threads.run_parallel` runs the ranges on the worker threads
(Python threads, no numba threading layer: fork-safe, and one thread when called
from a thread pool). numba compiles without fast-math, so no multiply-add is
contracted and the arithmetic is scipy's.

Each scalar helper implements one rule of :mod:`gpuvec.rays._rules`:
``axis_point`` the positions, indices and weights; ``sample`` the sample;
``as_output`` the cast; ``better`` the max/NaN rule. ``cells_loop`` and
``rows_loop`` (two loop orders, chosen by ``num`` in :func:`streaming_tables`)
read the host's axis tables (:func:`gpuvec.rays._rules.axis_tables`);
``dense_loop`` computes every position itself. Same public names and signatures as
:mod:`gpuvec.rays._numpy` (the reference a test compares them with, bit for bit).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuvec._core.jit import cached_njit
from gpuvec._core.threads import run_parallel, threads_for
from gpuvec.rays._rules import Window, axis_tables, cast_rule, saturation

jit = cached_njit(inline="always")


@jit
def sample(img, iy0, iy1, wy0, wy1, ix0, ix1, wx0, wx1, order):
    """One sample inside the image, as scipy's map_coordinates forms it (float64, corners in C order)."""
    if order == 0:
        return 0.0 + np.float64(img[iy0, ix0])
    t = 0.0 + (np.float64(img[iy0, ix0]) * wy0) * wx0
    t += (np.float64(img[iy0, ix1]) * wy0) * wx1
    t += (np.float64(img[iy1, ix0]) * wy1) * wx0
    t += (np.float64(img[iy1, ix1]) * wy1) * wx1
    return t


@jit
def as_output(t, kind, lo, hi, cast):
    """The sample as the image dtype gives it back (as a float64 value): gpuvec.rays._rules.cast_rule."""
    if kind == 0:  # float image: its rounding, through a one-element array of its dtype
        cast[0] = t
        return np.float64(cast[0])
    if kind == 1:  # signed: round half away from zero, clip
        u = t + 0.5 if t > 0 else t - 0.5
        return np.trunc(min(max(u, lo), hi))
    u = t + 0.5 if t > 0 else 0.0  # unsigned
    return np.trunc(min(u, hi))


@jit
def stored(best, edge, top, cast):
    """The running max (a clipped float64 value) as the image dtype, saturating: gpuvec.rays._rules.saturation.

    Above ``edge`` (only int64/uint64 values that float64 rounded past the max) it is ``top[0]``, the max."""
    if best > edge:
        return top[0]
    cast[0] = best + 0.0
    return cast[0]


@jit
def better(cur, best):
    """ndarray.max/argmax: first index of the max, the first NaN wins (best starts at -inf)."""
    return not (cur <= best) and best == best


@jit
def axis_point(start, stop, k, L, n, order, constant):
    """One axis of sample k of ``np.linspace(start, stop, L + 1)``: scipy's indices (into the
    full axis of length n), weights and inside flag, and the position."""
    if k == L:
        pos = stop
    else:
        delta = stop - start
        step = delta / L
        pos = (k / L) * delta + start if step == 0.0 else k * step + start
    coord = pos
    inside = True
    if constant:
        inside = coord >= 0.0 and coord <= n - 1
        if not inside:
            coord = 0.0
    if order == 0:
        f = np.floor(coord + 0.5)
        i0 = 0 if f < 0 else (n - 1 if f > n - 1 else int(f))
        return i0, i0, 0.0, 0.0, inside, pos
    fl = np.floor(coord)
    w0 = 1.0 - (coord - fl)
    w1 = 1.0 - w0
    i0 = 0 if fl < 0 else (n - 1 if fl > n - 1 else int(fl))
    f1 = fl + 1.0
    if f1 > n - 1:
        i1 = (n - 2 if n >= 2 else 0) if constant else n - 1
    else:
        i1 = 0 if f1 < 0 else int(f1)
    return i0, i1, w0, w1, inside, pos


# Up to this many samples per cell, the loop over a cell's samples is innermost (its running max
# in registers: 1.45x faster at num=5 on 3000x3000); beyond, rows of samples are swept one sample
# index at a time (the image rows one sample reads stay in cache: 1.3-1.6x faster at num=12-50).
CELL_LOOP_MAX_NUM = 8


@cached_njit(nogil=True)
def cells_loop(
    img, yi0, yi1, yw0, yw1, yin, xi0, xi1, xw0, xw1, xin, order, constant, kind, cval, lo, hi, edge, top, out, arg,
    whole, r0, r1,
):  # fmt: skip
    """Fixed num, a cell's samples innermost, for rows ``r0:r1``: row tables (num, rows), column
    tables (cols, num). The inside flags are read only for mode 'constant'.

    With ``whole`` (tables of whole rays), every ray's last sample is the origin itself
    (numpy's linspace ends exactly at ``stop``): the same indices and weights for every
    cell, so it is taken once (a fifth of the work at num=5)."""
    rows, cols = out.shape
    num = yi0.shape[0]
    if rows == 0 or cols == 0:
        return
    L = num - 1 if whole else num  # the samples taken per cell
    if not whole:
        last = np.nan  # unused
    elif constant and not (yin[L, 0] and xin[0, L]):
        last = as_output(cval, kind, lo, hi, np.empty(1, img.dtype))
    else:
        t = sample(img, yi0[L, 0], yi1[L, 0], yw0[L, 0], yw1[L, 0], xi0[0, L], xi1[0, L], xw0[0, L], xw1[0, L], order)
        last = as_output(t, kind, lo, hi, np.empty(1, img.dtype))
    cast = np.empty(1, img.dtype)
    for r in range(r0, r1):
        for c in range(cols):
            best, best_k = -np.inf, 0
            for k in range(L):
                if constant and not (yin[k, r] and xin[c, k]):
                    t = cval
                else:
                    y0, y1, wy0, wy1 = yi0[k, r], yi1[k, r], yw0[k, r], yw1[k, r]
                    t = sample(img, y0, y1, wy0, wy1, xi0[c, k], xi1[c, k], xw0[c, k], xw1[c, k], order)
                cur = as_output(t, kind, lo, hi, cast)
                if better(cur, best):
                    best, best_k = cur, k
            if whole and better(last, best):
                best, best_k = last, L
            out[r, c] = stored(best, edge, top, cast)
            arg[r, c] = best_k


@cached_njit(nogil=True)
def rows_loop(
    img, yi0, yi1, yw0, yw1, yin, xi0, xi1, xw0, xw1, xin, order, constant, kind, cval, lo, hi, edge, top, out, arg,
    r0, r1,
):  # fmt: skip
    """Fixed num, one sample index at a time along a row, for rows ``r0:r1``: every table (num, cells),
    a running max per row. The inside flags are read only for mode 'constant'."""
    cols = out.shape[1]
    best = np.empty(cols)
    best_k = np.empty(cols, np.int64)
    cast = np.empty(1, img.dtype)
    for r in range(r0, r1):
        best[:] = -np.inf
        best_k[:] = 0
        for k in range(yi0.shape[0]):
            y0, y1, wy0, wy1, row_inside = yi0[k, r], yi1[k, r], yw0[k, r], yw1[k, r], yin[k, r]
            for c in range(cols):
                if constant and not (row_inside and xin[k, c]):
                    t = cval
                else:
                    t = sample(img, y0, y1, wy0, wy1, xi0[k, c], xi1[k, c], xw0[k, c], xw1[k, c], order)
                cur = as_output(t, kind, lo, hi, cast)
                if better(cur, best[c]):
                    best[c] = cur
                    best_k[c] = k
        for c in range(cols):
            out[r, c] = stored(best[c], edge, top, cast)
            arg[r, c] = best_k[c]


@cached_njit(nogil=True)
def dense_loop(
    img, rows, cols, r0, c0, roff, coff, orow, ocol, order, constant, kind, cval, lo, hi, edge, top, out, arg, coords,
    i0, i1,
):  # fmt: skip
    """num=None: each cell's own L + 1 samples, positions computed per point (cell (r0 + i, c0 + j)), for
    output rows ``i0:i1``."""
    out_cols = out.shape[1]
    cast = np.empty(1, img.dtype)
    for i in range(i0, i1):
        r = r0 + i
        for j in range(out_cols):
            c = c0 + j
            L = int(np.ceil(max(abs(orow - r), abs(ocol - c))))
            best, best_k, best_y, best_x = -np.inf, 0, float(r), float(c)
            for k in range(L + 1):
                iy0, iy1, wy0, wy1, yin, y = axis_point(float(r), orow, k, L, rows, order, constant)
                ix0, ix1, wx0, wx1, xin, x = axis_point(float(c), ocol, k, L, cols, order, constant)
                t = (
                    sample(img, iy0 - roff, iy1 - roff, wy0, wy1, ix0 - coff, ix1 - coff, wx0, wx1, order)
                    if yin and xin
                    else cval
                )
                cur = as_output(t, kind, lo, hi, cast)
                if better(cur, best):
                    best, best_k = cur, k
                    best_y, best_x = y, x
            out[i, j] = stored(best, edge, top, cast)
            arg[i, j] = best_k
            coords[0, i, j], coords[1, i, j] = best_y, best_x


def _table_arrays(tab: dict[str, Any], cells_first: bool) -> tuple[Any, ...]:
    """One axis table (:func:`gpuvec.rays._rules.axis_table`) as a loop's five arrays: i0, i1, w0, w1,
    inside (order 0 and 'nearest' fill the ones they lack), each (num, cells), or (cells, num)."""

    def layout(a):
        return np.ascontiguousarray(a.T if cells_first else a)

    i0 = layout(tab["i0"])
    w0 = layout(tab["w0"]) if "w0" in tab else np.zeros(i0.shape)
    i1 = layout(tab["i1"]) if "i1" in tab else i0
    w1 = layout(tab["w1"]) if "w1" in tab else w0
    inside = np.ones(i0.shape, bool) if tab["inside"] is None else layout(tab["inside"])
    return i0, i1, w0, w1, inside


def streaming_tables(image: Any, ytab: dict[str, Any], xtab: dict[str, Any], order: int, mode: str, cval: float,
                     out: Any, arg: Any, whole: bool = True) -> None:  # fmt: skip
    """The max and first argmax of the samples that two axis tables (row, column) give, into ``out``
    and ``arg`` (rows x cols): ``cells_loop`` up to ``CELL_LOOP_MAX_NUM`` samples, else ``rows_loop``.
    The tables index ``image`` itself; ``whole``: they hold whole rays (their last sample is the origin),
    not a part of them."""
    cells = ytab["i0"].shape[0] <= CELL_LOOP_MAX_NUM
    kind, lo, hi = cast_rule(image.dtype)
    edge, top = saturation(image.dtype)
    args = (np.ascontiguousarray(image), *_table_arrays(ytab, False), *_table_arrays(xtab, cells),
            order, mode == "constant", kind, float(cval), lo, hi, edge, np.array([top]), out, arg)  # fmt: skip

    def run(r0: int, r1: int) -> None:
        if cells:
            cells_loop(*args, whole, r0, r1)
        else:
            rows_loop(*args, r0, r1)

    _run_rows(run, out.shape[0], out.size * ytab["i0"].shape[0])  # cells x samples per ray


def _run_rows(fn: Any, rows: int, samples: int) -> None:
    """``fn(r0, r1)`` over the rows, on the worker threads (:func:`gpuvec._core.threads.threads_for`: every
    core from the main thread, one from any other thread or for a small call), in 8 spans per thread taken
    as threads free up."""
    threads = threads_for("rays", samples)
    parts = max(1, min(8 * threads, rows))
    cuts = [rows * i // parts for i in range(parts + 1)]
    run_parallel(fn, list(zip(cuts[:-1], cuts[1:])), threads)


def streaming(
    image: Any, origin: tuple[float, ...], num: int, order: int, mode: str, cval: float, arg_dtype: Any, window: Window
) -> tuple[Any, Any]:
    """Fixed ``num`` on a 2-D image: the fused loop over the host's axis tables."""
    out, arg = (np.empty(window.out_shape, dt) for dt in (image.dtype, arg_dtype))
    ytab, xtab = axis_tables(window, origin, num, order, mode)
    streaming_tables(image, ytab, xtab, order, mode, cval, out, arg)
    return out, arg


def dense(
    image: Any, origin: tuple[float, ...], order: int, mode: str, cval: float, arg_dtype: Any, window: Window
) -> tuple[Any, Any, Any]:
    """Dense rays (num=None) on a 2-D image: every cell's own number of samples."""
    out, arg = (np.empty(window.out_shape, dt) for dt in (image.dtype, arg_dtype))
    kind, lo, hi = cast_rule(image.dtype)
    edge, top = saturation(image.dtype)
    coords = np.empty((2,) + window.out_shape)
    (rows, cols), (r0, c0), (roff, coff) = window.shape, window.start, window.offset
    args = (np.ascontiguousarray(image), rows, cols, r0, c0, roff, coff, float(origin[0]), float(origin[1]),
            order, mode == "constant", kind, float(cval), lo, hi, edge, np.array([top]), out, arg, coords)  # fmt: skip
    # about cells x the image's longest side samples: what decides whether threads pay
    _run_rows(lambda i0, i1: dense_loop(*args, i0, i1), out.shape[0], out.size * max(rows, cols))
    return out, arg, coords
