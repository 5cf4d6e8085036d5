"""Dask in, dask out for sampling: one seeded task per output block.

Imported only when :mod:`gpuvec.random`'s ``normal`` or ``multivariate_normal``
gets a dask argument or ``chunks=``. Block ``i`` draws from a generator seeded
with child ``i`` of a ``numpy.random.SeedSequence`` drawn from the caller's
generator, as ``dask.array.random`` does, so the numbers depend on the chunking
and not on the scheduler. Each task runs with BLAS at one thread.
"""

from __future__ import annotations

import contextlib
import types
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np

from gpuvec._core.checks import check_mvn_shapes, check_normal_shapes
from gpuvec._core.dask import check_known_shape, chunk_namespace, meta_of, require_dask
from gpuvec._core.namespace import is_cupy_array, is_dask_array
from gpuvec._core.threads import blas_limited

__all__ = ["multivariate_normal", "normal"]


def _as_dask(da: types.ModuleType, x: Any, name: str, xp: types.ModuleType, complex_msg: str | None = None) -> Any:
    """A dask array of real numbers (numbers and in-memory arrays become one-chunk dask arrays)."""
    if not is_dask_array(x):
        if is_cupy_array(x) != (xp.__name__ == "cupy") and bool(getattr(x, "ndim", 0)):
            where = "cupy" if is_cupy_array(x) else "numpy"
            msg = f"{name} is a {where} array but the dask arrays of this call have {xp.__name__} chunks; move it first"
            raise TypeError(msg)
        x = da.from_array(xp.asarray(x), chunks=-1)
    else:
        chunks_xp = chunk_namespace(x, name)
        if chunks_xp is not xp:
            msg = (
                f"{name} has {chunks_xp.__name__} chunks but this generator is on {xp.__name__}; "
                f"make the generator with default_rng(..., backend={chunks_xp.__name__!r})"
            )
            raise TypeError(msg)
    if x.dtype.kind == "c":
        msg = (complex_msg or f"{name} must not be complex") + f"; got {name} of dtype {x.dtype}"
        raise TypeError(msg)
    if x.dtype.kind not in "biuf":
        msg = f"{name} must be real numbers; got an array of dtype {x.dtype}"
        raise TypeError(msg)
    check_known_shape(x, name)
    return x


def _root_seed(gen: Any) -> np.random.SeedSequence:
    """A SeedSequence drawn from ``gen``'s stream: the same seed gives the same graph; the stream moves on."""
    from gpuvec._core.namespace import to_numpy

    words = to_numpy(gen._rng.integers(0, 2**62, size=4, dtype=np.int64))
    return np.random.SeedSequence([int(w) for w in words])


def _child(root_entropy: Any, index: int) -> np.random.SeedSequence:
    """``SeedSequence(root_entropy).spawn(n)[index]`` for any n > index, without spawning the others."""
    return np.random.SeedSequence(root_entropy, spawn_key=(index,))


def _broadcast_plan(
    da: types.ModuleType, arrays: list[tuple[Any, int]], batch: tuple[int, ...], core: tuple[int, ...], dtype: np.dtype
) -> tuple[list[Any], tuple[tuple[int, ...], ...]]:
    """Output chunks over ``batch + core`` and the arrays rechunked to them.

    Each array ``(x, core_ndim)`` has its batch axes right-aligned with ``batch``.
    A batch axis takes the chunks of the first array that has it at full size;
    axes no array has at full size (those of ``size``) get dask's "auto" chunks.
    """
    known: list[Any] = ["auto"] * len(batch)
    for x, core_ndim in arrays:
        xb = x.ndim - core_ndim
        for j in range(xb):
            out_axis = len(batch) - xb + j
            if known[out_axis] == "auto" and x.shape[j] == batch[out_axis] and batch[out_axis] != 1:
                known[out_axis] = x.chunks[j]
    if 0 in batch + core:  # nothing to draw: one chunk per axis (dask's "auto" divides by the size)
        known = [(n,) if k == "auto" else k for k, n in zip(known, batch)]
    chunks = da.core.normalize_chunks(tuple(known) + tuple((n,) for n in core), batch + core, dtype=dtype)
    out = []
    for x, core_ndim in arrays:
        xb = x.ndim - core_ndim
        want = {}
        for j in range(xb):
            out_axis = len(batch) - xb + j
            want[j] = chunks[out_axis] if x.shape[j] == batch[out_axis] else -1
        for j in range(xb, x.ndim):
            want[j] = -1
        out.append(x.rechunk(want) if want else x)
    return out, chunks


