"""scipy's arithmetic for ray_max, written once: every implementation follows these rules.

``ray_max`` is bit-identical to ``scipy.ndimage.map_coordinates`` followed by
max/argmax because every implementation forms each sample the same way. The
numpy functions here are the reference; the compiled implementations repeat
them per point, and a test compares each implementation with the reference.

==================  ===========================  ===============================  ==============================
rule                reference (this module)      numba (``_numba.py``)            CUDA (``_cuda.py``)
==================  ===========================  ===============================  ==============================
positions           :func:`linspace`,            ``axis_point``                   ``ray_axis`` (position part)
                    :func:`axis_positions`
indices, weights    :func:`axis_table`           ``axis_point``                   ``ray_axis``
sample              (in ``_numpy.py``,           ``sample``                       kernel body, ``t = ...``
                    ``sample_block``)
cast to the dtype   :func:`cast_rule`,           ``as_output``, ``stored``        kernel body, ``kind`` branches,
                    :func:`round_like_scipy`,                                     ``out = ...``
                    :func:`saturation`
max / NaN           :func:`better`               ``better``                       kernel body, ``if (k == 0 ...``
==================  ===========================  ===============================  ==============================

Positions
    Sample ``k`` of cell ``x`` on axis d is ``np.linspace(x[d], origin[d], num)[k]``
    computed as numpy's *scalar* linspace computes it: ``k * step + start`` with
    ``step = (stop - start) / (num - 1)``, or ``(k / div) * delta + start`` where
    the step is 0, and exactly ``stop`` for the last sample.
Indices and weights (scipy's ni_interpolation)
    ``'constant'`` marks positions outside ``[0, n-1]`` (the sample is ``cval``);
    order 0 takes index ``floor(c + 0.5)``; order 1 takes ``floor(c)`` and
    ``floor(c) + 1`` with weights ``w0 = 1 - (c - floor(c))``, ``w1 = 1 - w0``;
    ``'nearest'`` clamps both indices into the image, ``'constant'`` mirrors
    the upper neighbour of a point at exactly ``n - 1``.
Sample
    The ``2**ndim`` corner terms ``((m * w_0) * w_1) * ...`` summed in C order
    of the corners, in float64 from ``0.0`` (so never ``-0.0``), with no fused
    multiply-add.
Cast
    Float images: the float64 sample rounded to the image's dtype (beyond its
    range: inf). Integer images: rounded half away from zero (unsigned:
    negatives become 0), clipped to the dtype's range in float64 (see
    :func:`cast_rule`) and compared there, then stored saturating
    (:func:`saturation`): an int64/uint64 sample that float64 rounds past the
    dtype's max (``2**63``, ``2**64``) is the max. Here alone gpuvec and scipy
    part: scipy's cast overflows (int64: the min, uint64: 0). ``cval`` is a
    sample like any other and takes the same cast.
Max
    ``ndarray.max``/``argmax``: the first index of the largest sample; the first
    NaN wins and stays.
"""

from __future__ import annotations

import types
from typing import Any, NamedTuple

import numpy as np

STREAMING_MODES = ("nearest", "constant")


class Window(NamedTuple):
    """Which cells of the full grid to compute, and where the image read lies in it.

    Attributes
    ----------
    shape : tuple of int
        The full image's shape (spatial axes): it decides the mode's edges.
    start, stop : tuple of int
        The output block: cells ``start[d] <= x[d] < stop[d]`` on every axis.
    offset : tuple of int
        Full-grid index of the first element of the image array that is read.
        The array must hold every index the block's samples touch.
    """

    shape: tuple[int, ...]
    start: tuple[int, ...]
    stop: tuple[int, ...]
    offset: tuple[int, ...]

    @classmethod
    def whole(cls, shape: tuple[int, ...]) -> Window:
        """Every cell of an image of ``shape``, read from the whole image."""
        return cls(tuple(shape), (0,) * len(shape), tuple(shape), (0,) * len(shape))

    @property
    def out_shape(self) -> tuple[int, ...]:
        return tuple(b - a for a, b in zip(self.start, self.stop))


