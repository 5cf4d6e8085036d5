"""ray_max on dask images and volumes: one task per output block, one input box per sample index.

For a fixed ``num``, sample ``k`` of the cells of an output block lies in the
block shrunk toward the origin by ``1 - t_k``: each block needs ``num`` small
input boxes, not the bounding box of all its samples (that one reaches the
origin from every block: about 8x the image in all at ``num=5``, against under
2x for the per-k boxes). The boxes are read off the exact per-axis tables
(:func:`gpuvec.rays._rules.axis_table`, the indices every implementation
uses), never from an analytic shrink, which is one cell short in about 1 of
850 cases. For ``mode='constant'`` only the samples inside the image count (the
others are ``cval`` and read nothing).

The graph (dask-image's ``affine_transform`` shape): for every output block
and every ``k``, the box is cut from the input chunks it overlaps (a
``getitem`` task per partly covered chunk, the chunk itself where it is
covered whole), and one task per block (:func:`_block`) assembles each box,
computes step ``k``'s samples from it and folds them into the running max.
Every index and weight is the whole image's (global cells, global clamping,
global ``inside`` flags), shifted by the box's offset, so the result is
bit-identical to the in-memory call. The per-k step runs numba's
``streaming_tables`` on tables of one row (2-D numpy chunks, where the
in-memory call would take numba) or a namespace-generic gather (volumes,
cupy chunks, ``GPUVEC_JIT=0``) that follows the same rules of
:mod:`gpuvec.rays._rules`.
"""

from __future__ import annotations

import functools
import itertools
import math
import operator
import types
from collections.abc import Mapping
from typing import Any

import numpy as np

from gpuvec._core.dask import check_known_shape, chunk_namespace, meta_of, require_dask
from gpuvec._core.namespace import get_namespace
from gpuvec.rays._dispatch import select
from gpuvec.rays._rules import (
    STREAMING_MODES,
    arg_dtype,
    axis_positions,
    axis_table,
    cast_rule,
    cast_value,
    read_range,
    to_dtype,
)

__all__ = ["box_plan", "ray_max", "read_ratios"]


# --------------------------------------------------------------------------- the public entry


def ray_max(
    image: Any,
    origin: tuple[float, ...],
    num: int | None,
    order: int,
    mode: str,
    cval: float,
    channel_axis: int | None,
    return_coords: bool,
) -> tuple[Any, ...]:
    """:func:`gpuvec.ray_max` on a dask image whose arguments ``gpuvec.ray_max`` has checked (its lazy hook calls this).

    :func:`gpuvec.rays._dispatch.select`, the one place that picks an
    implementation, is called by each task (so the worker's ``GPUVEC_JIT`` and numba
    decide, as in memory) and runs numba's loop per sample index where it picks
    numba, the namespace-generic step otherwise.
    """
    da = require_dask()
    xp = chunk_namespace(image, "image")
    check_known_shape(image, "image")
    if num is None or order > 1 or mode not in STREAMING_MODES:
        msg = (
            "ray_max on a dask image runs order 0 or 1 with mode 'nearest' or 'constant' and a fixed num; got "
            f"num={num}, order={order}, mode={mode!r}. Dense rays (num=None) read the whole region between each block "
            "and the origin, order > 1 needs a spline prefilter along whole axes, and the other modes wrap around the "
            "image; if the image fits in memory, call ray_max on image.compute()"
        )
        raise ValueError(msg)
    if channel_axis is None:
        return _ray_max_spatial(da, xp, image, origin, num, order, mode, cval, return_coords)
    results = []
    for c in range(image.shape[channel_axis]):
        channel = image[tuple(c if d == channel_axis else slice(None) for d in range(image.ndim))]
        results.append(_ray_max_spatial(da, xp, channel, origin, num, order, mode, cval, return_coords))
    out = [da.stack([r[i] for r in results], axis=channel_axis) for i in (0, 1)]
    if return_coords:  # coords keep their leading axis of spatial dimensions
        out.append(da.stack([r[2] for r in results], axis=channel_axis + 1))
    return tuple(out)


