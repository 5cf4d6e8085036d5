"""The fused CuPy kernel for 3x3 rotation checks, imported only on the cupy path.

One thread per matrix computes the Gram entries' largest deviation from I and
the determinant in registers (the closed form of
:func:`gpuvec.rotations._xp.closed_form_3x3`, which a test compares it with).
"""

from __future__ import annotations

import functools

import cupy

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


@functools.cache
def _rot3_kernel() -> cupy.ElementwiseKernel:
    return cupy.ElementwiseKernel("raw T m", "F err, F det", _ROT3_BODY, name="gpuvec_rotation3")


def residuals_3x3(R, out_dtype):
    """max|R R^T - I| and det R for a contiguous (B, 3, 3) stack, one thread per matrix."""
    n = R.shape[0]
    err = cupy.empty(n, out_dtype)
    det = cupy.empty(n, out_dtype)
    _rot3_kernel()(cupy.ascontiguousarray(R), err, det)
    return err, det