def arg_dtype(samples: int) -> type:
    """The smallest unsigned dtype that holds every sample index (0 .. samples - 1)."""
    return np.uint8 if samples <= 256 else np.uint16 if samples <= 65536 else np.uint32


def linspace(xp: types.ModuleType, start: Any, stop: Any, num: int) -> Any:
    """``out[k] == np.linspace(start, stop, num)[k]`` element by element, bit for bit.

    Shape ``(num,) + broadcast(start, stop).shape``. A vectorised
    ``np.linspace(array_start, stop, num)`` is *not* the same: it switches every
    element to ``k / div * delta`` as soon as one of them has a zero step. This
    follows the scalar calls, on either backend.
    """
    shape = np.broadcast_shapes(start.shape, np.shape(stop))
    if num == 1:
        return xp.broadcast_to(start, shape)[None].copy()
    div = num - 1
    delta = stop - start
    step = delta / div
    k = xp.arange(num, dtype=xp.float64).reshape((num,) + (1,) * len(shape))
    table = xp.where(step == 0, (k / div) * delta, k * step)
    table += start
    table[-1] = stop
    return table


def axis_positions(xp: types.ModuleType, cells: range, stop: float, num: int) -> Any:
    """``table[k, j] == np.linspace(cells[j], stop, num)[k]``, shape (num, len(cells)): one axis of every ray."""
    return linspace(xp, xp.arange(cells.start, cells.stop, dtype=xp.float64), stop, num)


def axis_table(n: int, cells: range, stop: float, num: int, order: int, mode: str, offset: int = 0) -> dict[str, Any]:
    """Indices and weights along one axis of length ``n`` for the given cells, shape (num, len(cells)) each.

    Indices are into the full axis minus ``offset`` (into the array actually read).
    Keys: ``i0`` (and for order 1 ``i1``, ``w0``, ``w1``) and ``inside`` (None
    unless ``mode == 'constant'``).
    """
    coord = axis_positions(np, cells, stop, num)
    inside = None
    if mode == "constant":
        inside = (coord >= 0) & (coord <= n - 1)
        coord = np.where(inside, coord, 0.0)
    if order == 0:
        i0 = np.clip(np.floor(coord + 0.5), 0, n - 1).astype(np.int64) - offset
        return {"i0": i0, "inside": inside}
    floor = np.floor(coord)
    w0 = 1.0 - (coord - floor)
    w1 = 1.0 - w0
    i0 = np.clip(floor, 0, n - 1).astype(np.int64) - offset
    i1 = floor + 1
    edge = n - 1 if mode == "nearest" else max(n - 2, 0)
    i1 = np.where(i1 > n - 1, edge, np.clip(i1, 0, None)).astype(np.int64) - offset
    return {"i0": i0, "i1": i1, "w0": w0, "w1": w1, "inside": inside}


def axis_tables(window: Window, origin: tuple[float, ...], num: int, order: int, mode: str) -> list[dict[str, Any]]:
    """:func:`axis_table` for every axis of a window."""
    return [
        axis_table(n, range(a, b), o, num, order, mode, off)
        for n, a, b, o, off in zip(window.shape, window.start, window.stop, origin, window.offset)
    ]


def input_box(
    window: Window, origin: tuple[float, ...], num: int, order: int, mode: str
) -> tuple[tuple[int, int], ...]:
    """The box of the full image that the samples of ``window``'s cells read: ``(start, stop)`` per axis.

    Taken from the exact axis tables (the indices every implementation uses), so
    the box is never a cell short. Reading ``image[start:stop]`` on each axis and
    passing ``Window(shape, w.start, w.stop, offset=starts)`` gives the same result
    as reading the whole image.
    """
    whole = window._replace(offset=(0,) * len(window.shape))
    box = []
    for n, tab in zip(window.shape, axis_tables(whole, origin, num, order, mode)):
        lo, hi = read_range(tab, n)
        lo, hi = int(lo.min()), int(hi.max()) + 1
        box.append((lo, hi) if lo < hi else (0, 1))  # every sample outside ('constant'): one cell, never used
    return tuple(box)