# --------------------------------------------------------------------------- planning


def box_plan(
    shape: tuple[int, ...],
    chunks: tuple[tuple[int, ...], ...],
    origin: tuple[float, ...],
    num: int,
    order: int,
    mode: str,
) -> list[Any]:
    """The input box of every (block, sample index), axis by axis, from the exact axis tables.

    Returns
    -------
    plan : list of int64 arrays, one per axis, shape (blocks along the axis, num, 2)
        ``plan[d][b, k] = (lo, hi)``: sample ``k`` of the cells of block ``b`` (along axis
        d) reads full-grid indices ``lo <= i < hi`` on axis d; ``lo == hi`` where it reads
        nothing (every such sample is outside the image, for ``mode='constant'``).
    """
    plan = []
    for n, c, o in zip(shape, chunks, origin):
        lo_all, hi_all = read_range(axis_table(n, range(n), o, num, order, mode), n)
        bounds = np.concatenate([[0], np.cumsum(c)])
        box = np.zeros((len(c), num, 2), np.int64)
        for b in range(len(c)):
            if c[b] == 0:
                continue
            lo = lo_all[:, bounds[b] : bounds[b + 1]].min(axis=1)
            hi = hi_all[:, bounds[b] : bounds[b + 1]].max(axis=1) + 1
            box[b, :, 0] = np.where(lo < hi, lo, 0)
            box[b, :, 1] = np.where(lo < hi, hi, 0)
        plan.append(box)
    return plan


def read_ratios(
    shape: tuple[int, ...],
    chunks: tuple[tuple[int, ...], ...],
    origin: tuple[float, ...],
    num: int,
    order: int = 1,
    mode: str = "nearest",
) -> Any:
    """Per output block, the input cells its ``num`` boxes read over its own cells (float64, the block grid's shape)."""
    plan = box_plan(shape, chunks, origin, num, order, mode)
    ratios = np.empty(tuple(len(c) for c in chunks))
    for idx in np.ndindex(*ratios.shape):
        area = math.prod(c[b] for c, b in zip(chunks, idx))
        read = sum(math.prod(int(p[b, k, 1] - p[b, k, 0]) for p, b in zip(plan, idx)) for k in range(num))
        ratios[idx] = read / area if area else 0.0
    return ratios


# --------------------------------------------------------------------------- the graph


