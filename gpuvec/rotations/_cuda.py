"""The CUDA kernel for 3x3 rotation checks, on the cupy path.

One thread per matrix computes the Gram entries' largest deviation from I and
the determinant in registers (the closed form of
:func:`gpuvec.rotations._xp.closed_form_3x3`, which a test compares it with, to
rounding: the compiler may contract the products into fused multiply-adds).

:data:`SOURCE` is the whole CUDA C++ source, compiled by cupy's ``RawModule``
with :data:`OPTIONS` and one template instance per dtype
(:func:`name_expressions`); tests/core/test_cuda_sources.py compiles exactly
that with NVRTC on machines without a GPU. cupy is imported only when a kernel
is launched.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from gpuvec._core.cuda_source import BLOCK, c_type, grid_for

__all__ = ["OPTIONS", "SOURCE", "name_expressions", "residuals_3x3"]

OPTIONS = ("--std=c++17",)

SOURCE = r"""
template <typename T>
__global__ void gpuvec_rotation3(const T* __restrict__ m, const long long n, T* __restrict__ err,
                                 T* __restrict__ det) {
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n;
         i += (long long)blockDim.x * gridDim.x) {
        const long long b = i * 9;
        const double a00 = m[b + 0], a01 = m[b + 1], a02 = m[b + 2];
        const double a10 = m[b + 3], a11 = m[b + 4], a12 = m[b + 5];
        const double a20 = m[b + 6], a21 = m[b + 7], a22 = m[b + 8];
        double e = fabs(a00 * a00 + a01 * a01 + a02 * a02 - 1.0);
        e = fmax(e, fabs(a10 * a10 + a11 * a11 + a12 * a12 - 1.0));
        e = fmax(e, fabs(a20 * a20 + a21 * a21 + a22 * a22 - 1.0));
        e = fmax(e, fabs(a00 * a10 + a01 * a11 + a02 * a12));
        e = fmax(e, fabs(a00 * a20 + a01 * a21 + a02 * a22));
        e = fmax(e, fabs(a10 * a20 + a11 * a21 + a12 * a22));
        const double d = a00 * (a11 * a22 - a12 * a21) - a01 * (a10 * a22 - a12 * a20) + a02 * (a10 * a21 - a11 * a20);
        const bool finite = isfinite(e) && isfinite(d);
        bool entries_finite = true;  // NaN for a NaN or inf entry; inf where finite entries overflow
        for (int j = 0; j < 9; ++j) entries_finite = entries_finite && isfinite((double)m[b + j]);
        const double nan = __longlong_as_double(0x7ff8000000000000LL), inf = __longlong_as_double(0x7ff0000000000000LL);
        err[i] = finite ? (T)e : (T)(entries_finite ? inf : nan);
        det[i] = (T)d;
    }
}
"""

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def name_expressions() -> list[str]:
    """The kernel's template instances: one per dtype the rotation checks launch it with."""
    return [_name(dtype) for dtype in DTYPES]


def _name(dtype: Any) -> str:
    return f"gpuvec_rotation3<{c_type(dtype)}>"


@functools.cache
def _module() -> Any:
    import cupy

    return cupy.RawModule(code=SOURCE, options=OPTIONS, name_expressions=name_expressions())


def residuals_3x3(R: Any, out_dtype: Any) -> tuple[Any, Any]:
    """max|R R^T - I| and det R for a (B, 3, 3) float32/float64 stack, one thread per matrix."""
    import cupy

    dtype = np.dtype(out_dtype)
    R = cupy.ascontiguousarray(R, dtype=dtype)
    n = R.shape[0]
    err = cupy.empty(n, dtype)
    det = cupy.empty(n, dtype)
    if n:
        kernel = _module().get_function(_name(dtype))
        kernel((grid_for(n),), (BLOCK,), (R, np.int64(n), err, det))
    return err, det
