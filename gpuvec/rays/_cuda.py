"""The CUDA kernel for ray_max: 2-D images, ``order`` 0/1, ``mode`` 'nearest'/'constant'.

One thread per output cell recomputes its sample positions, indices and weights
(``ray_axis``, the rules of :mod:`gpuvec.rays._rules`), forms each sample, casts
it and keeps the running max, then writes once. Arithmetic that must match scipy
bit for bit uses the ``__dmul_rn``/``__dadd_rn`` intrinsics, which the compiler
never contracts into fused multiply-adds, and the module is compiled with
``-fmad=false`` besides. Same names and signatures as :mod:`gpuvec.rays._numpy`,
the reference a test compares it with on the device.

:data:`SOURCE` is the whole CUDA C++ source, compiled by cupy's ``RawModule``
with :data:`OPTIONS` and one template instance per (image dtype, index dtype)
(:func:`name_expressions`); tests/core/test_cuda_sources.py compiles exactly that
with NVRTC on machines without a GPU, and checks its PTX holds no fused
multiply-add. cupy is imported only when the kernel is launched.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

import gpuvec.rays._xp as _rays_xp
from gpuvec._core.cuda_source import BLOCK, c_type, grid_for
from gpuvec.rays._rules import Window, cast_rule, saturation

__all__ = ["OPTIONS", "SOURCE", "dense", "name_expressions", "streaming"]

OPTIONS = ("--std=c++17", "-fmad=false")

# Every image dtype ray_max takes, and every dtype of its argmax (gpuvec.rays._rules.arg_dtype).
IMAGE_DTYPES = tuple(
    np.dtype(t)
    for t in (np.float32, np.float64, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64)
)
ARG_DTYPES = (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.uint32))

SOURCE = r"""
// One axis of sample k of the ray from `start` to `stop` on an axis of length n: the
// rules of gpuvec.rays._rules.axis_table (numpy's scalar linspace, then scipy's
// indices and weights), with intrinsics that are never contracted into fused
// multiply-adds. Indices are into the full axis.
struct RayAxis { long long i0, i1; double w0, w1; bool inside; };

// CuPy compiles every kernel with -ftz=true (appended after the caller's options), under which each float32
// <-> float64 conversion flushes float32 subnormals to zero. These convert exactly, through the bits, so that
// subnormal pixels and samples are what numpy and scipy make of them.
__device__ __forceinline__ double f32_to_f64(float x) {
    const unsigned int u = __float_as_uint(x), e = (u >> 23) & 0xffu, m = u & 0x7fffffu;
    if (e == 0u) {  // subnormal or zero: m * 2^-149, exact (an integer conversion, then a power of 2)
        const double v = (double)m * 1.401298464324817e-45;
        return (u >> 31) ? -v : v;
    }
    const unsigned long long exponent = e == 0xffu ? 0x7ffull : (unsigned long long)(e + 896u);  // rebias 127 -> 1023
    return __longlong_as_double((long long)(((unsigned long long)(u >> 31) << 63) | (exponent << 52) |
                                            ((unsigned long long)m << 29)));
}
__device__ __forceinline__ float f64_to_f32(double t) {
    const double a = fabs(t);
    if (!(a < 1.1754943508222875e-38) || a == 0.0) return (float)t;  // rounds into the normal range, or 0, inf, NaN
    const unsigned int m = (unsigned int)rint(a * 7.1362384635297994e44);  // a / 2^-149, half to even as the cast
    return __uint_as_float((t < 0.0 ? 0x80000000u : 0u) | m);             // m == 2^23 is FLT_MIN, as it should be
}
template <typename T> __device__ __forceinline__ double as_f64(T x) { return (double)x; }
template <> __device__ __forceinline__ double as_f64<float>(float x) { return f32_to_f64(x); }
template <typename T> __device__ __forceinline__ T from_f64(double t) { return (T)t; }
template <> __device__ __forceinline__ float from_f64<float>(double t) { return f64_to_f32(t); }

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