def _ray_max_spatial(
    da: types.ModuleType,
    xp: types.ModuleType,
    image: Any,
    origin: tuple[float, ...],
    num: int,
    order: int,
    mode: str,
    cval: float,
    return_coords: bool,
) -> tuple[Any, ...]:
    from dask._task_spec import Task, TaskRef, parse_input
    from dask.highlevelgraph import HighLevelGraph

    shape, chunks, nd = tuple(image.shape), image.chunks, image.ndim
    plan = box_plan(shape, chunks, origin, num, order, mode)
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in chunks]
    token = da.core.tokenize(image, origin, num, order, mode, cval, return_coords)
    block_name = f"gpuvec-ray_max-block-{token}"
    names = [f"gpuvec-ray_max-max-{token}", f"gpuvec-ray_max-argmax-{token}"] + (
        [f"gpuvec-ray_max-coords-{token}"] if return_coords else []
    )
    samples = math.prod(shape) * num
    layer: dict[Any, Any] = {}
    outputs: list[dict[Any, Any]] = [{} for _ in names]
    for flat, b in enumerate(np.ndindex(*image.numblocks)):
        start = tuple(int(s[i]) for s, i in zip(starts, b))
        stop = tuple(int(s[i + 1]) for s, i in zip(starts, b))
        key = (block_name,) + b
        if any(hi == lo for lo, hi in zip(start, stop)):  # an empty chunk (compute_chunk_sizes after a mask)
            layer[key] = Task(key, _empty_block, TaskRef((image.name,) + b), num, return_coords)
            for i, (name, out) in enumerate(zip(names, outputs)):
                okey = (name,) + ((0,) if i == 2 else ()) + b
                out[okey] = Task(okey, operator.getitem, TaskRef(key), i)
            continue
        parts = [
            _box_parts(
                image,
                starts,
                [(int(p[i, k, 0]), int(p[i, k, 1])) for p, i in zip(plan, b)],
                layer,
                (f"{block_name}-box", flat, k),
            )
            for k in range(num)
        ]
        layer[key] = Task(
            key,
            _block,
            parse_input(parts),
            shape,
            start,
            stop,
            origin,
            num,
            order,
            mode,
            cval,
            return_coords,
            samples,
        )
        for i, (name, out) in enumerate(zip(names, outputs)):
            okey = (name,) + ((0,) if i == 2 else ()) + b
            out[okey] = Task(okey, operator.getitem, TaskRef(key), i)
    graph = HighLevelGraph.from_collections(block_name, layer, dependencies=[image])
    layers: dict[str, Mapping[Any, Any]] = dict(graph.layers)  # Layers, and the plain dict graphs added here
    deps = dict(graph.dependencies)
    for name, out in zip(names, outputs):
        layers[name], deps[name] = out, {block_name}
    graph = HighLevelGraph(layers, deps)
    dtypes = [image.dtype, np.dtype(arg_dtype(num)), np.dtype(np.float64)]
    result = [
        da.Array(graph, names[0], chunks, meta=meta_of(xp, nd, dtypes[0])),
        da.Array(graph, names[1], chunks, meta=meta_of(xp, nd, dtypes[1])),
    ]
    if return_coords:
        result.append(da.Array(graph, names[2], ((nd,),) + chunks, meta=meta_of(xp, nd + 1, dtypes[2])))
    return tuple(result)


# --------------------------------------------------------------------------- one block


def _box_parts(
    image: Any, starts: list[Any], box: list[tuple[int, int]], layer: dict[Any, Any], key_prefix: tuple[Any, ...]
) -> tuple[list[Any], tuple[Any, ...], tuple[int, ...], tuple[int, ...]] | None:
    """``None`` if box is empty (every sample of the block outside the image: cval), else ``(pieces, places,
    box_start, box_shape)``: the chunks (whole, or ``getitem`` tasks added to ``layer``) that tile the box."""
    from dask._task_spec import Task, TaskRef

    if any(lo >= hi for lo, hi in box):
        return None
    chunks = image.chunks
    ranges = [
        [j for j in range(len(c)) if s[j] < hi and s[j + 1] > lo and c[j] > 0]
        for c, s, (lo, hi) in zip(chunks, starts, box)
    ]
    pieces, places = [], []
    for p, cidx in enumerate(itertools.product(*ranges)):
        spans = [
            (max(lo, int(s[j])), min(hi, int(s[j + 1])), int(s[j]), lo) for s, j, (lo, hi) in zip(starts, cidx, box)
        ]
        local = tuple(slice(a - s0, z - s0) for a, z, s0, _ in spans)
        places.append(tuple(slice(a - lo, z - lo) for a, z, _, lo in spans))
        source = (image.name,) + cidx
        if all(sl.start == 0 and sl.stop == c[j] for sl, c, j in zip(local, chunks, cidx)):
            pieces.append(TaskRef(source))  # the whole chunk
        else:
            box_key = (*key_prefix, p)
            layer[box_key] = Task(box_key, operator.getitem, TaskRef(source), local)
            pieces.append(TaskRef(box_key))
    return pieces, tuple(places), tuple(lo for lo, _ in box), tuple(hi - lo for lo, hi in box)


def _empty_block(chunk: Any, num: int, return_coords: bool) -> tuple[Any, ...]:
    """The outputs of a block without cells: empty arrays of the chunk's namespace and the outputs' dtypes."""
    xp = get_namespace(chunk)
    out = (xp.empty(chunk.shape, dtype=chunk.dtype), xp.empty(chunk.shape, dtype=arg_dtype(num)))
    return (*out, xp.empty((chunk.ndim, *chunk.shape), dtype=xp.float64)) if return_coords else out


