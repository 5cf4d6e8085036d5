"""ray_max beyond one 2-D image and a fixed num: volumes, channels, coordinates, dense rays."""

from __future__ import annotations

import numpy as np
import pytest

import gpuvec
from gpuvec._core import dispatch
from gpuvec.tools.baselines import rays_accepted_answer
from tests.helpers import assert_identical, assert_namespace, random_image, to_np


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
