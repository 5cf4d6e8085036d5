"""Fused CuPy kernels, imported only on the cupy path.

Each kernel has an ``xp`` reference in its algorithm module, and a test
compares the two. Arithmetic that must match scipy bit for bit uses the
``__dmul_rn``/``__dadd_rn`` intrinsics, which the compiler never contracts
into fused multiply-adds.
"""

from __future__ import annotations

import functools

import cupy

from gpuvec.rays import _cast_rule

# --------------------------------------------------------------------------- ray_max

_RAY_MAX_PREAMBLE = r"""
// One axis of sample k of the ray from `start` to `stop`: the arithmetic of
// gpuvec.rays._axis_table (numpy's scalar linspace, then scipy's indices and
// weights), with intrinsics that are never contracted into fused multiply-adds.
struct RayAxis { long long i0, i1; double w0, w1; bool inside; };

__device__ RayAxis ray_axis(double start, double stop, int k, int num, long long n, int order, bool constant) {
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
const long long r = i / cols, c = i % cols;
double best = 0.0;
int best_k = 0;
for (int k = 0; k < num; ++k) {
    const RayAxis y = ray_axis((double)r, orow, k, num, rows, order, constant);
    const RayAxis x = ray_axis((double)c, ocol, k, num, cols, order, constant);
    double t;
    if (!(y.inside && x.inside)) {
        t = cval;
    } else if (order == 0) {
        t = __dadd_rn(0.0, (double)img[y.i0 * cols + x.i0]);
    } else {
        const long long r0 = y.i0 * cols, r1 = y.i1 * cols;
        t = __dadd_rn(0.0, __dmul_rn(__dmul_rn((double)img[r0 + x.i0], y.w0), x.w0));
        t = __dadd_rn(t, __dmul_rn(__dmul_rn((double)img[r0 + x.i1], y.w0), x.w1));
        t = __dadd_rn(t, __dmul_rn(__dmul_rn((double)img[r1 + x.i0], y.w1), x.w0));
        t = __dadd_rn(t, __dmul_rn(__dmul_rn((double)img[r1 + x.i1], y.w1), x.w1));
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
        "raw T img, int64 rows, int64 cols, float64 orow, float64 ocol, int32 num, int32 order, "
        "bool constant, int32 kind, float64 cval, float64 lo, float64 hi",
        "T out, A arg",
        _RAY_MAX_BODY,
        name="gpuvec_ray_max",
        preamble=_RAY_MAX_PREAMBLE,
    )


def ray_max_streaming(image, origin, num, order, mode, cval, arg_dtype):
    """One thread per cell: sample positions computed in registers, running max, one write.

    Nothing but the image is read: the per-axis indices and weights that the CPU
    paths take from :func:`gpuvec.rays._axis_table` are recomputed per thread with
    the same operations, so all paths sample at bit-identical points.
    """
    rows, cols = image.shape
    kind, lo, hi = _cast_rule(image.dtype)
    out = cupy.empty((rows, cols), image.dtype)
    arg = cupy.empty((rows, cols), arg_dtype)
    _ray_max_kernel()(
        cupy.ascontiguousarray(image), rows, cols, float(origin[0]), float(origin[1]), num, order,
        mode == "constant", kind, cval, lo, hi, out, arg,
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
