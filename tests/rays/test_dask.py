"""ray_max on dask arrays: bit-identical to the in-memory call, lazily, reading only the chunks it needs.

Exactness runs on the synchronous scheduler (deterministic; the ``sync`` fixture of tests/conftest.py)
with odd and ragged chunks. The end-to-end runs on real clusters are in tests/core/test_dask.py.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpuvec
from tests.helpers import assert_same as _same
from tests.helpers import compute_sync as _compute
from tests.helpers import exploding_dask_array as _exploding
from tests.helpers import uniform_image as _image

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


CASES_2D = [  # shape, chunks, origin
    ((37, 29), (7, 11), (3.3, 20.0)),
    ((37, 29), ((10, 1, 20, 6), (29,)), (-5.0, 40.5)),  # ragged, a one-row chunk, origin outside
    ((31, 33), (31, 5), (12.0, 0.0)),  # origin on an edge, integer
    ((16, 16), (3, 16), (15.0, 15.0)),  # on a corner
]


@pytest.mark.parametrize("jit", ["0", "1"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint8, np.int16])
@pytest.mark.parametrize(("shape", "chunks", "origin"), CASES_2D)
def test_ray_max_2d_bit_identical_to_in_memory(sync, monkeypatch, jit, dtype, shape, chunks, origin):
    monkeypatch.setenv("GPUVEC_JIT", jit)  # '1': numba's loop per sample index in the tasks; '0': the generic step
    img = _image(shape, dtype, nan=dtype == np.float64)
    x = da.from_array(img, chunks=chunks)
    for order in (0, 1):
        for mode in ("nearest", "constant"):
            for num in (2, 5):
                want = gpuvec.ray_max(img, origin, num, order=order, mode=mode, cval=3.7, return_coords=True)
                got = gpuvec.ray_max(x, origin, num, order=order, mode=mode, cval=3.7, return_coords=True)
                assert [g.chunks for g in got[:2]] == [x.chunks] * 2
                for w, g in zip(want, _compute(*got)):
                    _same(w, g)


@pytest.mark.parametrize("dtype", [np.float32, np.uint16])
@pytest.mark.parametrize("mode", ["nearest", "constant"])
def test_ray_max_3d_volume_bit_identical(sync, dtype, mode):
    img = _image((13, 11, 9), dtype, seed=1)
    x = da.from_array(img, chunks=(5, (4, 7), 3))
    for origin in [(6.5, 2.0, 4.25), (-3.0, 12.0, 20.5)]:
        for order in (0, 1):
            want = gpuvec.ray_max(img, origin, 5, order=order, mode=mode, cval=-2.0, return_coords=True)
            for w, g in zip(
                want, _compute(*gpuvec.ray_max(x, origin, 5, order=order, mode=mode, cval=-2.0, return_coords=True))
            ):
                _same(w, g)


def test_ray_max_channel_axis(sync):
    img = _image((19, 23, 3), np.float32, seed=2)
    x = da.from_array(img, chunks=(6, 9, 2))
    want = gpuvec.ray_max(img, (4.5, 30.0), 5, channel_axis=-1, return_coords=True)
    got = gpuvec.ray_max(x, (4.5, 30.0), 5, channel_axis=-1, return_coords=True)
    for w, g in zip(want, _compute(*got)):
        _same(w, g)


@pytest.mark.parametrize("jit", ["0", "1"])
def test_ray_max_nan_inf_and_nan_cval(sync, monkeypatch, jit):
    monkeypatch.setenv("GPUVEC_JIT", jit)
    img = _image((30, 26), np.float32, seed=5)
    img[4, 20], img[17, 3], img[25, 25] = np.nan, np.inf, -np.inf
    x = da.from_array(img, chunks=(7, 9))
    for origin in [(2.0, 30.0), (15.5, 12.25)]:
        for mode, cval in [("nearest", 0.0), ("constant", np.nan), ("constant", 2.0)]:
            for order in (0, 1):
                want = gpuvec.ray_max(img, origin, 5, order=order, mode=mode, cval=cval)
                for w, g in zip(want, _compute(*gpuvec.ray_max(x, origin, 5, order=order, mode=mode, cval=cval))):
                    _same(w, g)


def test_ray_max_big_endian_and_single_chunk(sync):
    img = _image((12, 10), np.float64).astype(">f8")
    x = da.from_array(img, chunks=-1)
    for w, g in zip(gpuvec.ray_max(img, (3, 3)), _compute(*gpuvec.ray_max(x, (3, 3)))):
        _same(w, g)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"num": None}, "fixed num"), ({"order": 3}, "order 0 or 1"), ({"mode": "reflect"}, "'nearest' or 'constant'")],
)
def test_ray_max_refuses_what_reads_whole_axes(kwargs, match):
    x = _exploding((10, 10), 5)
    with pytest.raises(ValueError, match=match):
        gpuvec.ray_max(x, (2, 2), **{"num": 5, **kwargs})


def test_ray_max_checks_arguments_like_in_memory():
    x = da.zeros((6, 6), chunks=3)
    with pytest.raises(ValueError, match="one coordinate per spatial axis"):
        gpuvec.ray_max(x, (1, 2, 3))
    with pytest.raises(TypeError, match="integer, float32 or float64"):
        gpuvec.ray_max(x.astype(bool), (1, 2))
    with pytest.raises(ValueError, match="num must be"):
        gpuvec.ray_max(x, (1, 2), num=1)


def test_ray_max_reads_under_twice_its_area_at_num_5():
    from gpuvec.rays._dask import read_ratios

    ratios = read_ratios((8000, 8000), ((1000,) * 8,) * 2, (2500.3, 5700.8), 5)
    assert ratios.mean() < 2.0 and ratios.max() < 2.1, (ratios.mean(), ratios.max())


def test_ray_max_boxes_hold_every_index_read():
    """Against the tables directly: box k of every block holds every index sample k of its cells reads."""
    from gpuvec.rays._dask import box_plan
    from gpuvec.rays._rules import axis_table

    for n, chunks, o, order, mode in [
        (37, (10, 1, 20, 6), -5.0, 1, "constant"),
        (40, (7,) * 5 + (5,), 13.3, 1, "nearest"),
        (9, (4, 5), 30.0, 0, "constant"),
    ]:
        (plan,) = box_plan((n,), (chunks,), (o,), 5, order, mode)
        tab = axis_table(n, range(n), o, 5, order, mode)
        bounds = np.cumsum((0,) + chunks)
        for b in range(len(chunks)):
            for k in range(5):
                cells = slice(bounds[b], bounds[b + 1])
                used = tab["inside"][k, cells] if tab["inside"] is not None else np.ones(chunks[b], bool)
                for name in ("i0", "i1")[: order + 1]:
                    idx = tab[name][k, cells][used]
                    assert ((idx >= plan[b, k, 0]) & (idx < plan[b, k, 1])).all()


def test_ray_max_block_depends_only_on_the_chunks_its_boxes_touch():
    from dask.core import flatten

    x = da.zeros((40, 40), chunks=10)  # 16 chunks
    best, _ = gpuvec.ray_max(x, (39.0, 39.0), 2, order=0)  # samples: the cell itself and the origin
    block = best.blocks[0, 0]
    graph = block.__dask_graph__().cull(set(flatten(block.__dask_keys__())))
    read = {k[1:] for k in graph if isinstance(k, tuple) and k[0] == x.name}
    assert read == {(0, 0), (3, 3)}
    # order 1 also reads the next cell of a sample at an integer position (its weight is 0, but inf * 0 is NaN)
    best, _ = gpuvec.ray_max(x, (39.0, 39.0), 2, order=1)
    block = best.blocks[0, 0]
    graph = block.__dask_graph__().cull(set(flatten(block.__dask_keys__())))
    assert {k[1:] for k in graph if isinstance(k, tuple) and k[0] == x.name} == {(0, 0), (0, 1), (1, 0), (1, 1), (3, 3)}


@settings(max_examples=25, deadline=None)
@given(
    shape=st.lists(st.integers(1, 23), min_size=1, max_size=3),
    data=st.data(),
    dtype=st.sampled_from([np.float32, np.float64, np.int8, np.uint16, np.int64]),
    num=st.sampled_from([2, 3, 5, 17]),
    order=st.sampled_from([0, 1]),
    mode=st.sampled_from(["nearest", "constant"]),
)
def test_ray_max_any_chunking_bit_identical(shape, data, dtype, num, order, mode):
    chunks = tuple(data.draw(st.integers(max(1, n // 5), n)) for n in shape)  # odd, ragged chunks: up to 6 per axis
    origin = tuple(data.draw(st.floats(-30, 50, allow_nan=False).map(lambda v: round(v * 4) / 4)) for _ in shape)
    img = _image(tuple(shape), dtype, seed=len(shape))
    want = gpuvec.ray_max(img, origin, num, order=order, mode=mode, cval=-1.5, return_coords=True)
    got = _compute(
        *gpuvec.ray_max(
            da.from_array(img, chunks=chunks), origin, num, order=order, mode=mode, cval=-1.5, return_coords=True
        )
    )
    for w, g in zip(want, got):
        _same(w, g)


def test_ray_max_writes_to_zarr_without_gathering(tmp_path, sync):
    zarr = pytest.importorskip("zarr")
    img = _image((50, 42), np.float32, seed=3)
    src = zarr.open_array(str(tmp_path / "in.zarr"), mode="w", shape=img.shape, chunks=(16, 16), dtype=img.dtype)
    src[...] = img
    x = da.from_zarr(str(tmp_path / "in.zarr"))
    best, arg = gpuvec.ray_max(x, (10.5, 35.0), 5)
    da.to_zarr(best, str(tmp_path / "max.zarr"))
    da.to_zarr(arg, str(tmp_path / "arg.zarr"))
    want = gpuvec.ray_max(img, (10.5, 35.0), 5)
    _same(want[0], zarr.open_array(str(tmp_path / "max.zarr"), mode="r")[...])
    _same(want[1], zarr.open_array(str(tmp_path / "arg.zarr"), mode="r")[...])


def test_ray_max_keeps_cupy_chunks(cp, sync):
    img = _image((40, 30), np.float32)
    x = da.from_array(cp.asarray(img), chunks=(13, 11))
    best, arg = gpuvec.ray_max(x, (5.5, 20.0), 5)
    assert type(best._meta).__module__.startswith("cupy")
    want = gpuvec.ray_max(cp.asarray(img), (5.5, 20.0), 5)
    for w, g in zip(want, _compute(best, arg)):
        _same(w.get(), g.get())


def test_dask_blocks_take_the_in_memory_choice_without_counting_towards_numbas_load(monkeypatch):
    from gpuvec import rays
    from gpuvec.rays import _dispatch

    monkeypatch.delenv("GPUVEC_JIT", raising=False)
    monkeypatch.delitem(sys.modules, "gpuvec.rays._numba", raising=False)  # as in a new process
    monkeypatch.delattr(rays, "_numba", raising=False)
    monkeypatch.setattr(_dispatch, "numpy_loop_samples", 0)
    img = np.random.default_rng(0).random((40, 40))
    lazy = gpuvec.ray_max(da.from_array(img, chunks=10), (20.5, 3), 5)[0].compute(scheduler="synchronous")
    assert _dispatch.numpy_loop_samples == 0  # 16 blocks, none counted as a call of its own
    assert np.array_equal(lazy, gpuvec.ray_max(img, (20.5, 3), 5)[0])
    assert _dispatch.numpy_loop_samples == img.size * 5  # the in-memory call counts once


@pytest.mark.parametrize("jit", ["1", "0"])
def test_dask_blocks_run_the_step_of_the_implementation_select_picks(sync, monkeypatch, jit):
    """Where select picks numba for a block, the block's per-sample steps are numba's (they were the namespace
    step for every block while the check compared the module against its pre-move name)."""
    from gpuvec.rays import _dask as rays_dask

    pytest.importorskip("numba")
    monkeypatch.setenv("GPUVEC_JIT", jit)
    calls = {"numba": 0, "xp": 0}
    real_numba, real_xp = rays_dask._step_numba, rays_dask._step_xp

    def spy_numba(*args, **kwargs):
        calls["numba"] += 1
        return real_numba(*args, **kwargs)

    def spy_xp(*args, **kwargs):
        calls["xp"] += 1
        return real_xp(*args, **kwargs)

    monkeypatch.setattr(rays_dask, "_step_numba", spy_numba)
    monkeypatch.setattr(rays_dask, "_step_xp", spy_xp)
    img = np.random.default_rng(3).random((30, 30))
    lazy = gpuvec.ray_max(da.from_array(img, chunks=15), (7.5, 20), 5)[0].compute()
    _same(lazy, gpuvec.ray_max(img, (7.5, 20), 5)[0])
    if jit == "1":
        assert calls["numba"] > 0 and calls["xp"] == 0
    else:
        assert calls["xp"] > 0 and calls["numba"] == 0


# --------------------------------------------------------------------------- edge chunks (#23)


@pytest.mark.parametrize("return_coords", [False, True])
@pytest.mark.parametrize(("shape", "origin", "axes"), [((23, 17), (4.5, 30.0), (0, 1)), ((6, 9, 8), (1, 3, 4), (0, 2))])
def test_edge_chunks_bit_identical_to_in_memory(sync, edge_chunked, shape, origin, axes, return_coords):
    img = _image(shape, np.float64, nan=True)
    want = gpuvec.ray_max(img, origin, num=7, return_coords=return_coords)
    got = _compute(*gpuvec.ray_max(edge_chunked(img, axes), origin, num=7, return_coords=return_coords))
    for g, w in zip(got, want):
        _same(g, w)


def test_unknown_chunk_sizes_get_the_same_error_for_dense_rays():
    x = da.from_array(np.ones((8, 8)), chunks=4)
    unknown = x[x[:, 0] > 0]
    for num in (5, None):
        with pytest.raises(ValueError, match=r"image has unknown chunk sizes .*compute_chunk_sizes\(\)"):
            gpuvec.ray_max(unknown, (1, 1), num=num)


def test_chunks_of_another_library_are_a_type_error():
    xps = pytest.importorskip("array_api_strict")
    x = da.from_array(np.ones((8, 8)), chunks=4).map_blocks(xps.asarray, meta=xps.asarray(np.ones((0, 0))))
    with pytest.raises(
        TypeError, match=r"image must be a dask array of numpy or cupy chunks; its chunks are array_api"
    ):
        gpuvec.ray_max(x, (1, 1), num=5)


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
@pytest.mark.parametrize("order", [0, 1])
def test_64_bit_extremes_saturate_as_in_memory(sync, dtype, order):
    info = np.iinfo(dtype)
    img = np.full((9, 9), info.max, dtype)
    img[::3, ::2] = info.min
    want = gpuvec.ray_max(img, (4.5, 3.0), num=6, order=order)
    got = _compute(*gpuvec.ray_max(da.from_array(img, chunks=4), (4.5, 3.0), num=6, order=order))
    _same(got[0], want[0])
    _same(got[1], want[1])
    assert want[0].max() == info.max  # the cell's own value, not the largest float64 below it


def test_dask_scalars_for_origin_or_cval_are_a_clear_type_error():
    x = da.from_array(np.ones((8, 8)), chunks=4)
    with pytest.raises(TypeError, match=r"origin\[0\] must be a real number.*pass float\(origin\[0\]\.compute\(\)\)"):
        gpuvec.ray_max(x, da.from_array(np.array([3.0, 4.0])), num=5)
    with pytest.raises(TypeError, match=r"cval must be a real number.*pass float\(cval\.compute\(\)\)"):
        gpuvec.ray_max(x, (3, 4), num=5, mode="constant", cval=x.sum())