def _block(
    parts: list[Any],
    shape: tuple[int, ...],
    start: tuple[int, ...],
    stop: tuple[int, ...],
    origin: tuple[float, ...],
    num: int,
    order: int,
    mode: str,
    cval: float,
    return_coords: bool,
    samples: int,
) -> tuple[Any, ...]:
    """The max and first argmax (and coords) of the cells ``start <= x < stop`` of the full grid.

    ``parts[k]`` is ``None`` (every sample k of the block is outside: cval) or
    ``(pieces, places, box_start, box_shape)``: the input chunks (or parts of
    them) that tile box k, and where each goes.
    """
    from gpuvec.rays._rules import Window, axis_tables

    regions = [None if p is None else (_assemble(*p), p[2]) for p in parts]
    first = regions[0]
    assert first is not None  # sample 0 is the cell itself: always read
    region0 = first[0]
    xp = get_namespace(region0)
    dtype, nd = region0.dtype, len(shape)
    out_shape = tuple(b - a for a, b in zip(start, stop))
    adt = arg_dtype(num)
    # full-grid indices (offset 0): each step subtracts its own box's start
    tabs = axis_tables(Window(tuple(shape), tuple(start), tuple(stop), (0,) * nd), origin, num, order, mode)
    is_int = dtype.kind in "iu"
    work = np.dtype(np.float64) if is_int else dtype
    cval_sample = cast_value(cval, dtype)
    impl = select(xp, nd, num, order, mode, samples=samples, count=False)  # the in-memory call's choice
    step = functools.partial(_step_numba, impl) if impl.__name__ == "gpuvec.rays._numba" else _step_xp
    # ndarray.max's NaN rule costs two more passes per step; only NaN, inf (inf * 0) or a NaN cval need it.
    nan_aware = not is_int and not (math.isfinite(cval) and all(bool(xp.isfinite(r[0]).all()) for r in regions if r))
    best: Any = None
    arg: Any = None
    better: Any = None
    with np.errstate(invalid="ignore", over="ignore"):  # inf * 0 is NaN, silently
        for k, region in enumerate(regions):
            if region is None:
                cur = xp.full(out_shape, cval_sample, dtype=work)
            else:
                cur = step(xp, region[0], region[1], tabs, k, order, mode, cval, dtype, work, cval_sample, adt)
            if k == 0:
                best, arg, better = cur.copy(), xp.zeros(out_shape, adt), xp.empty(out_shape, bool)
                continue
            xp.greater(cur, best, out=better)
            if nan_aware:  # the first NaN wins and stays
                better |= xp.isnan(cur) & ~xp.isnan(best)
            xp.maximum(best, cur, out=best)  # NaN propagates, as in ndarray.max
            # arg < k everywhere, so max(arg, k * better) sets exactly the improved cells to k (branch-free)
            xp.maximum(arg, better * xp.asarray(k, dtype=adt), out=arg)
    best = to_dtype(best, dtype) if is_int else best + 0.0  # saturating for 64-bit ints; scipy's sums never give -0.0
    if not return_coords:
        return best, arg
    coords = xp.empty((nd,) + out_shape)
    for d, (a, b, o) in enumerate(zip(start, stop, origin)):
        along = xp.arange(b - a).reshape((b - a,) + (1,) * (nd - 1 - d))
        coords[d] = axis_positions(xp, range(a, b), o, num)[arg.astype(xp.intp), along]
    return best, arg, coords


def _assemble(
    pieces: list[Any], places: tuple[Any, ...], box_start: tuple[int, ...], box_shape: tuple[int, ...]
) -> Any:
    """Box k as one array, from the chunk pieces that tile it."""
    if len(pieces) == 1:
        return pieces[0]
    xp = get_namespace(pieces[0])
    region = xp.empty(box_shape, pieces[0].dtype)
    for piece, place in zip(pieces, places):
        region[place] = piece
    return region


