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
