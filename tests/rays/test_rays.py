"""ray_max: exactness against the seed's accepted answer, every dtype and shape, modes, errors, known answers.

Volumes, channels and dense rays: test_volumes_and_dense.py; output windows: test_windows.py; hard inputs:
test_hard_inputs.py; each implementation against the reference and the dispatch: test_implementations.py.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gpuvec
from gpuvec._core import dispatch
from gpuvec.rays import _rules as _rays_rules
from gpuvec.tools.baselines import SEED_RAY_DIST as SEED_DIST
from gpuvec.tools.baselines import SEED_RAY_IMAGE as SEED_M
from gpuvec.tools.baselines import SEED_RAY_MAX as SEED_MAX
from gpuvec.tools.baselines import rays_accepted_answer, rays_seed_loop
from tests.helpers import assert_identical, assert_namespace, random_image, to_np


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
