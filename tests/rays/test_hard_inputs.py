"""ray_max on hard inputs: integer extremes, out-of-range cval, big-endian images, hostile arguments,
inputs left unchanged."""

from __future__ import annotations

import numpy as np
import pytest

import gpuvec
from tests.helpers import assert_identical, random_image, to_np


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


def test_inputs_are_not_mutated(impl):
    img = random_image(np.random.default_rng(3), (5, 6), np.int16)
    before = img.copy()
    gpuvec.ray_max(img, (2, 2), 5, mode="constant", cval=-40000)
    gpuvec.ray_max(img, (2, 2), None)
    assert np.array_equal(img, before)
