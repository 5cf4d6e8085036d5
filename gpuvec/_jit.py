"""Optional compiled CPU loops (numba), used when numba is installed.

Like the CuPy kernels, each loop here has an xp reference in its algorithm
module that a test compares it with, bit for bit. ``GPUVEC_JIT=0`` turns the
loops off (the numpy reference runs instead). numba compiles without fast-math,
so no multiply-add is contracted and the arithmetic is scipy's.
"""

from __future__ import annotations

import functools
import importlib.util
import os

import numpy as np


def enabled() -> bool:
    """Whether the compiled CPU loops run: numba is installed and GPUVEC_JIT is not '0'."""
    return os.environ.get("GPUVEC_JIT", "1").strip() != "0" and _numba_installed()


@functools.lru_cache(maxsize=None)
def _numba_installed() -> bool:
    return importlib.util.find_spec("numba") is not None


@functools.lru_cache(maxsize=None)
def _ray_max_loop():
    import numba

    @numba.njit(parallel=True, cache=True)
    def loop(img, yi0, yi1, yw0, yw1, yin, xi0, xi1, xw0, xw1, xin, use_inside, order, kind, cval, lo, hi, out, arg):
        rows, cols = img.shape
        num = yi0.shape[0]
        for r in numba.prange(rows):
            best = np.full(cols, -np.inf)
            best_k = np.zeros(cols, np.int64)
            cast = np.empty(1, img.dtype)  # the float image's dtype, for its rounding
            for k in range(num):
                r0, r1 = yi0[k, r], yi1[k, r]
                a, b = yw0[k, r], yw1[k, r]
                for c in range(cols):
                    if use_inside and not (yin[k, r] and xin[k, c]):
                        t = cval
                    elif order == 0:
                        t = 0.0 + np.float64(img[r0, xi0[k, c]])
                    else:
                        c0, c1 = xi0[k, c], xi1[k, c]
                        p, q = xw0[k, c], xw1[k, c]
                        t = 0.0 + (np.float64(img[r0, c0]) * a) * p
                        t += (np.float64(img[r0, c1]) * a) * q
                        t += (np.float64(img[r1, c0]) * b) * p
                        t += (np.float64(img[r1, c1]) * b) * q
                    if kind == 0:  # float image: the sample as map_coordinates returns it
                        cast[0] = t
                        cur = np.float64(cast[0])
                    elif kind == 1:  # signed: round half away from zero, clip
                        u = t + 0.5 if t > 0 else t - 0.5
                        cur = np.trunc(min(max(u, lo), hi))
                    else:  # unsigned
                        u = t + 0.5 if t > 0 else 0.0
                        cur = np.trunc(min(u, hi))
                    # ndarray.max/argmax: first index of the max, the first NaN wins
                    # (-inf at k = 0 keeps index 0, as best starts at -inf with index 0).
                    if not (cur <= best[c]) and best[c] == best[c]:
                        best[c] = cur
                        best_k[c] = k
            for c in range(cols):
                out[r, c] = best[c] + 0.0
                arg[r, c] = best_k[c]

    return loop


