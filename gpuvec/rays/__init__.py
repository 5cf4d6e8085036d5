"""The max of an image along the ray from every cell to an origin.

For every cell ``(r, c)`` of an image, ``num`` points are spaced evenly on the
segment from ``(r, c)`` to ``origin`` (exactly as ``np.linspace(r, orow, num)``
and ``np.linspace(c, ocol, num)`` space them), the image is interpolated there
as ``scipy.ndimage.map_coordinates`` does, and the max of those samples and the
index of the first sample reaching it are returned.

How it stays exact and small: for a fixed sample index ``k`` every cell's
sample point is ``(r + (orow - r) t_k, c + (ocol - c) t_k)``, an axis-aligned
grid, so all interpolation indices and weights come from two 1-D tables (one
per axis) and the work streams over ``k`` holding O(rows x cols) memory.
Every implementation follows scipy's arithmetic, written once in
:mod:`gpuvec.rays._rules`, so the results are bit-identical to
``map_coordinates`` followed by max/argmax.

This module validates the input; :mod:`gpuvec.rays._dispatch` chooses the
implementation. They live one per module, with the same function names
(``streaming``, ``dense``) and signatures: ``_numba`` (compiled CPU loops),
``_numpy`` (blocked numpy loop, the reference), ``_cuda`` (fused CuPy kernel)
and ``_xp`` (``map_coordinates`` on either backend); ``_dask`` takes dask
images, block by block.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence, Set
from typing import Any, Literal

import numpy as np

from gpuvec._core.checks import check_bool, check_choice, check_int, check_real
from gpuvec._core.dlpack import dlpack_io
from gpuvec._core.namespace import get_namespace, is_dask_array
from gpuvec.rays import _dispatch

__all__ = ["ray_max"]

Mode = Literal["nearest", "constant", "reflect", "grid-mirror", "mirror", "grid-wrap", "wrap", "grid-constant"]
MODES = ("nearest", "constant", "reflect", "grid-mirror", "mirror", "grid-wrap", "wrap", "grid-constant")
# Dense rays cost one sample per pixel crossed: more than this many samples in one call
# (minutes of work on a CPU) is refused up front, saying what it would cost.
DENSE_SAMPLE_LIMIT = 1 << 34
# The largest num: the argmax is stored as uint32.
NUM_LIMIT = 1 << 32
# Entries of the per-axis sample tables (num per cell of each axis, 16 bytes each) beyond which a fixed num
# is refused up front: 2**28 is 4 GiB.
TABLE_LIMIT = 1 << 28


@dlpack_io
def ray_max(
    image: Any,
    origin: Sequence[float],
    num: int | None = 5,
    *,
    order: int = 1,
    mode: Mode = "nearest",
    cval: float = 0.0,
    channel_axis: int | None = None,
    return_coords: bool = False,
) -> tuple[Any, ...]:
    """Max of the image sampled along the ray from every cell to ``origin``.

    Parameters
    ----------
    image : array, shape (M, N), (M, N, P), ... [with one channel axis]
        numpy or cupy array of an integer or floating dtype (float16, bool and
        complex are rejected, as scipy's map_coordinates cannot interpolate them).
        2-D images, 3-D volumes, any number of spatial axes.
    origin : sequence of float, one per spatial axis
        ``(row, col[, ...])`` of the rays' common end; integers or floats,
        inside the image or not.
    num : int or None, default 5
        Samples per ray, both ends included (``num >= 2``): sample ``k`` of cell
        ``x`` is at ``np.linspace(x[d], origin[d], num)[k]`` on every axis d.
        ``None`` samples every pixel the ray crosses (dense rays, see Notes).
    order : int, default 1
        Spline order, 0 to 5, as in ``scipy.ndimage.map_coordinates``.
    mode : {'nearest', 'constant', 'reflect', 'grid-mirror', 'mirror', 'grid-wrap', 'wrap', 'grid-constant'}
        How samples outside the image are treated, as in map_coordinates.
    cval : float, default 0.0
        The value outside the image for ``mode='constant'`` and ``'grid-constant'``,
        a sample like any other: cast to the image dtype as map_coordinates casts
        it (beyond float32's range a float32 image holds it as +-inf, silently;
        integer images round and clip it, see Notes).
    channel_axis : int, optional
        The axis of ``image`` that holds channels (e.g. -1 for an (H, W, 3)
        photograph): each channel gets its own result, on that axis.
    return_coords : bool, default False
        Also return the coordinates of each ray's max sample.

    Returns
    -------
    max_values : array, shape of image, dtype of image
        The largest sample on each cell's ray (NaN if any sample is NaN, as
        ``ndarray.max`` gives).
    argmax : array, shape of image, unsigned integer
        Index (0 at the cell, ``num - 1`` at the origin) of the first sample
        equal to the max; dtype uint8 for up to 256 samples per ray, uint16 up
        to 65536, uint32 beyond.
    coords : array of float64, shape (ndim,) + shape of image
        Only with ``return_coords``: ``coords[d]`` is the axis-d coordinate of
        the max sample, ``np.linspace(x[d], origin[d], num)[argmax]``
        (``ndim`` counts spatial axes; with channels, each channel's own).

    Notes
    -----
    ``order`` 0 and 1 with ``mode`` 'nearest' or 'constant' and a fixed
    ``num`` run on the streaming path: bit-identical to ``map_coordinates``
    followed by max/argmax (the accepted answer to the question gpuvec started
    from), holding nothing of size ``num M N`` beyond the outputs (1-D axis
    tables and cache-sized buffers). Which implementation runs for which input
    (a numba loop, a numpy loop or a fused CUDA kernel; ``GPUVEC_JIT=0``
    selects the numpy reference) is the table of the user guide's rays page;
    every one of them follows scipy's arithmetic and agrees bit for bit. The
    CPU loops use every core when called from the main thread
    (``GPUVEC_NUM_THREADS=n`` caps them) and the calling thread alone from any
    other thread.

    Every other order and mode runs through ``map_coordinates`` (cupyx's on
    the GPU, whose arithmetic can differ from scipy's in the last bit) on
    chunks of at most ``2**21`` points; for ``order > 1`` each chunk repeats
    the spline prefilter, so that path is slow. On numpy, fixed-``num`` calls
    of ``order > 1`` run their chunks on every core from the main thread (as
    the loops do), at most two chunks of points in flight, each thread with
    its own prefiltered float64 copy of the image (map_coordinates makes one
    per call).

    Dense rays (``num=None``): the ray from cell ``x`` takes
    ``n(x) = L(x) + 1`` samples, ``L(x) = ceil(max_d |origin[d] - x[d]|)``, so
    consecutive samples are at most one pixel apart on every axis; sample ``k``
    is at ``np.linspace(x[d], origin[d], n(x))[k]``. The cost is about
    ``cells * mean distance to the origin`` samples, streamed in chunks, so
    memory stays O(M N); more than ``DENSE_SAMPLE_LIMIT`` (``2**34``) samples
    is refused up front with the estimated cost.

    A dask ``image`` (``pip install 'gpuvec[dask]'``) gives lazy dask arrays
    chunked like the image, with its chunk type: one task per output block,
    reading only the input boxes its samples touch, bit-identical to the
    in-memory call (order 0 or 1, 'nearest' or 'constant', a fixed ``num``;
    the rest is a ValueError). Arrays of other libraries that speak DLPack
    (torch, JAX) are taken without a copy and come back as the caller's kind.

    Integer samples are rounded half away from zero and clipped to the dtype,
    as scipy does. They are formed in float64 as scipy forms them, with
    ``order=0`` too (a nearest-neighbour sample is the image value as float64
    holds it, which is scipy's answer), so beyond 2**53 in magnitude they lose
    precision as in scipy. Where float64 rounds a sample past the dtype's max
    (int64 values from ``2**63 - 512``, uint64 values from ``2**64 - 1024``,
    or a larger ``cval``), gpuvec saturates: the result is the dtype's max.
    scipy's cast overflows there (it gives int64's min, or 0 for uint64):
    the one place where gpuvec and scipy part. Big-endian images give
    native-order results, as scipy's.

    Examples
    --------
    The 6x6 example of the question gpuvec started from (origin (3, 3), 5 samples per ray):

    >>> import numpy as np, gpuvec
    >>> m = np.array([[10, 10, 10, 10, 10, 10],
    ...               [ 9,  9,  9, 10,  9,  9],
    ...               [ 9,  8,  9, 10,  8,  9],
    ...               [ 9,  7,  8,  0,  8,  9],
    ...               [ 8,  7,  7,  8,  8,  9],
    ...               [ 5,  6,  7,  7,  6,  7]])
    >>> m_max, m_dist = gpuvec.ray_max(m, (3, 3), num=5)
    >>> m_max[5]
    array([7, 7, 8, 8, 8, 8])
    >>> m_dist[5]
    array([1, 1, 2, 1, 2, 1], dtype=uint8)

    Where the max is, and every pixel on the ray:

    >>> _, _, coords = gpuvec.ray_max(m, (3, 3), num=5, return_coords=True)
    >>> coords[:, 5, 0]
    array([4.5 , 0.75])
    >>> gpuvec.ray_max(m, (3, 3), num=None, order=0)[0][5]
    array([7, 7, 8, 8, 8, 8])
    """
    xp = None if is_dask_array(image) else get_namespace(image)  # a dask image is validated below, never computed
    try:
        image = image if xp is None else xp.asarray(image)
    except ValueError as exc:  # a ragged nested list
        raise ValueError(
            f"image must be a rectangular array; got a {type(image).__name__} numpy cannot make one of ({exc})"
        ) from None
    if xp is None:  # a dask image: numpy or cupy chunks of known sizes, before anything reads its dtype or shape
        from gpuvec._core.dask import check_known_shape, chunk_namespace

        chunk_namespace(image, "image")
        check_known_shape(image, "image")
    if image.dtype.kind not in "iuf" or image.dtype == np.float16 or image.dtype.itemsize > 8:
        msg = f"image must have an integer, float32 or float64 dtype; got {image.dtype}"
        raise TypeError(msg)
    if not image.dtype.isnative:  # big-endian data (FITS, np.fromfile('>f4')): results in native order, as scipy's
        image = image.astype(image.dtype.newbyteorder("="))
    if channel_axis is not None:
        channel_axis = check_int("channel_axis", channel_axis, minimum=-image.ndim, maximum=image.ndim - 1) % image.ndim
    spatial = image.ndim - (channel_axis is not None)
    if (
        isinstance(origin, (str, bytes, Mapping, Set))
        or not hasattr(origin, "__len__")
        or getattr(origin, "ndim", 1) == 0
    ):
        msg = f"origin must be a sequence of {spatial} finite numbers, one per spatial axis; got {origin!r}"
        raise TypeError(msg)
    if len(origin) != spatial or spatial < 1:
        msg = (
            f"origin must have one coordinate per spatial axis of image: image has shape {image.shape}"
            f"{f' with channel_axis={channel_axis}' if channel_axis is not None else ''} ({spatial} spatial axes), "
            f"origin has {len(origin)} values: {origin!r}"
        )
        raise ValueError(msg)
    origin = tuple(check_real(f"origin[{i}]", v) for i, v in enumerate(origin))
    if num is not None:
        num = check_int("num", num, minimum=2, maximum=NUM_LIMIT)
    order = check_int("order", order, minimum=0, maximum=5)
    return_coords = check_bool("return_coords", return_coords)
    check_choice("mode", mode, MODES)
    cval = check_real("cval", cval, finite=image.dtype.kind != "f")
    if 0 in image.shape:
        msg = f"image must have at least one element along every axis; got shape {image.shape}"
        raise ValueError(msg)
    shape = tuple(n for d, n in enumerate(image.shape) if d != channel_axis)
    channels = image.shape[channel_axis] if channel_axis is not None else 1
    if num is None:
        _check_dense_cost(shape, origin, channels)
    else:
        _check_fixed_cost(shape, num, channels)
    if xp is None:  # lazy: dask is imported only for dask inputs
        from gpuvec.rays import _dask as _dask_rays

        return _dask_rays.ray_max(image, origin, num, order, mode, cval, channel_axis, return_coords)

    if channel_axis is not None:
        window = _dispatch.ray_max_window
        channels = [
            window(xp.take(image, c, axis=channel_axis), origin, num, order, mode, cval, return_coords)
            for c in range(image.shape[channel_axis])
        ]
        out = [xp.stack([r[i] for r in channels], axis=channel_axis) for i in (0, 1)]
        if return_coords:  # coords keep their leading axis of spatial dimensions
            out.append(xp.stack([r[2] for r in channels], axis=channel_axis + 1))
        return tuple(out)
    return _dispatch.ray_max_window(image, origin, num, order, mode, cval, return_coords)


def _check_fixed_cost(shape: tuple[int, ...], num: int, channels: int) -> None:
    """Refuse a fixed num whose samples (cells x num) pass DENSE_SAMPLE_LIMIT, or whose per-axis tables
    (num entries per cell of every axis) pass TABLE_LIMIT, before any work."""
    samples = channels * math.prod(shape) * num
    tables = num * sum(shape)
    if samples > DENSE_SAMPLE_LIMIT or tables > TABLE_LIMIT:
        msg = (
            f"num={num} over an image of shape {shape} would take {samples:.2g} samples and per-axis tables of "
            f"{tables:.2g} entries, more than gpuvec runs in one call ({DENSE_SAMPLE_LIMIT:.2g} samples, "
            f"{TABLE_LIMIT:.2g} table entries); a ray crosses at most {max(shape)} pixels per axis: pass a smaller num"
        )
        raise ValueError(msg)


def _check_dense_cost(shape: tuple[int, ...], origin: tuple[float, ...], channels: int) -> None:
    """Refuse dense rays that would take more than DENSE_SAMPLE_LIMIT samples, before any work."""
    # sum over cells of L(x) + 1, L(x) = ceil(max_d |origin[d] - x[d]|), on a grid of at most ~1e6 cells
    axes = [np.unique(np.linspace(0, n - 1, min(n, int(1e6 ** (1 / len(shape)))), dtype=np.int64)) for n in shape]
    lengths = np.zeros(())
    for d, (a, o) in enumerate(zip(axes, origin)):
        lengths = np.maximum(lengths, np.abs(o - a.astype(float)).reshape((-1,) + (1,) * (len(shape) - 1 - d)))
    samples = channels * math.prod(shape) * float(np.mean(np.ceil(lengths) + 1))
    if samples > DENSE_SAMPLE_LIMIT:
        msg = (
            f"num=None (dense rays) from origin {origin} over an image of shape {shape} would take about "
            f"{samples:.2g} samples (one per pixel each ray crosses), more than the {DENSE_SAMPLE_LIMIT:.2g} "
            "gpuvec runs in one call (minutes of work); pass a fixed num, or an origin nearer the image"
        )
        raise ValueError(msg)
