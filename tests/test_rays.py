"""ray_max: exactness against the seed's accepted answer, every dtype and shape, modes, errors."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpuvec
from gpuvec._core import dispatch
from gpuvec.rays import _rules as _rays_rules
from gpuvec.tools.baselines import SEED_RAY_DIST as SEED_DIST
from gpuvec.tools.baselines import SEED_RAY_IMAGE as SEED_M
from gpuvec.tools.baselines import SEED_RAY_MAX as SEED_MAX
from gpuvec.tools.baselines import rays_accepted_answer, rays_seed_loop
from tests.helpers import assert_identical, assert_namespace, compiled_paths, random_image, to_np


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
        table = _rays_rules.axis_positions(np, range(n), float(stop), num)
        want = np.array([np.linspace(i, stop, num) for i in range(n)]).T
        assert np.array_equal(table.view(np.uint64), want.view(np.uint64))


DTYPES = [np.float64, np.float32, np.uint8, np.int8, np.uint16, np.int16, np.uint32, np.int32, np.uint64, np.int64]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (7, 1), (5, 6), (13, 4)])
def test_bit_identical_to_accepted_answer(xp, impl, dtype, shape):
    rng = np.random.default_rng(abs(hash((np.dtype(dtype).str, shape))) % 2**32)
    img = random_image(rng, shape, dtype)
    for origin in [(0, 0), (shape[0] - 1, shape[1] - 1), (shape[0] // 2, shape[1] // 3)]:
        for num in (2, 5, 11):
            want = rays_accepted_answer(img, *origin, num)
            got = gpuvec.ray_max(xp.asarray(img), origin, num)
            assert_identical(got[0], want[0])
            assert np.array_equal(to_np(got[1]), want[1])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("mode", ["nearest", "constant"])
def test_signed_zeros_and_whole_positions_match_scipy(xp, impl, dtype, mode):
    """Whole-number positions (every first sample, and an integral origin's last) have weights 1 and 0:
    the loops may skip the zero-weight terms; -0.0 pixels and negative neighbours must not show."""
    img = np.array([[-0.0, -1.5, 0.0, -0.0], [-2.0, -0.0, -0.0, 3.0], [0.0, -0.0, -7.0, -0.0]], dtype)
    for origin, num in itertools.product([(0, 0), (2, 3), (1, 1.5), (-1, 2), (1.25, 3)], (2, 3, 5, 12)):
        want = rays_accepted_answer(img, *origin, num, mode=mode, cval=-0.5)
        got = gpuvec.ray_max(xp.asarray(img), origin, num, mode=mode, cval=-0.5)
        assert_identical(got[0], want[0])
        assert np.array_equal(to_np(got[1]), want[1])


def test_integer_rounding_ties_follow_scipy(xp, impl):
    # Samples at exact .5 ties: half away from zero (scipy), not numpy's half to even.
    img = np.array([[0, 1, 2, 3, -1, -2, -3]], np.int16)
    got, _ = gpuvec.ray_max(xp.asarray(img), (0, 6), num=3)
    want, _ = rays_accepted_answer(img, 0, 6, num=3)
    assert_identical(got, want)


@pytest.mark.parametrize("special", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_nan_and_inf_propagate_as_ndarray_max(xp, impl, special, dtype):
    rng = np.random.default_rng(3)
    img = random_image(rng, (9, 8), dtype)
    img[2, 5] = special
    img[6, 1] = special
    for origin, num in itertools.product([(4, 4), (0, 7), (2, 5)], (6, 12)):  # both numba loops
        want = rays_accepted_answer(img, *origin, num)
        got = gpuvec.ray_max(xp.asarray(img), origin, num)
        assert_identical(got[0], want[0])
        assert np.array_equal(to_np(got[1]), want[1])


@pytest.mark.parametrize("order", [0, 1])
@pytest.mark.parametrize("mode", ["nearest", "constant"])
def test_streaming_modes_match_map_coordinates_with_outside_origins(xp, impl, order, mode):
    rng = np.random.default_rng(order * 10 + len(mode))
    for dtype in (np.float64, np.float32, np.uint8, np.int32):
        img = random_image(rng, (7, 9), dtype)
        for origin, num in itertools.product([(-3.5, 2.25), (10.7, -4.1), (3.3, 4.6), (6, 8)], (7, 12)):
            want = rays_accepted_answer(img, *origin, num, order=order, mode=mode, cval=-2.5)
            got = gpuvec.ray_max(xp.asarray(img), origin, num, order=order, mode=mode, cval=-2.5)
            assert_identical(got[0], want[0])
            assert np.array_equal(to_np(got[1]), want[1])


@pytest.mark.parametrize(
    "order,mode", [(3, "nearest"), (2, "reflect"), (1, "wrap"), (0, "grid-constant"), (5, "mirror")]
)
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
    for compiled in (True, False):
        with compiled_paths(compiled):
            got = gpuvec.ray_max(img, origin, num, order=order, mode=mode, cval=3.0)
        assert_identical(got[0], want[0])
        assert np.array_equal(got[1], want[1])


def test_argmax_dtype_grows_with_num():
    img = np.zeros((2, 2))
    assert gpuvec.ray_max(img, (0, 0), 256)[1].dtype == np.uint8
    assert gpuvec.ray_max(img, (0, 0), 257)[1].dtype == np.uint16


def test_blocks_cover_tall_and_wide_images(monkeypatch):
    monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "rays_block", (8, 8))  # several tiny row blocks, a short last one
    monkeypatch.setenv("GPUVEC_JIT", "0")
    img = random_image(np.random.default_rng(1), (23, 5), np.float64)
    want = rays_accepted_answer(img, 11, 2, 5)
    got = gpuvec.ray_max(img, (11, 2), 5)
    assert_identical(got[0], want[0])
    assert np.array_equal(got[1], want[1])


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (
            dict(image=np.zeros((2, 2, 2))),
            ValueError,
            r"origin must have one coordinate per spatial axis.*\(2, 2, 2\).*3 spatial axes",
        ),
        (dict(image=np.zeros((0, 3))), ValueError, "at least one element along every axis"),
        (dict(channel_axis=2), ValueError, r"channel_axis must be an integer in \[-2, 1\]; got 2"),
        (
            dict(image=np.zeros((3, 3, 3)), channel_axis=-1, origin=(1, 1, 1)),
            ValueError,
            "with channel_axis=2 .2 spatial axes",
        ),
        (dict(image=np.zeros((3, 3), np.complex128)), TypeError, "complex128"),
        (dict(image=np.zeros((3, 3), np.float16)), TypeError, "float16"),
        (dict(origin=(1, 2, 3)), ValueError, "origin must have one coordinate per spatial axis"),
        (dict(origin=5), TypeError, "origin must be a sequence of 2 finite numbers"),
        (dict(origin=(np.nan, 1)), ValueError, r"origin\[0\] must be finite"),
        (dict(origin=("a", 1)), TypeError, r"origin\[0\] must be a real number"),
        (dict(num=1), ValueError, r"num must be an integer in \[2, 4294967296\]; got 1"),
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


def test_gpu_kernel_matches_cpu_reference_on_a_medium_image(cp):
    rng = np.random.default_rng(11)
    for dtype in (np.float32, np.float64, np.uint8, np.int16, np.int64):
        img = random_image(rng, (157, 211), dtype)
        if img.dtype.kind == "f":
            img[rng.integers(0, 157, 20), rng.integers(0, 211, 20)] = np.nan
            img[rng.integers(0, 157, 5), rng.integers(0, 211, 5)] = np.inf
        for origin, order, mode in [
            ((78, 100), 1, "nearest"),
            ((-20.5, 230.25), 1, "constant"),
            ((156, 0), 0, "nearest"),
            ((40.3, -7.9), 0, "constant"),
        ]:
            with compiled_paths(False):
                want = gpuvec.ray_max(img, origin, 37, order=order, mode=mode, cval=-1.0)
            got = gpuvec.ray_max(cp.asarray(img), origin, 37, order=order, mode=mode, cval=-1.0)
            assert_identical(got[0], want[0])
            assert np.array_equal(to_np(got[1]), want[1])


# --------------------------------------------------------------------------- volumes, channels, coordinates, dense rays


def accepted_answer_nd(m, origin, num, *, order=1, mode="nearest", cval=0.0):
    """The accepted answer generalised to any number of axes: all coordinates at once, then max/argmax."""
    from scipy.ndimage import map_coordinates

    lins = [np.array([np.linspace(i, o, num) for i in range(n)]) for n, o in zip(m.shape, origin)]
    pts = np.stack(
        np.broadcast_arrays(
            *(
                lin.reshape((1,) * d + (n,) + (1,) * (m.ndim - 1 - d) + (num,))
                for d, (lin, n) in enumerate(zip(lins, m.shape))
            )
        )
    )
    samples = map_coordinates(m, pts.reshape(m.ndim, -1), order=order, mode=mode, cval=cval).reshape(m.shape + (num,))
    arg = samples.argmax(-1)
    coords = np.take_along_axis(pts, arg[None, ..., None], axis=-1)[..., 0]
    return samples.max(-1), arg, coords


@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.uint8, np.int16])
@pytest.mark.parametrize(
    "order,mode", [(1, "nearest"), (1, "constant"), (0, "nearest"), (0, "constant"), (3, "reflect")]
)
def test_volume_matches_map_coordinates(xp, impl, dtype, order, mode):
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
            np.testing.assert_allclose(
                to_np(got[0]).astype(float), want[0].astype(float), rtol=1e-5, atol=1, equal_nan=True
            )
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
def test_dense_rays_match_brute_force(xp, impl, dtype, order, mode):
    from gpuvec.tools.baselines import rays_dense_reference

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
            np.testing.assert_allclose(
                to_np(got[0]).astype(float), want[0].astype(float), rtol=1e-5, atol=1, equal_nan=True
            )


def test_dense_rays_on_volume_and_channels():
    from gpuvec.tools.baselines import rays_dense_reference

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
    from gpuvec.tools.baselines import rays_dense_reference

    monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "rays_points", (7, 7))  # several chunks per ray length
    monkeypatch.setenv("GPUVEC_JIT", "0")
    img = random_image(np.random.default_rng(12), (6, 11), np.float64)
    got = gpuvec.ray_max(img, (0, 10), None)
    want = rays_dense_reference(img, (0, 10))
    assert_identical(got[0], want[0])
    assert np.array_equal(got[1], want[1])


# --------------------------------------------------------------------------- known answers, by geometry


def test_peak_on_the_diagonal_is_seen_from_every_cell_of_the_diagonal():
    img = np.zeros((5, 5))
    img[2, 2] = 9.0
    best, arg = gpuvec.ray_max(img, (4, 4), num=5, order=0)
    assert best[0, 0] == 9.0 and arg[0, 0] == 2  # (0,0) -> (4,4) passes (2,2) at the middle sample
    assert best[1, 1] == 9.0 and best[0, 4] == 0.0  # the anti-diagonal corner's ray misses the peak


def test_origin_cell_is_its_own_max_at_sample_zero():
    img = np.arange(12.0).reshape(3, 4)
    best, arg = gpuvec.ray_max(img, (1, 2), num=4)
    assert best[1, 2] == img[1, 2] and arg[1, 2] == 0


def test_ray_from_a_cell_looking_right_along_a_row():
    img = np.array([[1.0, 2.0, 3.0, 4.0, 0.0]])
    best, arg = gpuvec.ray_max(img, (0, 4), num=5, order=0)  # samples at 0..4 step (4 - c) / 4, rounded
    np.testing.assert_array_equal(best[0], [4.0, 4.0, 4.0, 4.0, 0.0])
    np.testing.assert_array_equal(arg[0], [3, 2, 1, 0, 0])


def test_constant_mode_outside_origin_counts_cval():
    img = np.zeros((3, 3))
    best, arg = gpuvec.ray_max(img, (10, 1), num=3, mode="constant", cval=5.0)
    assert (best == 5.0).all() and (arg >= 1).all()  # samples beyond the image are cval


# --------------------------------------------------------------------------- block-level ray_max (output windows)


def blocks(shape, sizes):
    """Every block of a grid cut into pieces of ``sizes`` (ragged at the ends), as (start, stop) tuples."""
    cuts = [[(a, min(n, a + s)) for a in range(0, n, s)] for n, s in zip(shape, sizes)]
    for box in itertools.product(*cuts):
        yield tuple(a for a, _ in box), tuple(b for _, b in box)


@pytest.mark.parametrize(
    "shape,origin,sizes",
    [((13, 17), (6.5, 3.25), (4, 5)), ((9, 8), (-3.0, 11.5), (3, 8)), ((5, 6, 7), (2, 9.5, 3), (2, 4, 3))],
)
@pytest.mark.parametrize("order,mode", [(1, "nearest"), (1, "constant"), (0, "nearest"), (0, "constant")])
def test_any_block_from_its_input_box_is_bit_identical_to_the_whole_image(xp, impl, shape, origin, sizes, order, mode):
    from gpuvec.rays._dispatch import ray_max_window

    img = random_image(np.random.default_rng(len(shape) + order), shape, np.float32)
    img.flat[::7] = np.nan
    whole = gpuvec.ray_max(xp.asarray(img), origin, 6, order=order, mode=mode, cval=-1.0)
    for start, stop in blocks(shape, sizes):
        window = _rays_rules.Window(shape, start, stop, (0,) * len(shape))
        box = _rays_rules.input_box(window, origin, 6, order, mode)
        region = img[tuple(slice(a, b) for a, b in box)]
        assert region.size <= img.size
        window = window._replace(offset=tuple(a for a, _ in box))
        best, arg = ray_max_window(xp.asarray(region), origin, 6, order, mode, -1.0, False, window)
        cells = tuple(slice(a, b) for a, b in zip(start, stop))
        assert_identical(best, to_np(whole[0])[cells])
        assert np.array_equal(to_np(arg), to_np(whole[1])[cells])


def test_dense_block_matches_the_whole_image(impl):
    from gpuvec.rays._dispatch import ray_max_window

    img = random_image(np.random.default_rng(4), (11, 9), np.float64)
    whole = gpuvec.ray_max(img, (3.5, 7), None, return_coords=True)
    window = _rays_rules.Window((11, 9), (4, 2), (9, 9), (0, 0))
    got = ray_max_window(img, (3.5, 7), None, 1, "nearest", 0.0, True, window)
    for g, w in zip(got, whole):
        assert_identical(g, w[..., 4:9, 2:9])


def test_input_box_never_misses_a_cell_read():
    rng = np.random.default_rng(0)
    for _ in range(200):
        shape = tuple(int(n) for n in rng.integers(1, 40, 2))
        origin = tuple(float(v) for v in rng.uniform(-10, 50, 2).round(2))
        num = int(rng.integers(2, 12))
        a = tuple(int(rng.integers(0, n)) for n in shape)
        b = tuple(int(rng.integers(lo + 1, n + 1)) for lo, n in zip(a, shape))
        window = _rays_rules.Window(shape, a, b, (0, 0))
        box = _rays_rules.input_box(window, origin, num, 1, "nearest")
        for tab, (lo, hi) in zip(_rays_rules.axis_tables(window, origin, num, 1, "nearest"), box):
            assert tab["i0"].min() >= lo and max(tab["i0"].max(), tab["i1"].max()) < hi


# --------------------------------------------------------------------------- hard inputs


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_integer_extremes_clip_into_range_instead_of_wrapping(xp, impl, dtype):
    info = np.iinfo(dtype)
    img = np.array([[info.max, 0], [0, info.max - 5]], dtype)
    best, _ = gpuvec.ray_max(xp.asarray(img), (1, 1), 2, order=0)
    best = to_np(best)
    hi = int(np.nextafter(float(info.max), 0.0))  # the largest float64 the dtype holds
    assert best[0, 0] == hi and best[1, 1] == hi
    assert (best >= 0).all() if dtype == np.uint64 else best[0, 0] > 0


@pytest.mark.parametrize("volume", [False, True])
def test_constant_cval_outside_the_dtype_range_is_cast_like_every_sample(xp, impl, volume):
    from scipy.ndimage import map_coordinates

    img = np.array([[3, 200, 7], [9, 255, 1], [4, 4, 4]], np.uint8)
    img = img[:, :, None].repeat(2, axis=2) if volume else img
    origin = (5.0, 1.0) + ((0.0,) if volume else ())
    best, arg = gpuvec.ray_max(xp.asarray(img), origin, 4, mode="constant", cval=300.0)
    # scipy casts the cval sample to uint8 (clipped to 255): a sample of 255 inside the image ties with it
    lins = [np.array([np.linspace(i, o, 4) for i in range(n)]) for n, o in zip(img.shape, origin)]
    pts = np.stack(
        np.broadcast_arrays(
            *(
                lin.reshape((1,) * d + (n,) + (1,) * (img.ndim - 1 - d) + (4,))
                for d, (lin, n) in enumerate(zip(lins, img.shape))
            )
        )
    )
    samples = map_coordinates(img, pts.reshape(img.ndim, -1), order=1, mode="constant", cval=300.0).reshape(
        img.shape + (4,)
    )
    assert np.array_equal(to_np(best), samples.max(-1)) and np.array_equal(to_np(arg), samples.argmax(-1))


def test_big_endian_images_give_native_results(impl):
    img = random_image(np.random.default_rng(2), (6, 7), np.float32)
    got = gpuvec.ray_max(img.astype(">f4"), (2, 3), 5)
    want = gpuvec.ray_max(img, (2, 3), 5)
    assert got[0].dtype == np.float32 and got[0].dtype.isnative
    assert_identical(got[0], want[0])
    assert np.array_equal(got[1], want[1])
    dense = gpuvec.ray_max(img.astype(">f4"), (2, 3), None)
    assert_identical(dense[0], gpuvec.ray_max(img, (2, 3), None)[0])


@pytest.mark.parametrize(
    "kwargs,exc,match",
    [
        (dict(origin=(1 + 2j, 1)), TypeError, r"origin\[0\] must be a real number"),
        (dict(origin=(np.complex128(1), 1)), TypeError, r"origin\[0\] must be a real number"),
        (dict(origin=(np.array(1.5), np.int32(1))), None, None),
        (dict(cval=1j, mode="constant"), TypeError, "cval must be a real number"),
        (dict(num=2**70), ValueError, r"num must be an integer in \[2, 4294967296\]"),
        (dict(origin={0: 1, 1: 2}), TypeError, "origin must be a sequence"),
        (dict(origin={1, 2}), TypeError, "origin must be a sequence"),
        (dict(return_coords="no"), TypeError, "return_coords must be True or False"),
        (dict(num=None, origin=(1e10, 1e10)), ValueError, r"dense rays.*about 9e\+10 samples.*pass a fixed num"),
        (dict(num=None, image=np.zeros((2000, 2000)), origin=(1e5, 0)), ValueError, "dense rays"),
    ],
)
def test_hostile_inputs_are_refused_up_front(kwargs, exc, match):
    args = dict(image=np.zeros((3, 3)), origin=(1, 1), num=5)
    args.update(kwargs)
    if exc is None:
        assert gpuvec.ray_max(args.pop("image"), args.pop("origin"), **args)[0].shape == (3, 3)
        return
    with pytest.raises(exc, match=match):
        gpuvec.ray_max(args.pop("image"), args.pop("origin"), **args)


@pytest.mark.parametrize("threads", ["1", "3"])
@pytest.mark.parametrize("shape", [(13, 17), (9, 5, 6)])
def test_numpy_loop_split_over_threads_is_bit_identical(monkeypatch, threads, shape):
    """The numpy loop's row blocks split over GPUVEC_NUM_THREADS threads: same bits as map_coordinates."""
    from scipy import ndimage

    from gpuvec.rays import _numpy as _rays_numpy

    monkeypatch.setenv("GPUVEC_NUM_THREADS", threads)
    monkeypatch.setitem(dispatch._CHUNK_ELEMENTS, "rays_block", (40, 40))  # blocks of a few rows
    img = random_image(np.random.default_rng(len(shape)), shape, np.float32)
    img.flat[::11] = np.nan
    origin = tuple(n / 3 for n in shape)
    window = _rays_rules.Window.whole(shape)
    best, arg = _rays_numpy.streaming(img, origin, 6, 1, "constant", -1.0, np.uint8, window)
    grid = np.indices(shape, dtype=np.float64).reshape(len(shape), -1)
    lines = np.linspace(grid, np.array(origin)[:, None], 6)  # (num, ndim, cells)
    samples = ndimage.map_coordinates(img, lines.transpose(1, 0, 2).reshape(len(shape), -1), order=1,
                                      mode="constant", cval=-1.0).reshape((6,) + shape)  # fmt: skip
    assert_identical(best, samples.max(0))
    assert np.array_equal(arg, samples.argmax(0))


def test_inputs_are_not_mutated(impl):
    img = random_image(np.random.default_rng(3), (5, 6), np.int16)
    before = img.copy()
    gpuvec.ray_max(img, (2, 2), 5, mode="constant", cval=-40000)
    gpuvec.ray_max(img, (2, 2), None)
    assert np.array_equal(img, before)


def test_gpuvec_jit_rejects_a_value_it_does_not_know(monkeypatch):
    monkeypatch.setenv("GPUVEC_JIT", "maybe")
    with pytest.raises(ValueError, match="GPUVEC_JIT must be one of auto .*got 'maybe'"):
        gpuvec.ray_max(np.zeros((3, 3)), (1, 1), 5)
    for off in ("false", "OFF", "no", "0"):
        monkeypatch.setenv("GPUVEC_JIT", off)
        assert not dispatch.compiled_enabled()


def test_numpy_loop_until_its_work_reaches_numbas_load_cost(monkeypatch):
    from gpuvec import rays
    from gpuvec.rays import _dispatch

    def pick(samples, ndim=2):
        return _dispatch.select(np, ndim, 5, 1, "nearest", samples=samples).__name__

    monkeypatch.delenv("GPUVEC_JIT", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "gpuvec.rays._numba", raising=False)  # as in a new process
    monkeypatch.delattr(rays, "_numba", raising=False)
    monkeypatch.setattr(_dispatch, "numpy_loop_samples", 0)
    third = dispatch.NUMBA_PAYS_SAMPLES // 3 + 1
    assert pick(third) == "gpuvec.rays._numpy"
    assert pick(10**9, ndim=3) == "gpuvec.rays._numpy"  # volumes: the numpy loop, not counted
    assert pick(third) == "gpuvec.rays._numpy"
    assert _dispatch.numpy_loop_samples == 2 * third
    assert pick(third) == "gpuvec.rays._numba"  # 3 x third >= NUMBA_PAYS_SAMPLES: the load is paid for
    assert pick(1000) == "gpuvec.rays._numba"  # loaded now
    monkeypatch.delitem(__import__("sys").modules, "gpuvec.rays._numba")
    monkeypatch.delattr(rays, "_numba")
    monkeypatch.setattr(_dispatch, "numpy_loop_samples", 0)
    assert pick(dispatch.NUMBA_PAYS_SAMPLES) == "gpuvec.rays._numba"  # one call that repays the load itself
    assert _dispatch.select(np, 3, 5, 1, "nearest", samples=10**9).__name__ == "gpuvec.rays._numpy"
    assert _dispatch.select(np, 2, 5, 3, "nearest").__name__ == "gpuvec.rays._xp"
    monkeypatch.setenv("GPUVEC_JIT", "off")
    assert _dispatch.select(np, 2, None, 1, "nearest").__name__ == "gpuvec.rays._xp"


def test_numba_cache_is_loaded_by_a_new_process(tmp_path):
    pytest.importorskip("numba")
    import subprocess
    import sys

    script = (
        "import numpy as np, gpuvec; from gpuvec.rays import _numba as m\n"
        "img = np.ones((4, 5), np.float32)\n"
        "for num in (3, m.CELL_LOOP_MAX_NUM + 1, None): gpuvec.ray_max(img, (1, 2), num)\n"
        "print(sum(sum(f.stats.cache_hits.values()) for f in (m.cells_loop, m.rows_loop, m.dense_loop)))\n"
    )
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path), GPUVEC_JIT="1")
    runs = [
        subprocess.run(
            [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
        ).stdout.strip()
        for _ in range(2)
    ]
    assert runs == ["0", "3"], runs  # the first process compiles and saves; the second loads the three loops


def _run_script(script, **env):
    import subprocess
    import sys

    env = dict(os.environ, GPUVEC_JIT="1", **env)
    return subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)