@functools.lru_cache(maxsize=None)
def _dense_loop():
    import numba

    @numba.njit(cache=True, inline="always")
    def axis(start, stop, k, L, n, order, constant):
        """One axis of sample k of the dense ray: np.linspace(start, stop, L + 1)[k], then
        scipy's indices and weights (gpuvec.rays._axis_table's arithmetic)."""
        if k == L:
            coord = stop
        else:
            delta = stop - start
            step = delta / L
            coord = (k / L) * delta + start if step == 0.0 else k * step + start
        inside = True
        if constant:
            inside = coord >= 0.0 and coord <= n - 1
            if not inside:
                coord = 0.0
        if order == 0:
            f = np.floor(coord + 0.5)
            i0 = 0 if f < 0 else (n - 1 if f > n - 1 else int(f))
            return i0, i0, 0.0, 0.0, inside
        fl = np.floor(coord)
        w0 = 1.0 - (coord - fl)
        w1 = 1.0 - w0
        i0 = 0 if fl < 0 else (n - 1 if fl > n - 1 else int(fl))
        f1 = fl + 1.0
        if f1 > n - 1:
            i1 = (n - 2 if n >= 2 else 0) if constant else n - 1
        else:
            i1 = 0 if f1 < 0 else int(f1)
        return i0, i1, w0, w1, inside

    @numba.njit(parallel=True, cache=True)
    def loop(img, orow, ocol, order, constant, kind, cval, lo, hi, out, arg, coords):
        rows, cols = img.shape
        for r in numba.prange(rows):
            cast = np.empty(1, img.dtype)
            for c in range(cols):
                L = int(np.ceil(max(abs(orow - r), abs(ocol - c))))
                best, best_k, best_y, best_x = -np.inf, 0, 0.0, 0.0
                for k in range(L + 1):
                    iy0, iy1, wy0, wy1, yin = axis(float(r), orow, k, L, rows, order, constant)
                    ix0, ix1, wx0, wx1, xin = axis(float(c), ocol, k, L, cols, order, constant)
                    if not (yin and xin):
                        t = cval
                    elif order == 0:
                        t = 0.0 + np.float64(img[iy0, ix0])
                    else:
                        t = 0.0 + (np.float64(img[iy0, ix0]) * wy0) * wx0
                        t += (np.float64(img[iy0, ix1]) * wy0) * wx1
                        t += (np.float64(img[iy1, ix0]) * wy1) * wx0
                        t += (np.float64(img[iy1, ix1]) * wy1) * wx1
                    if kind == 0:
                        cast[0] = t
                        cur = np.float64(cast[0])
                    elif kind == 1:
                        u = t + 0.5 if t > 0 else t - 0.5
                        cur = np.trunc(min(max(u, lo), hi))
                    else:
                        u = t + 0.5 if t > 0 else 0.0
                        cur = np.trunc(min(u, hi))
                    if not (cur <= best) and best == best:
                        best, best_k = cur, k
                out[r, c] = best + 0.0
                arg[r, c] = best_k
                if L == 0:
                    coords[0, r, c], coords[1, r, c] = float(r), float(c)
                elif best_k == L:
                    coords[0, r, c], coords[1, r, c] = orow, ocol
                else:  # the max sample's position, recomputed as the loop computed it
                    for d, (start, stop) in enumerate(((float(r), orow), (float(c), ocol))):
                        delta = stop - start
                        step = delta / L
                        coords[d, r, c] = (best_k / L) * delta + start if step == 0.0 else best_k * step + start

    return loop


def ray_max_dense(image, origin, order, mode, cval, arg_dtype):
    """Dense rays on a 2-D image: every cell's own number of samples, rows in parallel."""
    rows, cols = image.shape
    dtype = image.dtype
    kind = 0 if dtype.kind == "f" else 1 if dtype.kind == "i" else 2
    lo, hi = (float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)) if kind else (0.0, 0.0)
    out = np.empty((rows, cols), dtype)
    arg = np.empty((rows, cols), arg_dtype)
    coords = np.empty((2, rows, cols))
    _dense_loop()(np.ascontiguousarray(image), float(origin[0]), float(origin[1]), order, mode == "constant", kind, float(cval), lo, hi, out, arg, coords)
    return out, arg, coords


def ray_max_streaming(image, ytab, xtab, num, order, cval, arg_dtype):
    """The fused CPU loop: rows in parallel, a running max per cell, one write per output."""
    rows, cols = image.shape
    dtype = image.dtype
    kind = 0 if dtype.kind == "f" else 1 if dtype.kind == "i" else 2
    lo, hi = (float(np.iinfo(dtype).min), float(np.iinfo(dtype).max)) if kind else (0.0, 0.0)
    use_inside = ytab["inside"] is not None

    def axis(tab):
        i0 = tab["i0"]
        w0 = tab.get("w0", np.zeros(i0.shape))
        inside = tab["inside"] if use_inside else np.ones(i0.shape, bool)
        return i0, tab.get("i1", i0), w0, tab.get("w1", w0), inside

    out = np.empty((rows, cols), dtype)
    arg = np.empty((rows, cols), arg_dtype)
    _ray_max_loop()(np.ascontiguousarray(image), *axis(ytab), *axis(xtab), use_inside, order, kind, float(cval), lo, hi, out, arg)
    return out, arg
