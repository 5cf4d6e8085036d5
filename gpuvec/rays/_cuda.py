"""The fused CuPy kernel for ray_max: 2-D images, ``order`` 0/1, ``mode`` 'nearest'/'constant'.

Imported only on the cupy path. One thread per output cell recomputes its sample
positions, indices and weights (``ray_axis``, the rules of
:mod:`gpuvec.rays._rules`), forms each sample, casts it and keeps the running max
(the kernel body), then writes once. Arithmetic that must match scipy bit for bit
uses the ``__dmul_rn``/``__dadd_rn`` intrinsics, which the compiler never
contracts into fused multiply-adds. Same names and signatures as
:mod:`gpuvec.rays._numpy`, the reference a test compares it with on the device.
"""

from __future__ import annotations

import functools
from typing import Any

import cupy

import gpuvec.rays._xp as _rays_xp
from gpuvec.rays._rules import Window, cast_rule, saturation

_RAY_MAX_PREAMBLE = r"""
// One axis of sample k of the ray from `start` to `stop` on an axis of length n: the
// rules of gpuvec.rays._rules.axis_table (numpy's scalar linspace, then scipy's
// indices and weights), with intrinsics that are never contracted into fused
// multiply-adds. Indices are into the full axis.
struct RayAxis { long long i0, i1; double w0, w1; bool inside; };

__device__ RayAxis ray_axis(double start, double stop, long long k, long long num, long long n, int order,
                            bool constant) {
    const double div = (double)(num - 1);
    const double delta = __dsub_rn(stop, start);
    const double step = __ddiv_rn(delta, div);
    double coord;
    if (k == num - 1) {
        coord = stop;
    } else if (step == 0.0) {
        coord = __dadd_rn(__dmul_rn(__ddiv_rn((double)k, div), delta), start);
    } else {
        coord = __dadd_rn(__dmul_rn((double)k, step), start);
    }
    RayAxis a;
    a.inside = true;
    if (constant) {
        a.inside = coord >= 0.0 && coord <= (double)(n - 1);
        if (!a.inside) coord = 0.0;
    }
    if (order == 0) {
        const double f = floor(__dadd_rn(coord, 0.5));
        a.i0 = f < 0.0 ? 0 : (f > (double)(n - 1) ? n - 1 : (long long)f);
        a.i1 = a.i0;
        a.w0 = a.w1 = 0.0;
        return a;
    }
    const double fl = floor(coord);
    a.w0 = __dsub_rn(1.0, __dsub_rn(coord, fl));
    a.w1 = __dsub_rn(1.0, a.w0);
    a.i0 = fl < 0.0 ? 0 : (fl > (double)(n - 1) ? n - 1 : (long long)fl);
    const double f1 = fl + 1.0;
    if (f1 > (double)(n - 1)) {
        a.i1 = constant ? (n >= 2 ? n - 2 : 0) : n - 1;  // scipy mirrors (constant) or clamps (nearest)
    } else {
        a.i1 = f1 < 0.0 ? 0 : (long long)f1;
    }
    return a;
}
"""

_RAY_MAX_BODY = r"""
// Cell (r, c) of the full grid; the image array read starts at (roff, coff) and has icols columns.
const long long r = r0 + i / ocols, c = c0 + i % ocols;
double best = 0.0;
long long best_k = 0;
for (long long k = 0; k < num; ++k) {
    RayAxis y = ray_axis((double)r, orow, k, num, rows, order, constant);
    RayAxis x = ray_axis((double)c, ocol, k, num, cols, order, constant);
    y.i0 -= roff; y.i1 -= roff; x.i0 -= coff; x.i1 -= coff;
    double t;
    if (!(y.inside && x.inside)) {
        t = cval;
    } else if (order == 0) {
        t = __dadd_rn(0.0, (double)img[y.i0 * icols + x.i0]);
    } else {
        const long long y0 = y.i0 * icols, y1 = y.i1 * icols;
        t = __dadd_rn(0.0, __dmul_rn(__dmul_rn((double)img[y0 + x.i0], y.w0), x.w0));
        t = __dadd_rn(t, __dmul_rn(__dmul_rn((double)img[y0 + x.i1], y.w0), x.w1));
        t = __dadd_rn(t, __dmul_rn(__dmul_rn((double)img[y1 + x.i0], y.w1), x.w0));
        t = __dadd_rn(t, __dmul_rn(__dmul_rn((double)img[y1 + x.i1], y.w1), x.w1));
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
// The saturating store (gpuvec.rays._rules.saturation): past edge (int64/uint64 values that float64 rounded
// past the max) the dtype's max, never the conversion's undefined result.
out = (kind != 0 && best > edge) ? top : (T)(best + 0.0);
arg = (A)best_k;
"""


@functools.cache
def _ray_max_kernel() -> cupy.ElementwiseKernel:
    return cupy.ElementwiseKernel(
        "raw T img, int64 rows, int64 cols, int64 r0, int64 c0, int64 ocols, int64 roff, int64 coff, int64 icols, "
        "float64 orow, float64 ocol, int64 num, int32 order, bool constant, int32 kind, "
        "float64 cval, float64 lo, float64 hi, float64 edge, T top",
        "T out, A arg",
        _RAY_MAX_BODY,
        name="gpuvec_ray_max",
        preamble=_RAY_MAX_PREAMBLE,
    )


def streaming(
    image: Any, origin: tuple[float, ...], num: int, order: int, mode: str, cval: float, arg_dtype: Any, window: Window
) -> tuple[Any, Any]:
    """Fixed ``num`` on a 2-D image: one thread per cell, sample positions in registers, one write.

    Nothing but the image is read: the per-axis indices and weights that the CPU
    paths take from :func:`gpuvec.rays._rules.axis_table` are recomputed per thread
    with the same operations, so all paths sample at bit-identical points.
    """
    (rows, cols), (r0, c0), (roff, coff) = window.shape, window.start, window.offset
    kind, lo, hi = cast_rule(image.dtype)
    edge, top = saturation(image.dtype)
    out = cupy.empty(window.out_shape, image.dtype)
    arg = cupy.empty(window.out_shape, arg_dtype)
    _ray_max_kernel()(
        cupy.ascontiguousarray(image), rows, cols, r0, c0, window.out_shape[1], roff, coff, image.shape[1],
        float(origin[0]), float(origin[1]), num, order, mode == "constant", kind, cval, lo, hi, edge, top, out, arg,
    )  # fmt: skip
    return out, arg


def dense(
    image: Any, origin: tuple[float, ...], order: int, mode: str, cval: float, arg_dtype: Any, window: Window
) -> tuple[Any, Any, Any]:
    """Dense rays have no fused kernel yet: cupyx's map_coordinates through :mod:`gpuvec.rays._xp`."""
    return _rays_xp.dense(image, origin, order, mode, cval, arg_dtype, window)