def _seeded_graph(
    da: types.ModuleType,
    name: str,
    func: Any,
    arrays: list[tuple[Any, int]],
    chunks: tuple[tuple[int, ...], ...],
    n_batch: int,
    root: np.random.SeedSequence,
    meta: Any,
    **kwargs: Any,
) -> Any:
    """One task per output block: ``func(*array_blocks, seed=child_i, block_shape, batch_start, **kwargs)``."""
    from dask._task_spec import Task, TaskRef
    from dask.highlevelgraph import HighLevelGraph

    numblocks = tuple(len(c) for c in chunks)
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in chunks]
    sizes = [sum(c) for c in chunks]
    layer = {}
    for i, idx in enumerate(np.ndindex(*numblocks)):
        refs = []
        for x, core_ndim in arrays:
            xb = x.ndim - core_ndim
            # an axis at full size has the output's chunks; one of size 1 broadcasts inside the task
            bidx = tuple(idx[n_batch - xb + j] if x.shape[j] == sizes[n_batch - xb + j] else 0 for j in range(xb))
            refs.append(TaskRef((x.name,) + bidx + (0,) * core_ndim))
        shape = tuple(c[b] for c, b in zip(chunks, idx))
        batch_start = tuple(int(s[b]) for s, b in zip(starts[:n_batch], idx[:n_batch]))
        key = (name,) + idx
        layer[key] = Task(key, func, *refs, _child(root.entropy, i), shape, batch_start, **kwargs)
    graph = HighLevelGraph.from_collections(name, layer, dependencies=[x for x, _ in arrays])
    return da.Array(graph, name, chunks, meta=meta)


@contextlib.contextmanager
def _block_context(what: str, batch_start: tuple[int, ...]) -> Iterator[None]:
    """Errors and warnings of one block say where the block starts (their indices are the block's own)."""
    where = f"{what} block starting at batch index {list(batch_start)}; indices in this message are within the block"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        except ValueError as exc:  # LinAlgError (a ValueError) stays one
            raise type(exc)(f"{exc} ({where})") from None
    for w in caught:
        warnings.warn_explicit(f"{w.message} ({where})", w.category, w.filename, w.lineno)


def _normal_block(
    loc: Any,
    scale: Any,
    seed: Any,
    shape: tuple[int, ...],
    batch_start: tuple[int, ...],
    *,
    generator: type,
    backend: str,
    dtype: Any,
) -> Any:
    with blas_limited(always=True), _block_context("normal's", batch_start):
        return generator(seed, backend).normal(loc, scale, size=shape, dtype=dtype)


def normal(gen: Any, loc: Any, scale: Any, size: tuple[int, ...] | None, *, dtype: np.dtype, out: Any) -> Any:
    """``Generator.normal`` with dask loc/scale (size and dtype already checked): one seeded task per output block."""
    da = require_dask()
    if out is not None:
        msg = (
            "out cannot be given with dask loc or scale: the result is a lazy dask array; "
            "store it with dask.array.store or .to_zarr"
        )
        raise TypeError(msg)
    xp = gen.xp
    loc, scale = _as_dask(da, loc, "loc", xp), _as_dask(da, scale, "scale", xp)
    shape = check_normal_shapes(loc.shape, scale.shape, size)
    (loc, scale), chunks = _broadcast_plan(da, [(loc, 0), (scale, 0)], shape, (), dtype)
    root = _root_seed(gen)
    name = f"gpuvec-normal-{da.core.tokenize(loc, scale, root.entropy, chunks, dtype, gen.backend)}"
    return _seeded_graph(
        da,
        name,
        _normal_block,
        [(loc, 0), (scale, 0)],
        chunks,
        len(shape),
        root,
        meta_of(xp, len(shape), dtype),
        generator=type(gen),
        backend=gen.backend,
        dtype=dtype,
    )


