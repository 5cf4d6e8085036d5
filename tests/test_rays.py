"""ray_max: exactness against the seed's accepted answer, every dtype and shape, modes, errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpuvec
from gpuvec import _jit, rays
from gpuvec.baselines import SEED_RAY_DIST as SEED_DIST
from gpuvec.baselines import SEED_RAY_IMAGE as SEED_M
from gpuvec.baselines import SEED_RAY_MAX as SEED_MAX
from gpuvec.baselines import rays_accepted_answer, rays_seed_loop
from tests.conftest import assert_namespace, to_np


@pytest.fixture(autouse=True, params=["jit", "nojit"])
def cpu_impl(request, monkeypatch):
    """Every test runs on the compiled CPU loop (where numba is installed) and on the numpy reference."""
    if request.param == "nojit":
        monkeypatch.setenv("GPUVEC_JIT", "0")
    elif not _jit.enabled():
        pytest.skip("numba is not installed: the numpy reference runs under 'nojit'")
    return request.param


def assert_identical(got, want):
    """Bit-identical values (NaN where NaN, same sign of zero) and dtype."""
    got, want = to_np(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape
    if got.dtype.kind == "f":
        assert np.array_equal(np.isnan(got), np.isnan(want))
        ok = ~np.isnan(want)
        assert np.array_equal(got[ok].view(np.uint8), want[ok].view(np.uint8)), np.argwhere(got != want)[:5]
    else:
        assert np.array_equal(got, want)


def test_seed_6x6_example(xp):
    m_max, m_dist = gpuvec.ray_max(xp.asarray(SEED_M), (3, 3), num=5)
    assert_namespace(m_max, xp, SEED_M.dtype, SEED_M.shape)
    assert_namespace(m_dist, xp, np.uint8, SEED_M.shape)
    assert np.array_equal(to_np(m_max), SEED_MAX)
    assert np.array_equal(to_np(m_dist), SEED_DIST)


def test_seed_loop_agrees_with_accepted_answer_on_6x6():
    loop_max, loop_dist = rays_seed_loop(SEED_M, 3, 3)
    assert np.array_equal(loop_max, SEED_MAX) and np.array_equal(loop_dist, SEED_DIST)


def test_linspace_table_is_numpys_scalar_linspace():
    for n, stop, num in [(7, 3, 5), (5, 2.5, 4), (6, -3.7, 9), (4, 10.25, 2), (1, 0, 3), (9, 1e-3, 50)]:
        table = rays._axis_positions(np, n, float(stop), num)
        want = np.array([np.linspace(i, stop, num) for i in range(n)]).T
        assert np.array_equal(table.view(np.uint64), want.view(np.uint64))


DTYPES = [np.float64, np.float32, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64]


def random_image(rng, shape, dtype):
    dtype = np.dtype(dtype)
    if dtype.kind == "f":
        return (rng.normal(size=shape) * 50).astype(dtype)
    info = np.iinfo(dtype)
    lo, hi = max(info.min, -10_000), min(info.max, 10_000)
    return rng.integers(lo, hi, size=shape, endpoint=True).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (5, 6), (13, 4)])
def test_bit_identical_to_accepted_answer(xp, dtype, shape):
    rng = np.random.default_rng(abs(hash((np.dtype(dtype).str, shape))) % 2**32)
    img = random_image(rng, shape, dtype)
    for origin in [(0, 0), (shape[0] - 1, shape[1] - 1), (shape[0] // 2, shape[1] // 3)]:
        for num in (2, 5, 11):
            want = rays_accepted_answer(img, *origin, num)
            got = gpuvec.ray_max(xp.asarray(img), origin, num)
            assert_identical(got[0], want[0])
            assert np.array_equal(to_np(got[1]), want[1])


def test_integer_rounding_ties_follow_scipy(xp):
    # Samples at exact .5 ties: half away from zero (scipy), not numpy's half to even.
    img = np.array([[0, 1, 2, 3, -1, -2, -3]], np.int16)
    got, _ = gpuvec.ray_max(xp.asarray(img), (0, 6), num=3)
    want, _ = rays_accepted_answer(img, 0, 6, num=3)
    assert_identical(got, want)


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_and_inf_propagate_as_ndarray_max(xp, special, dtype):
    rng = np.random.default_rng(3)
    img = random_image(rng, (9, 8), dtype)
    img[2, 5] = special
    img[6, 1] = special
    for origin in [(4, 4), (0, 7), (2, 5)]:
        want = rays_accepted_answer(img, *origin, 6)
        got = gpuvec.ray_max(xp.asarray(img), origin, 6)
        assert_identical(got[0], want[0])
        assert np.array_equal(to_np(got[1]), want[1])


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("mode", ["nearest", "constant"])
def test_streaming_modes_match_map_coordinates_with_outside_origins(xp, order, mode):
    rng = np.random.default_rng(order * 10 + len(mode))
    for dtype in (np.float64, np.float32, np.uint8, np.int32):
        img = random_image(rng, (7, 9), dtype)
        for origin in [(-3.5, 2.25), (10.7, -4.1), (3.3, 4.6), (6, 8)]:
            want = rays_accepted_answer(img, *origin, 7, order=order, mode=mode, cval=-2.5)
            got = gpuvec.ray_max(xp.asarray(img), origin, 7, order=order, mode=mode, cval=-2.5)
            assert_identical(got[0], want[0])
            assert np.array_equal(to_np(got[1]), want[1])


@pytest.mark.parametrize("order,mode", [(3, "nearest"), (2, "reflect"), (1, "wrap"), (0, "grid-constant"), (5, "mirror")])
def test_general_path_matches_map_coordinates(order, mode):
    rng = np.random.default_rng(order)
    img = random_image(rng, (8, 6), np.float64)
    want = rays_accepted_answer(img, 2.5, 1.5, 6, order=order, mode=mode, cval=1.0)
    got = gpuvec.ray_max(img, (2.5, 1.5), 6, order=order, mode=mode, cval=1.0)
    assert_identical(got[0], want[0])
    assert np.array_equal(got[1], want[1])


def test_general_path_runs_on_cupy(cp):
    img = np.random.default_rng(0).random((8, 6))
    want = rays_accepted_answer(img, 2.5, 1.5, 6, order=3, mode="reflect")
    got = gpuvec.ray_max(cp.asarray(img), (2.5, 1.5), 6, order=3, mode="reflect")
    assert_namespace(got[0], cp, np.float64, img.shape)
    np.testing.assert_allclose(to_np(got[0]), want[0], rtol=1e-6)  # cupyx's arithmetic, not scipy's


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 9),
    cols=st.integers(1, 9),
    num=st.integers(2, 9),
    dtype=st.sampled_from([np.float64, np.float32, np.uint8, np.int16]),
    fy=st.floats(-0.5, 1.5),
    fx=st.floats(-0.5, 1.5),
    order=st.sampled_from([0, 1]),
    mode=st.sampled_from(["nearest", "constant"]),
    seed=st.integers(0, 2**16),
)
def test_property_matches_accepted_answer(rows, cols, num, dtype, fy, fx, order, mode, seed):
    img = random_image(np.random.default_rng(seed), (rows, cols), dtype)
    origin = (fy * (rows - 1), fx * (cols - 1))
    want = rays_accepted_answer(img, *origin, num, order=order, mode=mode, cval=3.0)
    got = gpuvec.ray_max(img, origin, num, order=order, mode=mode, cval=3.0)
    assert_identical(got[0], want[0])
    assert np.array_equal(got[1], want[1])


def test_argmax_dtype_grows_with_num():
    img = np.zeros((2, 2))
    assert gpuvec.ray_max(img, (0, 0), 256)[1].dtype == np.uint8
    assert gpuvec.ray_max(img, (0, 0), 257)[1].dtype == np.uint16


def test_blocks_cover_tall_and_wide_images(monkeypatch):
    monkeypatch.setattr(rays, "_BLOCK_BYTES", 64)  # several tiny row blocks, a short last one
    img = random_image(np.random.default_rng(1), (23, 5), np.float64)
    want = rays_accepted_answer(img, 11, 2, 5)
    got = gpuvec.ray_max(img, (11, 2), 5)
    assert_identical(got[0], want[0])
    assert np.array_equal(got[1], want[1])


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(image=np.zeros((2, 2, 2))), ValueError, r"origin must have one coordinate per spatial axis.*\(2, 2, 2\).*3 spatial axes"),
        (dict(image=np.zeros((0, 3))), ValueError, "at least one element along every axis"),
        (dict(channel_axis=2), ValueError, r"channel_axis must be an integer in \[-2, 1\]; got 2"),
        (dict(image=np.zeros((3, 3, 3)), channel_axis=-1, origin=(1, 1, 1)), ValueError, "with channel_axis=2 .2 spatial axes"),
        (dict(image=np.zeros((3, 3), np.complex128)), TypeError, "complex128"),
        (dict(image=np.zeros((3, 3), np.float16)), TypeError, "float16"),
        (dict(origin=(1, 2, 3)), ValueError, "origin must have one coordinate per spatial axis"),
        (dict(origin=5), TypeError, "origin must be a sequence of 2 finite numbers"),
        (dict(origin=(np.nan, 1)), ValueError, r"origin\[0\] must be finite"),
        (dict(origin=("a", 1)), TypeError, r"origin\[0\] must be a real number"),
        (dict(num=1), ValueError, r"num must be an integer in \[2, inf\]; got 1"),
        (dict(num=2.5), TypeError, "num must be an integer"),
        (dict(order=6), ValueError, r"order must be an integer in \[0, 5\]; got 6"),
        (dict(mode="edge"), ValueError, "mode must be one of .*'nearest'.*got 'edge'"),
        (dict(image=np.zeros((3, 3), np.uint8), mode="constant", cval=np.nan), ValueError, "cval must be finite"),
    ],
)
def test_bad_input_names_the_parameter(kwargs, exc, match):
    args = dict(image=np.zeros((3, 3)), origin=(1, 1), num=5)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        gpuvec.ray_max(args.pop("image"), args.pop("origin"), **args)


def test_memory_does_not_grow_with_num_times_cells():
    import tracemalloc

    rows, cols = 300, 300
    img = np.random.default_rng(0).random((rows, cols))
    peaks = {}
    for num in (5, 50):
        tracemalloc.start()
        gpuvec.ray_max(img, (150, 100), num)
        peaks[num] = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    outputs = img.nbytes + img.size  # float64 max + uint8 argmax
    # Only the 1-D axis tables grow with num (under 100 bytes per sample per row and column);
    # the accepted answer's coordinates would add 16 * 45 * rows * cols = 65 MB here.
    assert peaks[50] - peaks[5] < 100 * 45 * (rows + cols)
    assert peaks[50] < outputs + 100 * 50 * (rows + cols) + 2_000_000


def test_gpu_kernel_matches_cpu_paths_on_a_medium_image(cp, cpu_impl):
    rng = np.random.default_rng(11)
    for dtype in (np.float32, np.float64, np.uint8, np.int16, np.int64):
        img = random_image(rng, (157, 211), dtype)
        if img.dtype.kind == "f":
            img[rng.integers(0, 157, 20), rng.integers(0, 211, 20)] = np.nan
            img[rng.integers(0, 157, 5), rng.integers(0, 211, 5)] = np.inf
        for origin, order, mode in [((78, 100), 1, "nearest"), ((-20.5, 230.25), 1, "constant"), ((156, 0), 0, "nearest"), ((40.3, -7.9), 0, "constant")]:
            want = gpuvec.ray_max(img, origin, 37, order=order, mode=mode, cval=-1.0)
            got = gpuvec.ray_max(cp.asarray(img), origin, 37, order=order, mode=mode, cval=-1.0)
            assert_identical(got[0], want[0])
            assert np.array_equal(to_np(got[1]), want[1])


# --------------------------------------------------------------------------- volumes, channels, coordinates, dense rays


def accepted_answer_nd(m, origin, num, *, order=1, mode="nearest", cval=0.0):
    """The accepted answer generalised to any number of axes: all coordinates at once, then max/argmax."""
    from scipy.ndimage import map_coordinates

    lins = [np.array([np.linspace(i, o, num) for i in range(n)]) for n, o in zip(m.shape, origin)]
    pts = np.stack(np.broadcast_arrays(*(lin.reshape((1,) * d + (n,) + (1,) * (m.ndim - 1 - d) + (num,)) for d, (lin, n) in enumerate(zip(lins, m.shape)))))
    samples = map_coordinates(m, pts.reshape(m.ndim, -1), order=order, mode=mode, cval=cval).reshape(m.shape + (num,))
    arg = samples.argmax(-1)
    coords = np.take_along_axis(pts, arg[None, ..., None], axis=-1)[..., 0]
    return samples.max(-1), arg, coords


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8, np.int16])
@pytest.mark.parametrize("order,mode", [(1, "nearest"), (1, "constant"), (0, "nearest"), (0, "constant"), (3, "reflect")])
def test_volume_matches_map_coordinates(xp, dtype, order, mode):
    rng = np.random.default_rng(5)
    vol = random_image(rng, (5, 6, 4), dtype)
    if vol.dtype.kind == "f":
        vol[1, 2, 3] = np.nan
    for origin in [(2, 3, 1), (0, 5, 3), (-1.5, 2.25, 6.5)]:
        want = accepted_answer_nd(vol, origin, 6, order=order, mode=mode, cval=2.0)
        got = gpuvec.ray_max(xp.asarray(vol), origin, 6, order=order, mode=mode, cval=2.0, return_coords=True)
        assert_namespace(got[0], xp, vol.dtype, vol.shape)
        if xp is np:
            assert_identical(got[0], want[0])
            assert np.array_equal(to_np(got[1]), want[1])
        else:  # volumes on the GPU run through cupyx's map_coordinates
            np.testing.assert_allclose(to_np(got[0]).astype(float), want[0].astype(float), rtol=1e-5, atol=1, equal_nan=True)
        np.testing.assert_array_equal(to_np(got[2])[:, to_np(got[1]) == want[1]], want[2][:, to_np(got[1]) == want[1]])


def test_return_coords_are_the_linspace_points_of_the_max(xp):
    img = random_image(np.random.default_rng(6), (7, 9), np.float64)
    best, arg, coords = gpuvec.ray_max(xp.asarray(img), (2.5, 7.25), 8, return_coords=True)
    want = accepted_answer_nd(img, (2.5, 7.25), 8)
    assert_namespace(coords, xp, np.float64, (2, 7, 9))
    assert np.array_equal(to_np(coords), want[2])
    assert_identical(best, want[0])


@pytest.mark.parametrize("channel_axis", [-1, 0])
def test_channel_axis_gives_per_channel_results(xp, channel_axis):
    rng = np.random.default_rng(7)
    rgb = random_image(rng, (6, 8, 3), np.uint8)
    img = rgb if channel_axis == -1 else np.moveaxis(rgb, -1, 0)
    best, arg, coords = gpuvec.ray_max(xp.asarray(img), (2, 5), 7, channel_axis=channel_axis, return_coords=True)
    assert_namespace(best, xp, np.uint8, img.shape)
    assert_namespace(arg, xp, np.uint8, img.shape)
    assert coords.shape == (2,) + img.shape
    for c in range(3):
        want = rays_accepted_answer(rgb[..., c], 2, 5, 7)
        got_c = np.take(to_np(best), c, axis=channel_axis)
        assert np.array_equal(got_c, want[0])
        assert np.array_equal(np.take(to_np(arg), c, axis=channel_axis), want[1])


@pytest.mark.parametrize("dtype", [np.float64, np.uint8, np.float32])
@pytest.mark.parametrize("order,mode", [(0, "nearest"), (1, "nearest"), (1, "constant")])
def test_dense_rays_match_brute_force(xp, dtype, order, mode):
    from gpuvec.baselines import rays_dense_reference

    rng = np.random.default_rng(8)
    img = random_image(rng, (9, 7), dtype)
    if img.dtype.kind == "f":
        img[4, 2] = np.nan
    for origin in [(4, 3), (0, 0), (8, 6), (-2.5, 9.25), (4.5, 3.5)]:
        want = rays_dense_reference(img, origin, order=order, mode=mode, cval=1.0)
        got = gpuvec.ray_max(xp.asarray(img), origin, None, order=order, mode=mode, cval=1.0, return_coords=True)
        assert_namespace(got[0], xp, img.dtype, img.shape)
        if xp is np:  # scipy's map_coordinates on the same points: identical
            assert_identical(got[0], want[0])
            assert np.array_equal(to_np(got[1]), want[1])
            assert np.array_equal(to_np(got[2]), want[2])
        else:
            np.testing.assert_allclose(to_np(got[0]).astype(float), want[0].astype(float), rtol=1e-5, atol=1, equal_nan=True)


def test_dense_rays_on_volume_and_channels():
    from gpuvec.baselines import rays_dense_reference

    vol = random_image(np.random.default_rng(9), (4, 5, 6), np.float64)
    got = gpuvec.ray_max(vol, (1, 4, 2), None)
    want = rays_dense_reference(vol, (1, 4, 2))
    assert_identical(got[0], want[0])
    assert np.array_equal(got[1], want[1])
    rgb = random_image(np.random.default_rng(10), (5, 6, 3), np.uint8)
    got = gpuvec.ray_max(rgb, (2, 3), None, order=0, channel_axis=-1)
    for c in range(3):
        assert np.array_equal(got[0][..., c], rays_dense_reference(rgb[..., c], (2, 3), order=0)[0])


def test_dense_chunks_cover_long_rays(monkeypatch):
    from gpuvec.baselines import rays_dense_reference

    monkeypatch.setattr(rays, "_GENERAL_CHUNK", 7)  # several chunks per ray length
    img = random_image(np.random.default_rng(12), (6, 11), np.float64)
    got = gpuvec.ray_max(img, (0, 10), None)
    want = rays_dense_reference(img, (0, 10))
    assert_identical(got[0], want[0])
    assert np.array_equal(got[1], want[1])
