"""The compiled CPU loop of nearest_rotation for 3x3 stacks: the polar factor by scaled Newton iteration.

For a 3x3 matrix M with det M > 0, the nearest rotation is the orthogonal polar
factor, the limit of ``X <- (z X + X^-T / z) / 2`` from ``X = M`` (Higham's
iteration; ``z = det(X)^(-1/3)`` scales the first steps, ``X^-T`` is the
cofactor matrix over the determinant). It converges quadratically, in registers,
about 6-9 steps for matrices near a rotation. :func:`nearest_3x3` marks the
matrices it did not settle (det M <= 0, where the nearest proper rotation flips
the smallest singular direction; or no convergence in 60 steps): the caller
takes those through the SVD reference (:func:`gpuvec.rotations._xp.nearest`).
Its results equal the SVD's U V^T to rounding (tested to 1e-13).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gpuvec._core.jit import cached_njit
from gpuvec._core.threads import run_parallel, threads_for

__all__ = ["nearest_3x3"]


@cached_njit(nogil=True)
def _polar_items(M, out, ok, lo, hi):  # pragma: no cover - compiled
    for b in range(lo, hi):
        a = M[b]
        x00, x01, x02 = a[0, 0], a[0, 1], a[0, 2]
        x10, x11, x12 = a[1, 0], a[1, 1], a[1, 2]
        x20, x21, x22 = a[2, 0], a[2, 1], a[2, 2]
        good = False
        last = False
        scale = True
        for _ in range(60):
            # the cofactor matrix: X^-T = C / det X
            c00 = x11 * x22 - x12 * x21
            c01 = x12 * x20 - x10 * x22
            c02 = x10 * x21 - x11 * x20
            c10 = x02 * x21 - x01 * x22
            c11 = x00 * x22 - x02 * x20
            c12 = x01 * x20 - x00 * x21
            c20 = x01 * x12 - x02 * x11
            c21 = x02 * x10 - x00 * x12
            c22 = x00 * x11 - x01 * x10
            det = x00 * c00 + x01 * c01 + x02 * c02
            if not (det > 0.0) or not np.isfinite(det):
                break
            g = det ** (-1.0 / 3.0) if scale else 1.0
            h = 1.0 / (g * det)
            n00 = 0.5 * (g * x00 + h * c00)
            n01 = 0.5 * (g * x01 + h * c01)
            n02 = 0.5 * (g * x02 + h * c02)
            n10 = 0.5 * (g * x10 + h * c10)
            n11 = 0.5 * (g * x11 + h * c11)
            n12 = 0.5 * (g * x12 + h * c12)
            n20 = 0.5 * (g * x20 + h * c20)
            n21 = 0.5 * (g * x21 + h * c21)
            n22 = 0.5 * (g * x22 + h * c22)
            step = (abs(n00 - x00) + abs(n01 - x01) + abs(n02 - x02) + abs(n10 - x10) + abs(n11 - x11)
                    + abs(n12 - x12) + abs(n20 - x20) + abs(n21 - x21) + abs(n22 - x22))  # fmt: skip
            x00, x01, x02, x10, x11, x12, x20, x21, x22 = n00, n01, n02, n10, n11, n12, n20, n21, n22
            if last:  # one step after the step fell below 1e-8: quadratic convergence leaves rounding
                good = True
                break
            scale = step > 1e-2  # scaling speeds the first steps; unscaled steps converge quadratically
            last = step < 1e-8
        r = out[b]
        r[0, 0], r[0, 1], r[0, 2] = x00, x01, x02
        r[1, 0], r[1, 1], r[1, 2] = x10, x11, x12
        r[2, 0], r[2, 1], r[2, 2] = x20, x21, x22
        ok[b] = good


def nearest_3x3(M: Any) -> tuple[Any, Any]:
    """(R, ok) for a (B, 3, 3) stack: R the nearest rotations where ``ok``, to be redone where not."""
    M = np.ascontiguousarray(M, dtype=np.float64)
    B = M.shape[0]
    out = np.empty_like(M)
    ok = np.empty(B, dtype=bool)
    threads = threads_for("rotations", B)
    parts = max(1, min(8 * threads, B))
    cuts = [B * i // parts for i in range(parts + 1)]
    run_parallel(lambda lo, hi: _polar_items(M, out, ok, lo, hi), list(zip(cuts[:-1], cuts[1:])), threads)
    return out, ok
