"""The samplers on dask arrays: reproducible for the same chunks, one spawned generator per block.

Runs on the synchronous scheduler (the ``sync`` fixture of tests/conftest.py). The end-to-end runs on real
clusters are in tests/core/test_dask.py.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpuvec
from tests.helpers import assert_same as _same

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


def test_normal_reproducible_for_the_same_chunks(sync):
    loc = da.from_array(np.arange(30.0).reshape(10, 3), chunks=(4, 3))
    draw = lambda seed, chunks: gpuvec.random.default_rng(seed, backend="numpy").normal(  # noqa: E731
        loc.rechunk(chunks), 2.0, size=(5, 10, 3), dtype=np.float32
    )
    a = draw(7, (4, 3))
    assert a.shape == (5, 10, 3) and a.dtype == np.float32 and a.chunks[1:] == ((4, 4, 2), (3,))
    _same(a.compute(), draw(7, (4, 3)).compute())
    assert not np.array_equal(a.compute(), draw(8, (4, 3)).compute())
    assert not np.array_equal(a.compute(), draw(7, (5, 3)).compute())  # the numbers depend on the chunking
    rng = gpuvec.random.default_rng(7, backend="numpy")
    assert not np.array_equal(rng.normal(loc, 1.0).compute(), rng.normal(loc, 1.0).compute())  # the stream moves on


def test_normal_blocks_are_their_own_spawned_generators(sync, monkeypatch):
    from gpuvec.random import _dask

    root = np.random.SeedSequence(1234)
    monkeypatch.setattr(_dask, "_root_seed", lambda gen: root)
    loc = da.from_array(np.linspace(-1, 1, 12), chunks=5)
    got = gpuvec.random.default_rng(0, backend="numpy").normal(loc, 0.5).compute()
    children = root.spawn(3)
    for i, sl in enumerate([slice(0, 5), slice(5, 10), slice(10, 12)]):
        want = gpuvec.random.Generator(children[i], "numpy").normal(np.linspace(-1, 1, 12)[sl], 0.5)
        _same(want, got[sl])


def test_normal_statistics_and_refusals(sync):
    rng = gpuvec.random.default_rng(3, backend="numpy")
    scale = da.from_array(np.array([1.0, 3.0]), chunks=1)
    x = rng.normal(0.0, scale, size=(200_000, 2)).compute()
    assert np.allclose(x.std(axis=0), [1.0, 3.0], rtol=0.02)
    with pytest.raises(TypeError, match="out cannot be given"):
        rng.normal(scale, 1.0, out=np.empty(2))
    with pytest.raises(ValueError, match="broadcast"):
        rng.normal(scale, np.ones(3))
    with pytest.raises(ValueError, match="scale must be non-negative"):
        rng.normal(0.0, -scale).compute()


def test_multivariate_normal_batch(sync):
    rng = gpuvec.random.default_rng(5, backend="numpy")
    B, d = 9, 2
    mean = da.from_array(np.arange(B * d, dtype=float).reshape(B, d), chunks=(4, 1))  # d is made one chunk
    cov = da.from_array(np.stack([np.eye(d) * (i + 1) for i in range(B)]), chunks=(3, 2, 2))
    x = rng.multivariate_normal(mean, cov, size=50_000)
    assert x.shape == (50_000, B, d) and x.chunks[1] == (4, 4, 1) and x.chunks[2] == (d,)
    v = x.compute()
    assert np.allclose(v.mean(axis=0), mean.compute(), atol=0.1)
    assert np.allclose(v.var(axis=0)[:, 0], np.arange(1, B + 1), rtol=0.05)
    again = gpuvec.random.default_rng(5, backend="numpy").multivariate_normal(mean, cov, size=50_000)
    _same(v, again.compute())
    shared = rng.multivariate_normal(mean, np.eye(d), size=3)  # one in-memory cov for the whole batch
    assert shared.shape == (3, B, d) and shared.compute().shape == (3, B, d)


def test_multivariate_normal_invalid_cov_names_the_block(sync):
    rng = gpuvec.random.default_rng(5, backend="numpy")
    cov = np.stack([np.eye(2)] * 9)
    cov[6] = [[1, 2], [2, 1]]
    mean = da.zeros((9, 2), chunks=(4, 2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rng.multivariate_normal(mean, da.from_array(cov, chunks=(4, 2, 2)), size=2).compute()
    assert any("cov[2]" in str(w.message) and "starting at batch index [4]" in str(w.message) for w in caught)
    with pytest.raises(ValueError, match="starting at batch index \\[4\\]"):
        rng.multivariate_normal(mean, da.from_array(cov, chunks=(4, 2, 2)), size=2, check_valid="raise").compute()
    with pytest.raises(TypeError, match="must not be complex"):
        rng.multivariate_normal(mean.astype(complex), cov)


def test_edge_chunks_and_empty_batches(sync, edge_chunked):
    rng = gpuvec.random.default_rng(2, backend="numpy")
    loc = np.arange(12.0).reshape(6, 2)
    x = rng.normal(edge_chunked(loc), 1e-9, size=(3, 6, 2)).compute()
    assert x.shape == (3, 6, 2)
    np.testing.assert_allclose(x, np.broadcast_to(loc, (3, 6, 2)), atol=1e-6)
    cov = np.stack([np.eye(2) * (i + 1) for i in range(6)])
    y = rng.multivariate_normal(edge_chunked(loc), edge_chunked(cov), size=4).compute()
    assert y.shape == (4, 6, 2) and np.isfinite(y).all()
    for size in [(4, 0, 3), (0,), (0, 5)]:  # nothing to draw, as in memory
        empty = da.zeros((0, 3), chunks=1) if size == (4, 0, 3) else 0.0
        got = rng.normal(empty, 1.0, size=size) if size == (4, 0, 3) else rng.normal(da.zeros(()), 1.0, size=size)
        assert got.compute().shape == rng.normal(0.0, 1.0, size=size).shape == size
    got = rng.multivariate_normal(da.zeros((0, 2)), da.zeros((0, 2, 2)) + np.eye(2), size=5).compute()
    assert got.shape == (5, 0, 2)


def test_explicit_cholesky_raises_linalgerror_from_the_block(sync):
    cov = da.from_array(np.stack([np.eye(2), [[1.0, 2.0], [2.0, 1.0]]]), chunks=1)
    x = gpuvec.random.default_rng(0, backend="numpy").multivariate_normal(np.zeros(2), cov, method="cholesky")
    with pytest.raises(np.linalg.LinAlgError, match=r"cov\[0\] is not positive definite.*batch index \[1\]"):
        x.compute()


def test_chunks_of_another_library_are_a_type_error():
    xps = pytest.importorskip("array_api_strict")
    loc = da.from_array(np.zeros((4, 2)), chunks=2).map_blocks(xps.asarray, meta=xps.asarray(np.ones((0, 0))))
    rng = gpuvec.random.default_rng(0, backend="numpy")
    for call in (lambda: rng.normal(loc, 1.0), lambda: rng.multivariate_normal(loc, np.eye(2))):
        with pytest.raises(TypeError, match=r"must be a dask array of numpy or cupy chunks; its chunks are array_api"):
            call()
