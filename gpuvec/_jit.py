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
