"""Dask in, dask out: ray_max, the rotation checks and the samplers on dask arrays.

Exactness runs on the synchronous scheduler (deterministic) with odd and ragged
chunks; end-to-end tests run on an in-process LocalCluster and on a real
2-process LocalCluster (pickling, worker environment), each started once.
"""

from __future__ import annotations

import sys
import threading
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpuvec
from gpuvec._core import namespace

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


@pytest.fixture
def sync():
    with dask.config.set(scheduler="synchronous"):
        yield


def _compute(*arrays):
    return dask.compute(*arrays, scheduler="synchronous")


def _exploding(shape, chunks):
    """A dask array whose every block raises when computed: proves that nothing computes it."""

    def boom(block):
        raise AssertionError("a dask array was computed")

    return da.zeros(shape, chunks=chunks).map_blocks(boom, dtype=float)


def _same(a, b):
    assert a.dtype == b.dtype and a.shape == b.shape, (a.dtype, b.dtype, a.shape, b.shape)
    assert np.array_equal(a, b, equal_nan=True), np.argwhere(a != b)[:5]


# --------------------------------------------------------------------------- detection


def test_is_dask_array_without_importing_dask():
    assert namespace.is_dask_array(da.zeros(3))
    assert not namespace.is_dask_array(np.zeros(3)) and not namespace.is_dask_array([1.0])


def test_get_namespace_refuses_a_dask_array_without_computing_it():
    x = _exploding((4, 4), 2)
    with pytest.raises(TypeError, match="never computes a dask array"):
        gpuvec.get_namespace(x)
    with pytest.raises(TypeError, match="gpuvec\\[dask\\]"):
        gpuvec.get_namespace(np.zeros(2), x)


def test_public_functions_stay_lazy_on_dask_input():
    R = _exploding((6, 3, 3), (4, 3, 3))
    assert namespace.is_dask_array(gpuvec.is_rotation(R))
    assert namespace.is_dask_array(gpuvec.nearest_rotation(R))
    assert all(namespace.is_dask_array(r) for r in gpuvec.rotation_residuals(R))
    assert all(namespace.is_dask_array(r) for r in gpuvec.ray_max(_exploding((9, 8), 4), (2.5, 3.0), 5))
    rng = gpuvec.random.default_rng(0, backend="numpy")
    assert namespace.is_dask_array(rng.normal(_exploding((5,), 2), 1.0))


@pytest.mark.parametrize("call", ["ray_max", "is_rotation", "rotation_residuals", "nearest_rotation", "normal", "mvn"])
def test_without_dask_a_dask_input_is_a_typeerror_naming_the_extra(monkeypatch, call):
    x = da.ones((4, 3, 3), chunks=2)
    mean = x[..., 0]
    monkeypatch.setitem(sys.modules, "dask.array", None)  # "import dask.array" now fails
    rng = gpuvec.random.default_rng(0, backend="numpy")
    calls = {
        "ray_max": lambda: gpuvec.ray_max(x, (1, 1, 1)),
        "is_rotation": lambda: gpuvec.is_rotation(x),
        "rotation_residuals": lambda: gpuvec.rotation_residuals(x),
        "nearest_rotation": lambda: gpuvec.nearest_rotation(x),
        "normal": lambda: rng.normal(x, 1.0),
        "mvn": lambda: rng.multivariate_normal(mean, x),
    }
    with pytest.raises(TypeError, match=r"pip install 'gpuvec\[dask\]'"):
        calls[call]()


# --------------------------------------------------------------------------- ray_max


