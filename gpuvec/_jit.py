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
def _kernels():
    """Compile (or load from numba's cache) the ray loops and the scalar helpers they share."""
    import numba

    jit = functools.partial(numba.njit, cache=True)

    @jit(inline="always")
    def sample(img, iy0, iy1, wy0, wy1, ix0, ix1, wx0, wx1, inside, order, cval):
        """One sample, as scipy's map_coordinates forms it (float64, corners in C order)."""
        if not inside:
            return cval
        if order == 0:
            return 0.0 + np.float64(img[iy0, ix0])
        t = 0.0 + (np.float64(img[iy0, ix0]) * wy0) * wx0
        t += (np.float64(img[iy0, ix1]) * wy0) * wx1
        t += (np.float64(img[iy1, ix0]) * wy1) * wx0
        t += (np.float64(img[iy1, ix1]) * wy1) * wx1
        return t

    @jit(inline="always")
    def as_output(t, kind, lo, hi, cast):
        """The sample as map_coordinates returns it in the image dtype (as a float64 value)."""
        if kind == 0:  # float image: its rounding, through a one-element array of its dtype
            cast[0] = t
            return np.float64(cast[0])
        if kind == 1:  # signed: round half away from zero, clip
            u = t + 0.5 if t > 0 else t - 0.5
            return np.trunc(min(max(u, lo), hi))
        u = t + 0.5 if t > 0 else 0.0  # unsigned
        return np.trunc(min(u, hi))

    @jit(inline="always")
    def better(cur, best):
        """ndarray.max/argmax: first index of the max, the first NaN wins (best starts at -inf)."""
        return not (cur <= best) and best == best

    @jit(inline="always")
    def axis(start, stop, k, L, n, order, constant):
        """One axis of sample k of ``np.linspace(start, stop, L + 1)``: scipy's indices,
        weights and inside flag (gpuvec.rays._axis_table's arithmetic, per point), and the position."""
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

    @jit(parallel=True)
    def streaming(img, yi0, yi1, yw0, yw1, yin, xi0, xi1, xw0, xw1, xin, order, kind, cval, lo, hi, out, arg):
        """Fixed num: the host's axis tables, rows in parallel, a running max per cell."""
        rows, cols = img.shape
        for r in numba.prange(rows):
            best = np.full(cols, -np.inf)
            best_k = np.zeros(cols, np.int64)
            cast = np.empty(1, img.dtype)
            for k in range(yi0.shape[0]):
                for c in range(cols):
                    t = sample(img, yi0[k, r], yi1[k, r], yw0[k, r], yw1[k, r], xi0[k, c], xi1[k, c], xw0[k, c], xw1[k, c], yin[k, r] and xin[k, c], order, cval)
                    cur = as_output(t, kind, lo, hi, cast)
                    if better(cur, best[c]):
                        best[c] = cur
                        best_k[c] = k
            for c in range(cols):
                out[r, c] = best[c] + 0.0
                arg[r, c] = best_k[c]

    @jit(parallel=True)
    def dense(img, orow, ocol, order, constant, kind, cval, lo, hi, out, arg, coords):
        """num=None: each cell's own L + 1 samples, positions computed per point."""
        rows, cols = img.shape
        for r in numba.prange(rows):
            cast = np.empty(1, img.dtype)
            for c in range(cols):
                L = int(np.ceil(max(abs(orow - r), abs(ocol - c))))
                best, best_k, best_y, best_x = -np.inf, 0, float(r), float(c)
                for k in range(L + 1):
                    iy0, iy1, wy0, wy1, yin, y = axis(float(r), orow, k, L, rows, order, constant)
                    ix0, ix1, wx0, wx1, xin, x = axis(float(c), ocol, k, L, cols, order, constant)
                    cur = as_output(sample(img, iy0, iy1, wy0, wy1, ix0, ix1, wx0, wx1, yin and xin, order, cval), kind, lo, hi, cast)
                    if better(cur, best):
                        best, best_k = cur, k
                        best_y, best_x = y, x
                out[r, c] = best + 0.0
                arg[r, c] = best_k
                coords[0, r, c], coords[1, r, c] = best_y, best_x

    return streaming, dense


def _outputs(image, arg_dtype):
    from gpuvec.rays import _cast_rule

    return (np.empty(image.shape, image.dtype), np.empty(image.shape, arg_dtype), *_cast_rule(image.dtype))


def ray_max_streaming(image, ytab, xtab, num, order, cval, arg_dtype):
    """The fused CPU loop over the host's axis tables (fixed num)."""
    out, arg, kind, lo, hi = _outputs(image, arg_dtype)

    def axis(tab):
        i0 = tab["i0"]
        w0 = tab.get("w0", np.zeros(i0.shape))
        inside = np.ones(i0.shape, bool) if tab["inside"] is None else tab["inside"]
        return i0, tab.get("i1", i0), w0, tab.get("w1", w0), inside

    _kernels()[0](np.ascontiguousarray(image), *axis(ytab), *axis(xtab), order, kind, float(cval), lo, hi, out, arg)
    return out, arg


def ray_max_dense(image, origin, order, mode, cval, arg_dtype):
    """Dense rays on a 2-D image (num=None): every cell's own number of samples."""
    out, arg, kind, lo, hi = _outputs(image, arg_dtype)
    coords = np.empty((2,) + image.shape)
    _kernels()[1](np.ascontiguousarray(image), float(origin[0]), float(origin[1]), order, mode == "constant", kind, float(cval), lo, hi, out, arg, coords)
    return out, arg, coords