def _mvn_block(
    mean: Any,
    cov: Any,
    seed: Any,
    shape: tuple[int, ...],
    batch_start: tuple[int, ...],
    *,
    n_size: int,
    generator: type,
    backend: str,
    **kwargs: Any,
) -> Any:
    with blas_limited(always=True), _block_context("multivariate_normal's", batch_start[n_size:]):
        return generator(seed, backend).multivariate_normal(mean, cov, size=shape[:n_size], **kwargs)


def _check_block(
    cov: Any, batch_start: tuple[int, ...], method: str | None, check_valid: str, tol: float
) -> list[tuple[str, str]]:
    """The validity check of one block of covariances: its warnings and error as ``(category, text)`` pairs."""
    from gpuvec._core.namespace import get_namespace
    from gpuvec.random import _xp

    out: list[tuple[str, str]] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            with blas_limited(always=True), _block_context("multivariate_normal's", batch_start):
                xp = get_namespace(cov)
                if bool(xp.isfinite(cov).all()):  # non-finite blocks raise when sampled, as in memory
                    _xp.cov_factor(xp, xp.asarray(cov, dtype=xp.float64), method or "auto", check_valid, tol)
        except ValueError as exc:
            out.append(("error", str(exc)))
    return out + [(w.category.__name__, str(w.message)) for w in caught]


def _check_covariances(da: types.ModuleType, cov: Any, method: str | None, check_valid: str, tol: float) -> None:
    """The validity check of every covariance, run now (one read of cov on the active scheduler), so that
    its warnings reach the caller wherever the tasks run (a process cluster's workers keep theirs)."""
    import dask

    from gpuvec._core.checks import warn_at_caller

    n_batch = cov.ndim - 2
    starts = [np.concatenate([[0], np.cumsum(c)]) for c in cov.chunks[:n_batch]]
    blocks = cov.to_delayed()
    tasks = [
        dask.delayed(_check_block, pure=True)(
            blocks[idx], tuple(int(s[i]) for s, i in zip(starts, idx[:n_batch])), method, check_valid, tol
        )
        for idx in np.ndindex(*blocks.shape)
    ]
    found = [item for items in dask.compute(*tasks) for item in items]
    errors = [text for category, text in found if category == "error"]
    if errors:
        raise ValueError(errors[0])
    for category, text in found:
        warn_at_caller(text, RuntimeWarning if category == "RuntimeWarning" else UserWarning)


def multivariate_normal(
    gen: Any,
    mean: Any,
    cov: Any,
    size: tuple[int, ...],
    check_valid: str,
    tol: float,
    *,
    method: str | None,
    dtype: np.dtype[Any],
) -> Any:
    """``Generator.multivariate_normal`` with dask mean/cov (the rest checked): a seeded task per output block."""
    da = require_dask()
    xp = gen.xp
    complex_msg = "mean and cov must not be complex"
    mean, cov = _as_dask(da, mean, "mean", xp, complex_msg), _as_dask(da, cov, "cov", xp, complex_msg)
    d, batch = check_mvn_shapes(tuple(mean.shape), tuple(cov.shape))
    out_batch = size + batch
    (mean, cov), chunks = _broadcast_plan(da, [(mean, 1), (cov, 2)], out_batch, (d,), dtype)
    if check_valid != "ignore" and method != "cholesky":  # numpy's 'cholesky' checks nothing
        _check_covariances(da, cov, method, check_valid, tol)
        check_valid = "ignore"  # told once, here: the tasks need not say it again
    root = _root_seed(gen)
    token = da.core.tokenize(mean, cov, root.entropy, chunks, dtype, method, check_valid, tol, gen.backend)
    name = f"gpuvec-multivariate_normal-{token}"
    return _seeded_graph(
        da,
        name,
        _mvn_block,
        [(mean, 1), (cov, 2)],
        chunks,
        len(out_batch),
        root,
        meta_of(xp, len(out_batch) + 1, dtype),
        n_size=len(size),
        generator=type(gen),
        backend=gen.backend,
        check_valid=check_valid,
        tol=tol,
        method=method,
        dtype=dtype,
    )