def _image(shape, dtype, seed=0, nan=False):
    rng = np.random.default_rng(seed)
    img = rng.random(shape) * (200 if np.dtype(dtype).kind in "iu" else 1)
    img = img.astype(dtype)
    if nan:
        img[tuple(n // 3 for n in shape)] = np.nan
    return img


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


# --------------------------------------------------------------------------- rotations


def _stack(shape, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    R = gpuvec.nearest_rotation(rng.normal(size=shape + (3, 3)))
    R[(0,) * len(shape)] *= 1.001
    return R.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.float16])
def test_rotation_checks_equal_in_memory(sync, dtype):
    R = _stack((10, 7), dtype)
    x = da.from_array(R, chunks=(3, (4, 3), 2, 3))  # a split matrix axis is rechunked
    _same(gpuvec.is_rotation(R), gpuvec.is_rotation(x).compute())
    _same(gpuvec.is_rotation(R, proper=False, atol=1e-3), gpuvec.is_rotation(x, proper=False, atol=1e-3).compute())
    for w, g in zip(gpuvec.rotation_residuals(R), _compute(*gpuvec.rotation_residuals(x))):
        _same(w, g)
    _same(gpuvec.nearest_rotation(R), gpuvec.nearest_rotation(x).compute())
    assert isinstance(gpuvec.rotation_residuals(x), gpuvec.rotations.RotationResiduals)


def test_rotation_checks_single_matrix_and_integers(sync):
    x = da.from_array(np.array([[0, 0, 1], [1, 0, 0], [0, 1, 0]]), chunks=2)
    got = gpuvec.is_rotation(x)
    assert got.shape == () and bool(got.compute())
    assert gpuvec.rotation_residuals(x).det.compute() == 1.0


def test_rotation_checks_refuse_bad_stacks():
    with pytest.raises(ValueError, match="square matrices"):
        gpuvec.is_rotation(da.zeros((4, 3, 2)))
    with pytest.raises(TypeError, match="real dtype"):
        gpuvec.nearest_rotation(da.zeros((4, 3, 3), dtype=complex))
    with pytest.raises(ValueError, match="atol must be >= 0"):
        gpuvec.is_rotation(da.zeros((4, 3, 3)), atol=-1.0)


def test_nearest_rotation_nan_raises_when_computed(sync):
    M = np.eye(3)[None].repeat(4, 0)
    M[2, 0, 0] = np.nan
    lazy = gpuvec.nearest_rotation(da.from_array(M, chunks=(2, 3, 3)))
    with pytest.raises(ValueError, match="finite"):
        lazy.compute()


# --------------------------------------------------------------------------- random


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


# --------------------------------------------------------------------------- threads


def test_blas_limit_is_held_while_any_task_runs():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    from gpuvec._core.threads import blas_limited

    def blas_threads():
        return {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}

    before = blas_threads()
    first_in, second_in, release = threading.Event(), threading.Event(), threading.Event()
    seen = []

    def task(entered, wait_for):
        with blas_limited(always=True):
            entered.set()
            wait_for.wait(5)
            seen.append(blas_threads())

    a = threading.Thread(target=task, args=(first_in, release))
    a.start()
    first_in.wait(5)
    done = threading.Event()
    done.set()
    b = threading.Thread(target=task, args=(second_in, done))
    b.start()  # b leaves while a is still inside: the limit must stay
    b.join()
    release.set()
    a.join()
    assert all(s <= {1} for s in seen), (seen, before)
    assert blas_threads() == before


# --------------------------------------------------------------------------- clusters


@pytest.fixture(scope="module")
def threads_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def process_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", env={"GPUVEC_JIT": "1"}
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _end_to_end(client):
    img = _image((64, 48), np.float32, seed=4)
    x = da.from_array(img, chunks=(20, 17))
    R = _stack((40,))
    xR = da.from_array(R, chunks=(15, 3, 3))
    rng = gpuvec.random.default_rng(11, backend="numpy")
    mvn = rng.multivariate_normal(da.zeros((6, 3), chunks=(4, 3)), np.eye(3), size=100)
    best, arg = gpuvec.ray_max(x, (10.5, 70.0), 5, mode="constant")
    got = client.compute([best, arg, gpuvec.is_rotation(xR), gpuvec.nearest_rotation(xR), mvn], sync=True)
    want = gpuvec.ray_max(img, (10.5, 70.0), 5, mode="constant")
    _same(want[0], got[0])
    _same(want[1], got[1])
    _same(gpuvec.is_rotation(R), got[2])
    _same(gpuvec.nearest_rotation(R), got[3])
    assert got[4].shape == (100, 6, 3) and np.isfinite(got[4]).all()


def test_end_to_end_in_process_cluster(threads_client):
    _end_to_end(threads_client)


def test_end_to_end_two_worker_processes(process_client):
    """Real worker processes: block functions pickle, numba's loop runs in the workers (GPUVEC_JIT=1 there)."""
    _end_to_end(process_client)
    ran = process_client.run(lambda: "gpuvec.rays._numba" in sys.modules)
    assert all(ran.values())


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