def test_numba_loops_from_a_thread_pool_give_the_main_threads_results():
    """Pool threads run the numba loops one thread each, concurrently (no numba threading layer is
    involved: its 'workqueue' layer aborted the process on concurrent parallel launches)."""
    pytest.importorskip("numba")
    script = (
        "import numpy as np, gpuvec\n"
        "from concurrent.futures import ThreadPoolExecutor\n"
        "img = np.random.default_rng(0).random((60, 50))\n"
        "def call(i):  # both fixed-num loops and the dense loop\n"
        "    return gpuvec.ray_max(img, (i, 4), num=(5, 12, None)[i % 3])[0]\n"
        "with ThreadPoolExecutor(4) as ex:\n"
        "    pooled = list(ex.map(call, range(18)))\n"
        "print(all(np.array_equal(p, call(i)) for i, p in enumerate(pooled)))\n"
    )
    run = _run_script(script, NUMBA_THREADING_LAYER="workqueue")
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["True"]


def test_numba_loops_run_in_forked_children_after_the_parent_ran_them():
    """multiprocessing's fork after a ray_max call (numba's OpenMP layer made such children abort)."""
    pytest.importorskip("numba")
    script = (
        "import multiprocessing as mp, numpy as np, gpuvec\n"
        "img = np.random.default_rng(0).random((60, 50))\n"
        "def call(i):  # both fixed-num loops and the dense loop\n"
        "    return float(gpuvec.ray_max(img, (i, 4), num=(5, 12, None)[i % 3])[0].sum())\n"
        "if __name__ == '__main__':\n"
        "    here = [call(i) for i in range(6)]\n"
        "    with mp.get_context('fork').Pool(2) as pool:\n"
        "        print(pool.map(call, range(6)) == here)\n"
    )
    run = _run_script(script)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["True"]


def test_gpu_kernel_agrees_with_the_cupyx_reference(cp):
    """On the device: the fused kernel against the namespace reference (cupyx's map_coordinates), to rounding."""
    rng = np.random.default_rng(13)
    for dtype in (np.float64, np.float32, np.uint8):
        img = cp.asarray(random_image(rng, (61, 47), dtype))
        for origin, order, mode in [((30, 20), 1, "nearest"), ((-5.5, 50.25), 1, "constant"), ((60, 0), 0, "nearest")]:
            kernel = gpuvec.ray_max(img, origin, 9, order=order, mode=mode, cval=2.0)
            with compiled_paths(False):
                reference = gpuvec.ray_max(img, origin, 9, order=order, mode=mode, cval=2.0)
            np.testing.assert_allclose(
                to_np(kernel[0]).astype(float), to_np(reference[0]).astype(float), rtol=1e-6, atol=1
            )
            assert (to_np(kernel[1]) == to_np(reference[1])).mean() > 0.99  # argmax may flip on near-ties
