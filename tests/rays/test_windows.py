"""Block-level ray_max (output windows, the dask path's blocks): each block from its input box equals the
same cells of the whole-image call."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import gpuvec
from gpuvec.rays import _rules as _rays_rules
from tests.helpers import assert_identical, random_image, to_np


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
