"""Fused CuPy kernels, imported only on the cupy path.

Each kernel has an ``xp`` reference in its algorithm module, and a test
compares the two. Arithmetic that must match scipy bit for bit uses the
``__dmul_rn``/``__dadd_rn`` intrinsics, which the compiler never contracts
into fused multiply-adds.
"""

from __future__ import annotations

import functools

import cupy
import numpy as np

# --------------------------------------------------------------------------- ray_max

_RAY_MAX_BODY = r"""
// For the y axis then the x axis: itab holds three (num, n) int32 tables (i0, i1, inside),
// wtab two float64 ones (w0, w1).
const long long r = i / cols, c = i % cols;
const long long ny = (long long)num * rows, nx = (long long)num * cols;
double best = 0.0;
int best_k = 0;
for (int k = 0; k < num; ++k) {
    const long long ky = (long long)k * rows + r, kx = (long long)k * cols + c;
    const long long kxi = 3 * ny + kx, kxw = 2 * ny + kx;
    double t;
    if (use_inside && !(itab[ky + 2 * ny] && itab[kxi + 2 * nx])) {
        t = cval;
    } else if (order == 0) {
        t = __dadd_rn(0.0, (double)img[(long long)itab[ky] * cols + itab[kxi]]);
    } else {
        const long long r0 = (long long)itab[ky] * cols, r1 = (long long)itab[ky + ny] * cols;
        const int c0 = itab[kxi], c1 = itab[kxi + nx];
        const double a = wtab[ky], b = wtab[ky + ny], p = wtab[kxw], q = wtab[kxw + nx];
        t = __dadd_rn(0.0, __dmul_rn(__dmul_rn((double)img[r0 + c0], a), p));
        t = __dadd_rn(t, __dmul_rn(__dmul_rn((double)img[r0 + c1], a), q));
        t = __dadd_rn(t, __dmul_rn(__dmul_rn((double)img[r1 + c0], b), p));
        t = __dadd_rn(t, __dmul_rn(__dmul_rn((double)img[r1 + c1], b), q));
    }
    double cur;
    if (kind == 0) {            // float image: the sample as map_coordinates returns it
        cur = (double)(T)t;
    } else if (kind == 1) {     // signed: round half away from zero, clip
        double u = t > 0 ? __dadd_rn(t, 0.5) : __dadd_rn(t, -0.5);
        u = u > hi ? hi : u;
        u = u < lo ? lo : u;
        cur = trunc(u);
    } else {                    // unsigned
        double u = t > 0 ? __dadd_rn(t, 0.5) : 0.0;
        u = u > hi ? hi : u;
        cur = trunc(u);
    }
    // ndarray.max/argmax: first index of the max, the first NaN wins.
    if (k == 0 || cur > best || (cur != cur && best == best)) {
        best = cur;
        best_k = k;
    }
}
out = (T)(best + 0.0);
arg = (A)best_k;
"""


@functools.lru_cache(maxsize=None)
def _ray_max_kernel() -> cupy.ElementwiseKernel:
    return cupy.ElementwiseKernel(
        "raw T img, raw int32 itab, raw float64 wtab, int64 rows, int64 cols, int32 num, int32 order, int32 kind, "
        "bool use_inside, float64 cval, float64 lo, float64 hi",
        "T out, A arg",
        _RAY_MAX_BODY,
        name="gpuvec_ray_max",
    )


def _pack_tables(ytab, xtab):
    """Both axes' (num, n) tables in two arrays, int32 indices and flags, float64 weights: two uploads."""
    ints, weights = [], []
    for tab in (ytab, xtab):
        i0 = tab["i0"]
        for name in ("i0", "i1", "inside"):
            ints.append(np.asarray(i0 if tab.get(name) is None else tab[name], dtype=np.int32).ravel())
        for name in ("w0", "w1"):
            weights.append(np.zeros(i0.size) if tab.get(name) is None else tab[name].ravel())
    return cupy.asarray(np.concatenate(ints)), cupy.asarray(np.concatenate(weights))


def ray_max_streaming(image, ytab, xtab, num, order, cval, arg_dtype):
    """One thread per cell: loop over the samples, running max in registers, one write.

    ``ytab``/``xtab`` are the host (numpy) axis tables of :func:`gpuvec.rays._axis_table`:
    the same tables as the CPU path, so both paths sample at bit-identical points.
    """
    rows, cols = image.shape
    dtype = image.dtype
    kind = 0 if dtype.kind == "f" else 1 if dtype.kind == "i" else 2
    if kind:
        info = np.iinfo(dtype)
        lo, hi = float(info.min), float(info.max)
    else:
        lo = hi = 0.0
    out = cupy.empty((rows, cols), dtype)
    arg = cupy.empty((rows, cols), arg_dtype)
    _ray_max_kernel()(
        cupy.ascontiguousarray(image), *_pack_tables(ytab, xtab), rows, cols, num, order, kind,
        ytab["inside"] is not None, cval, lo, hi, out, arg,
    )  # fmt: skip
    return out, arg


# --------------------------------------------------------------------------- rotations

_ROT3_BODY = r"""
const long long b = i * 9;
const double a00 = m[b+0], a01 = m[b+1], a02 = m[b+2];
const double a10 = m[b+3], a11 = m[b+4], a12 = m[b+5];
const double a20 = m[b+6], a21 = m[b+7], a22 = m[b+8];
double e = fabs(a00*a00 + a01*a01 + a02*a02 - 1.0);
e = fmax(e, fabs(a10*a10 + a11*a11 + a12*a12 - 1.0));
e = fmax(e, fabs(a20*a20 + a21*a21 + a22*a22 - 1.0));
e = fmax(e, fabs(a00*a10 + a01*a11 + a02*a12));
e = fmax(e, fabs(a00*a20 + a01*a21 + a02*a22));
e = fmax(e, fabs(a10*a20 + a11*a21 + a12*a22));
const double d = a00*(a11*a22 - a12*a21) - a01*(a10*a22 - a12*a20) + a02*(a10*a21 - a11*a20);
const bool finite = isfinite(e) && isfinite(d);
err = finite ? (F)e : (F)__longlong_as_double(0x7ff8000000000000LL);
det = (F)d;
"""


@functools.lru_cache(maxsize=None)
def _rot3_kernel() -> cupy.ElementwiseKernel:
    return cupy.ElementwiseKernel("raw T m", "F err, F det", _ROT3_BODY, name="gpuvec_rotation3")


def rotation_residuals_3x3(R, out_dtype):
    """max|R R^T - I| and det R for a contiguous (B, 3, 3) stack, one thread per matrix."""
    n = R.shape[0]
    err = cupy.empty(n, out_dtype)
    det = cupy.empty(n, out_dtype)
    _rot3_kernel()(cupy.ascontiguousarray(R), err, det)
    return err, det
