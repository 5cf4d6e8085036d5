"""The blocked numpy loop for ray_max: the reference that the compiled loops are tested against.

Follows the rules of :mod:`gpuvec.rays._rules` with whole-array numpy operations:
for every block of rows along axis 0 (cache-sized), stream over the sample index
``k``, form step ``k``'s samples from the 1-D axis tables, cast them and fold them
into a running max. The blocks are split over the worker threads of
:mod:`gpuvec._core.threads` (numpy releases the GIL inside each operation). Any
number of axes; ``order`` 0 or 1; ``mode`` 'nearest' or 'constant'. Same names
and signatures as :mod:`gpuvec.rays._numba` and :mod:`gpuvec.rays._cuda`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from gpuvec._core.dispatch import chunk_elements
from gpuvec._core.threads import run_parallel, threads_for
from gpuvec.rays._rules import Window, axis_tables, cast_rule, cast_value, round_like_scipy, to_dtype


def streaming(
    image: Any, origin: tuple[float, ...], num: int, order: int, mode: str, cval: float, arg_dtype: Any, window: Window
) -> tuple[Any, Any]:
    """Fixed ``num``: the max and first argmax over each cell's ``num`` samples, for the cells of ``window``.

    ``image`` is the region of the full image that ``window.offset`` places; the
    results have shape ``window.out_shape``.
    """
    tabs = axis_tables(window, origin, num, order, mode)
    shape, dtype = window.out_shape, image.dtype
    is_int = dtype.kind in "iu"
    # Samples are compared as map_coordinates would return them: in the image's
    # float dtype, or for integer images as their rounded float64 values.
    work_dtype = np.dtype(np.float64) if is_int else dtype
    cval_sample = work_dtype.type(cast_value(cval, dtype))
    _, lo, hi = cast_rule(dtype)
    # Only 64-bit samples can leave the dtype's range (float64 rounds int64/uint64 values near the
    # limits past them): they are clipped before they are compared, as every implementation does.
    clip = is_int and dtype.itemsize == 8
    # ndarray.max's NaN rule costs three more passes; only NaN, inf (inf * 0) or a NaN cval need it.
    nan_aware = not is_int and not (math.isfinite(cval) and bool(np.isfinite(image).all()))

    # Axes on which a step's positions are all whole numbers (weights 1 and 0; always step 0, the cells
    # themselves): with a finite image the zero-weight corner terms are exact zeros and the weight-1
    # products the values themselves, so that axis takes one index and no multiplication.
    finite = not nan_aware
    exact = [[finite and order == 1 and not bool(tab["w1"][k].any()) for tab in tabs] for k in range(num)]

    def new_buffers(rows: int) -> dict[str, Any]:
        return _buffers(rows, shape, image, work_dtype, arg_dtype)

    def step(k: int, rs: slice, buf: dict[str, Any]) -> Any:
        """Step k's samples of rows rs as the image dtype gives them back (in the work dtype)."""
        acc = sample_block(image, tabs, k, rs, order, buf, exact[k])
        if is_int:
            round_like_scipy(acc, dtype)
            if clip:
                np.clip(acc, lo, hi, out=acc)
        cur = acc
        if work_dtype != np.float64:  # the cast to a float32 image's dtype
            cur = buf["cur"]
            cur[...] = acc
        if tabs[0]["inside"] is not None:
            outside = np.logical_not(_inside_mask(tabs, k, rs, buf["mask"]), out=buf["mask"])
            cur[outside] = cval_sample
        return cur

    best = np.empty(shape, work_dtype)
    arg = np.empty(shape, arg_dtype)
    last = None
    if best.size:  # every ray's last sample is the origin, the same indices and weights for every cell: one value
        with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN in scipy too, silently
            last = np.array(step(num - 1, slice(0, 1), new_buffers(1)).flat[0], dtype=work_dtype)
    inner = math.prod(shape[1:])
    block = max(1, min(shape[0], chunk_elements(np, "rays_block") // inner))
    starts = range(0, shape[0], block)

    def run_blocks(lo: int, hi: int) -> None:  # blocks starts[lo:hi], with this thread's own buffers
        buffers = new_buffers(block)
        with np.errstate(invalid="ignore", over="ignore"):
            for r0 in starts[lo:hi]:
                rs = slice(r0, min(shape[0], r0 + block))
                n = rs.stop - r0
                buf = {name: [b[:n] for b in v] if name == "levels" else v[:n] for name, v in buffers.items()}
                for k in range(num):
                    cur = last if k == num - 1 else step(k, rs, buf)
                    _update_max(buf["best"], buf["arg"], cur, k, nan_aware, buf)
                # The running max lives in cache-sized buffers; the outputs are written once.
                best[rs] = buf["best"]
                arg[rs] = buf["arg"]

    # Blocks are independent (numpy releases the GIL inside each operation): spans of them taken by the
    # worker threads as they free up (4 spans per thread).
    threads = threads_for("rays", best.size * num)
    parts = max(1, min(4 * threads, len(starts)))
    cuts = [len(starts) * i // parts for i in range(parts + 1)]
    run_parallel(run_blocks, list(zip(cuts[:-1], cuts[1:])), threads)
    if is_int:
        return to_dtype(best, dtype), arg
    best += 0.0  # scipy's sums start at 0.0, so a sample is never -0.0
    return best, arg


def _buffers(rows: int, shape: tuple[int, ...], image: Any, work_dtype: Any, arg_dtype: Any) -> dict[str, Any]:
    """One thread's work buffers for a block of ``rows`` output rows of ``shape``."""
    bshape = (rows,) + shape[1:]
    return {
        "acc": np.empty(bshape),
        "src": np.empty((rows,) + image.shape[1:], image.dtype),
        "levels": [np.empty((rows,) + shape[1 : d + 1] + image.shape[d + 1 :]) for d in range(len(shape))],
        "cur": np.empty(bshape, work_dtype),
        "mask": np.empty(bshape, bool),
        "nan": np.empty(bshape, bool),
        "best": np.empty(bshape, work_dtype),
        "arg": np.empty(bshape, arg_dtype),
        "argk": np.empty(bshape, arg_dtype),
    }


def dense(
    image: Any, origin: tuple[float, ...], order: int, mode: str, cval: float, arg_dtype: Any, window: Window
) -> tuple[Any, Any, Any]:
    """Dense rays have no blocked numpy loop: the namespace-generic path (map_coordinates) serves numpy."""
    from gpuvec.rays import _xp as _rays_xp

    return _rays_xp.dense(image, origin, order, mode, cval, arg_dtype, window)


def _axis_slice(tabs: list[dict[str, Any]], name: str, d: int, k: int, rs: slice, ndim: int) -> Any:
    """Table ``name`` of axis d at step k (rows ``rs`` for axis 0), shaped to broadcast along axis d."""
    values = tabs[d][name][k, rs] if d == 0 else tabs[d][name][k]
    return values.reshape((-1,) + (1,) * (ndim - 1 - d))


def _inside_mask(tabs: list[dict[str, Any]], k: int, rs: slice, out: Any) -> Any:
    out[...] = True
    for d in range(len(tabs)):
        out &= _axis_slice(tabs, "inside", d, k, rs, len(tabs))
    return out


def sample_block(
    image: Any,
    tabs: list[dict[str, Any]],
    k: int,
    rs: slice,
    order: int,
    buf: dict[str, Any],
    exact: list[bool] | None = None,
) -> Any:
    """Step k's samples for the block ``rs`` of axis 0, in float64, with scipy's arithmetic.

    scipy sums the 2**ndim corner terms ``((m * w_0) * w_1) * ...`` in C order
    of the corners. Scaling whole slabs by each axis' weight before taking the
    next axis' indices makes the same products with fewer multiplications.
    ``exact[d]``: axis d's weights are all 1 and 0 and the image is finite, so
    only its first index is taken, unscaled (the other terms are exact zeros).
    """
    ndim, acc = image.ndim, buf["acc"]
    if order == 0:
        picked = np.take(image, tabs[0]["i0"][k, rs], axis=0, out=buf["src"], mode="wrap")
        for d in range(1, ndim):
            picked = np.take(picked, tabs[d]["i0"][k], axis=d, mode="wrap")
        np.copyto(acc, picked)
        return acc
    terms = _corner_terms(image, tabs, k, rs, 0, buf, exact or [False] * ndim)
    np.copyto(acc, next(terms))
    for term in terms:
        acc += term
    return acc


def _corner_terms(
    src: Any, tabs: list[dict[str, Any]], k: int, rs: slice, d: int, buf: dict[str, Any], exact: list[bool]
) -> Iterator[Any]:
    ndim = len(tabs)
    level = buf["levels"][d]
    for j in (0,) if exact[d] else (0, 1):
        if d == 0:
            taken = np.take(src, tabs[0][f"i{j}"][k, rs], axis=0, out=buf["src"], mode="wrap")
        else:
            taken = np.take(src, tabs[d][f"i{j}"][k], axis=d, out=level, mode="wrap")
        if exact[d]:  # weight 1: the values themselves, in float64
            part = taken
            if taken.dtype != np.float64:
                np.copyto(level, taken)
                part = level
        else:
            part = np.multiply(taken, _axis_slice(tabs, f"w{j}", d, k, rs, ndim), out=level)
        if d == ndim - 1:
            yield part
        else:
            yield from _corner_terms(part, tabs, k, rs, d + 1, buf, exact)


def _update_max(best: Any, arg: Any, cur: Any, k: int, nan_aware: bool, buf: dict[str, Any]) -> None:
    """Fold step k into the running max and first argmax (:func:`gpuvec.rays._rules.better`, branch-free).

    Masked copies run several times slower on the unpredictable masks that real
    images give.
    """
    if k == 0:
        best[...] = cur
        arg[...] = 0
        return
    better = np.greater(cur, best, out=buf["mask"])
    if nan_aware:  # the first NaN wins and stays
        isnan = np.isnan(cur, out=buf["nan"])
        better |= isnan
        better &= ~np.isnan(best, out=buf["nan"])
    np.maximum(best, cur, out=best)  # propagates NaN, as ndarray.max does
    # arg < k everywhere, so max(arg, k * better) sets exactly the improved cells to k.
    np.maximum(arg, np.multiply(better, arg.dtype.type(k), out=buf["argk"]), out=arg)