def _step_numba(
    numba_impl: types.ModuleType,
    xp: types.ModuleType,
    region: Any,
    box_start: tuple[int, ...],
    tabs: list[dict[str, Any]],
    k: int,
    order: int,
    mode: str,
    cval: float,
    dtype: Any,
    work: Any,
    cval_sample: Any,
    adt: Any,
) -> Any:
    """Step k's samples as the image dtype gives them back: numba's loop on one-row tables."""

    def axis(tab: dict[str, Any], off: int) -> dict[str, Any]:  # step k's row of the table, indices into the region
        row: dict[str, Any] = {name: None if a is None else a[k : k + 1] for name, a in tab.items()}
        row["i0"] = row["i0"] - off
        if "i1" in row:
            row["i1"] = row["i1"] - off
        return row

    out_shape = (tabs[0]["i0"].shape[1], tabs[1]["i0"].shape[1])
    out, arg = np.empty(out_shape, dtype), np.empty(out_shape, adt)
    ytab, xtab = axis(tabs[0], box_start[0]), axis(tabs[1], box_start[1])
    numba_impl.streaming_tables(region, ytab, xtab, order, mode, cval, out, arg, whole=False)  # one sample index
    return out.astype(work, copy=False)


def _step_xp(
    xp: types.ModuleType,
    region: Any,
    box_start: tuple[int, ...],
    tabs: list[dict[str, Any]],
    k: int,
    order: int,
    mode: str,
    cval: float,
    dtype: Any,
    work: Any,
    cval_sample: Any,
    adt: Any,
) -> Any:
    """Step k's samples as the image dtype gives them back, on either namespace (the rules of rays/_rules.py).

    The corner terms ``((m * w_0) * w_1) * ...`` are summed in C order of the corners from
    0.0 in float64, each operation its own array operation (so nothing is fused into a
    multiply-add); integer samples are rounded half away from zero and clipped. As in
    ``rays/_numpy.py``, whole slabs are taken along one axis and scaled by its weight before
    the next axis is taken: the same products, with fewer multiplications.
    """
    nd = len(tabs)
    corners = (0,) if order == 0 else (0, 1)
    index: list[list[Any]] = []
    weight: list[Any] = []  # per axis: its corners' weights, or None for order 0
    for d, (tab, off) in enumerate(zip(tabs, box_start)):
        shape_d = (-1,) + (1,) * (nd - 1 - d)
        # Indices of samples outside (mode 'constant') may fall outside the box: clipped, then masked below.
        index.append([xp.asarray(np.clip(tab[f"i{j}"][k] - off, 0, region.shape[d] - 1)) for j in corners])
        weight.append([xp.asarray(tab[f"w{j}"][k]).reshape(shape_d) for j in corners] if order else None)
    out_shape = tuple(t["i0"].shape[1] for t in tabs)
    acc = xp.zeros(out_shape)

    def add_terms(src: Any, d: int) -> None:
        for j in range(len(corners)):
            taken = xp.take(src, index[d][j], axis=d)
            part = taken * weight[d][j] if order else taken.astype(xp.float64)
            if d == nd - 1:
                xp.add(acc, part, out=acc)
            else:
                add_terms(part, d + 1)

    add_terms(region, 0)
    kind, lo, hi = cast_rule(dtype)
    if kind == 0:
        cur = acc.astype(dtype)
    else:
        rounded = xp.where(acc > 0, acc + 0.5, acc - 0.5 if kind == 1 else 0.0)
        cur = xp.clip(xp.trunc(rounded), lo, hi)
    if tabs[0]["inside"] is not None:
        inside = xp.ones(out_shape, bool)
        for d, tab in enumerate(tabs):
            inside &= xp.asarray(tab["inside"][k]).reshape((-1,) + (1,) * (nd - 1 - d))
        cur = xp.where(inside, cur, cval_sample)  # a Python float: cur's dtype is kept
    return cur.astype(work, copy=False)
