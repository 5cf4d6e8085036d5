"""ray_max on hard inputs: integer extremes, out-of-range cval, big-endian images, hostile arguments,
inputs left unchanged."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import gpuvec
from gpuvec.tools.baselines import rays_accepted_answer
from tests.helpers import assert_identical, compiled_paths, random_image, to_np

INT_DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64]


@pytest.mark.parametrize("dtype", [np.int64, np.uint64])
def test_integer_extremes_saturate_instead_of_wrapping(xp, impl, dtype):
    info = np.iinfo(dtype)
    img = np.array([[info.max, 0], [0, info.max - 5]], dtype)
    best, _ = gpuvec.ray_max(xp.asarray(img), (1, 1), 2, order=0)
    best = to_np(best)
    # float64 rounds both values to 2**63 (2**64): past the dtype's max, so stored as the max
    assert best[0, 0] == info.max and best[1, 1] == info.max


def _extreme_image(rng, shape, dtype):
    """Integers at both ends of the dtype's range (and zeros): the values float64 rounds past the limits."""
    info = np.iinfo(dtype)
    lo, hi = int(info.min), int(info.max)
    span = min(3000, (hi - lo) // 4)
    choices = [lambda: hi - int(rng.integers(span)), lambda: lo + int(rng.integers(span)), lambda: 0,
               lambda: hi, lambda: lo]  # fmt: skip
    values = [choices[int(k)]() for k in rng.integers(0, len(choices), int(np.prod(shape)))]
    return np.array(values, dtype=object).reshape(shape).astype(dtype)


def _saturating_answer(img, origin, num, order, mode, cval):
    """The accepted answer's samples in float64 (map_coordinates' own arithmetic), cast as gpuvec documents:
    rounded half away from zero, clipped to the dtype, saturating past its max. Also where scipy's own cast
    is defined (no sample rounds past the dtype's max)."""
    from scipy import ndimage

    def float_samples(m, coords, **kw):
        return ndimage.map_coordinates(m, coords, output=np.float64, **kw)

    rows, cols = img.shape
    info = np.iinfo(img.dtype)
    lin = [np.array([np.linspace(i, o, num) for i in range(n)]) for n, o in zip(img.shape, origin)]
    coords = np.vstack((np.tile(lin[0], cols).ravel(), np.tile(lin[1].ravel(), rows)))
    t = float_samples(img, coords, order=order, mode=mode, cval=cval).reshape(rows, cols, num)
    t = np.trunc(np.where(t > 0, t + 0.5, t - 0.5 if info.min < 0 else 0.0))
    t = np.clip(t, float(info.min), float(info.max))
    past = t > float(np.nextafter(float(info.max), 0.0)) if float(info.max) > info.max else np.zeros(t.shape, bool)
    samples = np.where(past, 0, t).astype(img.dtype)
    samples[past] = info.max
    return samples.max(-1), samples.argmax(-1), ~past.any(-1)


def _every_implementation(img, origin, num, order, mode, cval):
    """(name, max, argmax) of each CPU implementation that takes this call (2-D, order 0/1)."""
    from gpuvec.rays import _rules, _xp

    window = _rules.Window.whole(img.shape)
    with compiled_paths(True):  # the numba loops, fixed rays and dense
        yield ("numba", *gpuvec.ray_max(img, origin, num, order=order, mode=mode, cval=cval))
    with compiled_paths(False):  # the blocked numpy loop (fixed rays), map_coordinates (dense)
        yield ("numpy", *gpuvec.ray_max(img, origin, num, order=order, mode=mode, cval=cval))
    arg_dtype = np.uint32
    if num is None:
        yield ("xp", *_xp.dense(img, origin, order, mode, cval, arg_dtype, window)[:2])
    else:
        yield ("xp", *_xp.streaming(img, origin, num, order, mode, cval, arg_dtype, window))


@pytest.mark.parametrize("dtype", INT_DTYPES)
@pytest.mark.parametrize("order", [0, 1])
def test_integer_extremes_agree_across_implementations_and_with_scipy(dtype, order):
    """Every CPU implementation (numba, the numpy loop, map_coordinates) on images at the dtype's limits: the
    same bits as scipy's float64 samples cast by gpuvec's rule, and as the accepted answer wherever scipy's
    own cast is defined (it overflows past the max of int64 and uint64)."""
    info = np.iinfo(dtype)
    rng = np.random.default_rng(np.dtype(dtype).itemsize + order)
    img = _extreme_image(rng, (9, 8), dtype)
    cases = [((4.0, 3.5), 5, "nearest", 0.0), ((-2.0, 9.25), 12, "constant", 1e30), ((3.0, 2.0), 4, "constant", -7.0)]
    for origin, num, mode, cval in cases:
        want, want_arg, defined = _saturating_answer(img, origin, num, order, mode, cval)
        seed_max, seed_arg = rays_accepted_answer(img, *origin, num, order=order, mode=mode, cval=cval)
        assert np.array_equal(want[defined], seed_max[defined]) and np.array_equal(want_arg[defined], seed_arg[defined])
        for name, best, arg in _every_implementation(img, origin, num, order, mode, cval):
            assert best.dtype == img.dtype, name
            assert np.array_equal(best, want), (name, origin, np.argwhere(best != want)[:3])
            assert np.array_equal(arg, want_arg), (name, origin)
    for fill, origin, num in itertools.product((info.min, info.max), [(2.0, 3.0), (0.25, 5.9)], (5, 12, None)):
        # a constant image; at (0.25, 5.9) one uint64 sample of order 1 sums to 2**64 + 4096, past the clip
        img = np.full((5, 6), fill, dtype)
        results = list(_every_implementation(img, origin, num, order, "nearest", 0.0))
        for name, best, arg in results:
            assert np.array_equal(best, results[0][1]) and np.array_equal(arg, results[0][2]), (name, origin, num)
            # order 0 samples the image's values; order 1 too where the cell's own sample (weight 1) is the
            # max: a weighted sum of int64's min can land a float64 step above it, as in scipy
            if order == 0 or fill == info.max:
                assert (best == fill).all(), (name, origin, num, np.unique(best))


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


@pytest.mark.filterwarnings("error")
@pytest.mark.parametrize("cval", [1e300, -1e300])
@pytest.mark.parametrize("num", [5, None])
def test_float32_cval_beyond_its_range_is_inf_without_a_warning(xp, impl, cval, num):
    """cval takes the image dtype's cast like every sample: float32 holds 1e300 as inf, as scipy's C cast
    gives; the cast is documented, so gpuvec warns of no overflow (warnings are errors here)."""
    img = random_image(np.random.default_rng(4), (5, 6), np.float32)
    origin = (-3.0, 8.5)  # every ray leaves the image
    best, arg = gpuvec.ray_max(xp.asarray(img), origin, num, mode="constant", cval=cval)
    if num is not None:
        want = rays_accepted_answer(img, *origin, num, mode="constant", cval=cval)
        assert_identical(best, want[0])
        assert np.array_equal(to_np(arg), want[1])
    assert to_np(best).dtype == np.float32
    assert np.isinf(to_np(best)).any() if cval > 0 else np.isfinite(to_np(best)).all()
    volume = gpuvec.ray_max(xp.asarray(img[:, :, None]), origin + (0.0,), num, mode="constant", cval=cval)
    assert np.array_equal(to_np(volume[0])[:, :, 0], to_np(best))


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


# --------------------------------------------------------------------------- round 3 (#23): hostile cases


def test_hostile_arguments_are_named():
    with pytest.raises(TypeError, match="origin must be a sequence of 2 finite numbers"):
        gpuvec.ray_max(np.ones((4, 4)), np.array(1.0))
    with pytest.raises(TypeError, match="image must have an integer, float32 or float64 dtype; got float128"):
        gpuvec.ray_max(np.ones((4, 4), np.longdouble), (1, 1))
    with pytest.raises(ValueError, match="image must be a rectangular array"):
        gpuvec.ray_max([[1, 2], [3]], (0, 0))


@pytest.mark.parametrize(("shape", "num"), [((2, 2), 2**32), ((100, 100), 10**7)])
def test_a_fixed_num_beyond_what_one_call_runs_is_refused_up_front(shape, num):
    with pytest.raises(ValueError, match=re.escape(f"num={num} over an image of shape {tuple(shape)} would take")):
        gpuvec.ray_max(np.ones(shape), (1, 1), num=num)


@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.uint32, np.int32, np.int64])
def test_spline_overshoot_is_clipped_to_the_dtype(dtype):
    """Order 3 overshoots the image's range next to steps: the samples are rounded half away from zero and
    clipped to the dtype (cast to it directly up to 32 bits, through float64 for 64), never wrapped, with the
    first argmax of the clipped values."""
    info = np.iinfo(dtype)
    img = np.zeros((12, 10), dtype)
    img[3:9, 2:7] = info.max  # a step from the max to the min: cubic splines overshoot past both
    img[3:9, 7:10] = info.min
    img[5, 4] = info.min
    for origin, num, mode in [((6.0, 4.5), 7, "nearest"), ((-3.0, 11.0), 20, "reflect")]:
        want, want_arg, _ = _saturating_answer(img, origin, num, 3, mode, 0.0)
        best, arg = gpuvec.ray_max(img, origin, num, order=3, mode=mode)
        assert best.dtype == img.dtype
        assert np.array_equal(best, want) and np.array_equal(arg, want_arg), (origin, np.argwhere(best != want)[:3])
    from scipy.ndimage import map_coordinates

    raw = map_coordinates(img, np.indices(img.shape).reshape(2, -1) + 0.5, output=np.float64, order=3, mode="nearest")
    assert raw.max() > float(info.max) and raw.min() < float(info.min)  # the overshoot is there to clip


@pytest.mark.parametrize("order", [2, 3])
@pytest.mark.parametrize("dtype", [np.int16, np.uint8])
def test_grid_constant_cval_outside_an_integer_dtype_is_clipped_first(order, dtype):
    """scipy pads the image with cval in its dtype before the spline prefilter ('grid-constant', order > 1):
    a cval outside the dtype was scipy's OverflowError; it is clipped to the dtype first (as every sample
    is), so the result is the accepted answer's with the clipped cval."""
    info = np.iinfo(dtype)
    img = np.arange(30, dtype=dtype).reshape(5, 6)
    for cval, clipped in [(1e6, float(info.max)), (-1e6, float(info.min))]:
        got = gpuvec.ray_max(img, (-2.0, 1.5), 6, order=order, mode="grid-constant", cval=cval)
        want = rays_accepted_answer(img, -2.0, 1.5, 6, order=order, mode="grid-constant", cval=clipped)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