template <typename T, typename A>
__global__ void gpuvec_ray_max(const T* __restrict__ img, const long long n_out, const long long rows,
                               const long long cols, const long long r0, const long long c0, const long long ocols,
                               const long long roff, const long long coff, const long long icols, const double orow,
                               const double ocol, const long long num, const int order, const int constant,
                               const int kind, const double cval, const double lo, const double hi,
                               const double edge, const T top, T* __restrict__ out, A* __restrict__ arg) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n_out;
         i += (long long)blockDim.x * gridDim.x) {
        // Cell (r, c) of the full grid; the image array read starts at (roff, coff) and has icols columns.
        const long long r = r0 + i / ocols, c = c0 + i % ocols;
        double best = 0.0;
        long long best_k = 0;
        for (long long k = 0; k < num; ++k) {
            RayAxis y = ray_axis((double)r, orow, k, num, rows, order, constant != 0);
            RayAxis x = ray_axis((double)c, ocol, k, num, cols, order, constant != 0);
            y.i0 -= roff; y.i1 -= roff; x.i0 -= coff; x.i1 -= coff;
            double t;
            if (!(y.inside && x.inside)) {
                t = cval;
            } else if (order == 0) {
                t = __dadd_rn(0.0, as_f64(img[y.i0 * icols + x.i0]));
            } else {
                const long long y0 = y.i0 * icols, y1 = y.i1 * icols;
                t = __dadd_rn(0.0, __dmul_rn(__dmul_rn(as_f64(img[y0 + x.i0]), y.w0), x.w0));
                t = __dadd_rn(t, __dmul_rn(__dmul_rn(as_f64(img[y0 + x.i1]), y.w0), x.w1));
                t = __dadd_rn(t, __dmul_rn(__dmul_rn(as_f64(img[y1 + x.i0]), y.w1), x.w0));
                t = __dadd_rn(t, __dmul_rn(__dmul_rn(as_f64(img[y1 + x.i1]), y.w1), x.w1));
            }
            double cur;
            if (kind == 0) {            // float image: the sample as map_coordinates returns it
                cur = as_f64(from_f64<T>(t));
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
        out[i] = (kind != 0 && best > edge) ? top : from_f64<T>(best + 0.0);
        arg[i] = (A)best_k;
    }
}
"""


def name_expressions() -> list[str]:
    """The kernel's template instances: every (image dtype, argmax dtype) pair ray_max can launch."""
    return [_name(image, arg) for image in IMAGE_DTYPES for arg in ARG_DTYPES]


def _name(image_dtype: Any, arg_dtype: Any) -> str:
    return f"gpuvec_ray_max<{c_type(image_dtype)}, {c_type(arg_dtype)}>"


@functools.cache
def _module() -> Any:
    import cupy

    return cupy.RawModule(code=SOURCE, options=OPTIONS, name_expressions=name_expressions())


def streaming(
    image: Any, origin: tuple[float, ...], num: int, order: int, mode: str, cval: float, arg_dtype: Any, window: Window
) -> tuple[Any, Any]:
    """Fixed ``num`` on a 2-D image: one thread per cell, sample positions in registers, one write.

    Nothing but the image is read: the per-axis indices and weights that the CPU
    paths take from :func:`gpuvec.rays._rules.axis_table` are recomputed per thread
    with the same operations, so all paths sample at bit-identical points.
    """
    import cupy

    (rows, cols), (r0, c0), (roff, coff) = window.shape, window.start, window.offset
    kind, lo, hi = cast_rule(image.dtype)
    edge, top = saturation(image.dtype)
    out = cupy.empty(window.out_shape, image.dtype)
    arg = cupy.empty(window.out_shape, arg_dtype)
    n_out = out.size
    if n_out:
        i64, f64, i32 = np.int64, np.float64, np.int32
        kernel = _module().get_function(_name(image.dtype, arg.dtype))
        args = (
            cupy.ascontiguousarray(image), i64(n_out), i64(rows), i64(cols), i64(r0), i64(c0),
            i64(window.out_shape[1]), i64(roff), i64(coff), i64(image.shape[1]), f64(origin[0]), f64(origin[1]),
            i64(num), i32(order), i32(mode == "constant"), i32(kind), f64(cval), f64(lo), f64(hi), f64(edge),
            image.dtype.type(top), out, arg,
        )  # fmt: skip
        kernel((grid_for(n_out),), (BLOCK,), args)
    return out, arg


def dense(
    image: Any, origin: tuple[float, ...], order: int, mode: str, cval: float, arg_dtype: Any, window: Window
) -> tuple[Any, Any, Any]:
    """Dense rays have no fused kernel yet: cupyx's map_coordinates through :mod:`gpuvec.rays._xp`."""
    return _rays_xp.dense(image, origin, order, mode, cval, arg_dtype, window)