def read_range(tab: dict[str, Any], n: int) -> tuple[Any, Any]:
    """The lowest and highest index that each sample of an axis table reads, shape (num, cells) each.

    Samples outside the image (``mode='constant'``) read nothing: ``lo = n``, ``hi = -1`` there
    (they are ``cval``; the implementations never use what their table points at).
    """
    lo = tab["i0"] if "i1" not in tab else np.minimum(tab["i0"], tab["i1"])
    hi = tab["i0"] if "i1" not in tab else np.maximum(tab["i0"], tab["i1"])
    if tab["inside"] is not None:
        lo = np.where(tab["inside"], lo, n)
        hi = np.where(tab["inside"], hi, -1)
    return lo, hi


def cast_rule(dtype: np.dtype) -> tuple[int, float, float]:
    """How a float64 sample becomes the image dtype: ``(kind, lo, hi)``.

    kind 0: float (no clip); 1: signed integer, 2: unsigned integer, both rounded
    half away from zero then clipped to ``[lo, hi]``, the float64 values nearest
    the dtype's min and max. For int64 and uint64 ``hi`` is one past the max
    (``float(2**63 - 1)`` is ``2**63``): a sample there stands for every value
    that float64 rounds past the max, and :func:`saturation` stores it as the max.
    """
    if dtype.kind == "f":
        return 0, 0.0, 0.0
    info = np.iinfo(dtype)
    return (1 if dtype.kind == "i" else 2), float(info.min), float(info.max)


def saturation(dtype: np.dtype) -> tuple[float, Any]:
    """The saturating store of a clipped float64 sample into the dtype: ``(edge, top)``.

    A value above ``edge`` (the largest float64 the dtype holds) is stored as
    ``top`` (the dtype's max), every other value by the plain cast. Only int64
    and uint64 have such values (``cast_rule``'s ``hi``); float dtypes have none
    (``edge`` is inf).
    """
    if dtype.kind == "f":
        return float("inf"), dtype.type(0)
    info = np.iinfo(dtype)
    edge = float(info.max)
    if int(edge) > info.max:
        edge = float(np.nextafter(edge, 0.0))
    return edge, dtype.type(info.max)


def round_like_scipy(t: Any, dtype: np.dtype) -> Any:
    """scipy's cast of float64 samples to an integer dtype, in place, before clipping:
    round half away from zero (unsigned: negatives become 0)."""
    if dtype.kind == "u":
        np.maximum(t, 0.0, out=t)
        t += 0.5
    else:
        t += np.copysign(0.5, t)
    return np.trunc(t, out=t)


def cast_value(value: float, dtype: np.dtype) -> float:
    """One float64 sample (e.g. ``cval``) as the image dtype gives it back, as a float64 value.

    A float dtype rounds it to its precision, overflowing to inf without a warning (the
    documented cast of ``cval``; scipy's C cast gives the same); an integer dtype rounds and
    clips it (:func:`cast_rule`).
    """
    kind, lo, hi = cast_rule(np.dtype(dtype))
    if kind == 0:
        with np.errstate(over="ignore"):
            return float(np.array(value, dtype=dtype))
    t = round_like_scipy(np.array([value]), np.dtype(dtype))
    return float(np.clip(t, lo, hi)[0])


def to_dtype(best: Any, dtype: np.dtype) -> Any:
    """The running max (float64 values of the samples, clipped by :func:`cast_rule`) as the image dtype,
    saturating (:func:`saturation`): a value past the dtype's max is the max, never a wrapped integer."""
    if dtype.kind == "f" or best.dtype == dtype:  # (integer samples already cast by their sampler)
        return best.astype(dtype, copy=False)
    _, lo, _ = cast_rule(dtype)
    edge, top = saturation(dtype)
    out = best.clip(lo, edge).astype(dtype)
    if edge < float(top):  # int64, uint64: float64 rounds values near the max past it
        out[best > edge] = top
    return out


def better(xp: types.ModuleType, cur: Any, best: Any) -> Any:
    """Where step ``cur`` replaces the running max ``best``: ndarray.max/argmax's first index, the first NaN wins."""
    return (cur > best) | (xp.isnan(cur) & ~xp.isnan(best))
