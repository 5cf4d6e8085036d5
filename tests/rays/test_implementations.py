"""ray_max's implementation matrix: each implementation against the reference, and the dispatch choice.

gpuvec/rays/_dispatch.py (``select``) picks one implementation per call. The reference is scipy's
``map_coordinates`` followed by max/argmax (``rays_accepted_answer``, gpuvec/tools/baselines.py), which
every implementation but cupyx's matches bit for bit. Where each cell runs:

- numpy x ``_numba`` (2-D, order 0/1, nearest/constant, fixed num and dense): the ``impl="compiled"``
  cell of every test taking the ``xp`` and ``impl`` fixtures of tests/conftest.py (test_rays.py,
  test_volumes_and_dense.py, test_windows.py, test_hard_inputs.py);
  test_property_matches_accepted_answer (compiled on and off).
- numpy x ``_numpy`` (the blocked loop; 2-D with GPUVEC_JIT=0, volumes always): the
  ``impl="reference"`` cell of those tests, and their volumes in both cells;
  test_property_matches_accepted_answer; test_numpy_loop_split_over_threads_is_bit_identical.
- numpy x ``_xp`` (map_coordinates: other orders and modes, dense rays with GPUVEC_JIT=0 or beyond 2-D):
  test_general_path_matches_map_coordinates; the dense tests' ``impl="reference"`` cell.
- cupy x ``_cuda`` (the fused kernel: 2-D, order 0/1, nearest/constant, fixed num): the
  ``xp=cupy, impl="compiled"`` cell; test_gpu_kernel_matches_cpu_reference_on_a_medium_image (against
  the numpy loop); test_gpu_kernel_agrees_with_the_cupyx_reference (against ``_xp`` on cupy).
- cupy x ``_xp`` (cupyx's map_coordinates: volumes, dense rays, other orders and modes, and 2-D with
  GPUVEC_JIT=0): the ``xp=cupy`` cell of the volume and dense tests (to rounding);
  test_general_path_runs_on_cupy. The ``impl`` fixture skips ``xp=cupy, impl="reference"``: cupyx is not
  bit-identical to scipy, and test_gpu_kernel_agrees_with_the_cupyx_reference compares it with the kernel.
- the choice itself: test_numpy_loop_until_its_work_reaches_numbas_load_cost (``select``, numba's load
  paid by the numpy loop's samples), test_gpuvec_jit_rejects_a_value_it_does_not_know.
- dask: every block takes the in-memory call's choice; tests/rays/test_dask.py runs the blocks with
  GPUVEC_JIT 0 and 1 and checks that blocks do not count towards numba's load.

The numba loops in a new process, a thread pool and forked children: test_processes_and_threads.py.
Every cupy cell skips without a GPU (GPUVEC_REQUIRE_GPU=1 makes that a failure).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gpuvec
from gpuvec._core import dispatch
from gpuvec.rays import _rules as _rays_rules
from gpuvec.tools.baselines import rays_accepted_answer
from tests.helpers import assert_identical, assert_namespace, compiled_paths, random_image, to_np

# --------------------------------------------------------------------------- numba and the numpy loop


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


# --------------------------------------------------------------------------- _xp (map_coordinates, cupyx)


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


# --------------------------------------------------------------------------- the CUDA kernel


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


# --------------------------------------------------------------------------- the dispatch choice


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
    assert pick(10_000) == "gpuvec.rays._numba"  # loaded now
    monkeypatch.delitem(__import__("sys").modules, "gpuvec.rays._numba")
    monkeypatch.delattr(rays, "_numba")
    monkeypatch.setattr(_dispatch, "numpy_loop_samples", 0)
    assert pick(dispatch.NUMBA_PAYS_SAMPLES) == "gpuvec.rays._numba"  # one call that repays the load itself
    assert _dispatch.select(np, 3, 5, 1, "nearest", samples=10**9).__name__ == "gpuvec.rays._numpy"
    assert _dispatch.select(np, 2, 5, 3, "nearest").__name__ == "gpuvec.rays._xp"
    monkeypatch.setenv("GPUVEC_JIT", "off")
    assert _dispatch.select(np, 2, None, 1, "nearest").__name__ == "gpuvec.rays._xp"


def test_tiny_images_take_map_coordinates_in_one_call_numba_loaded_or_not(monkeypatch):
    from gpuvec import rays
    from gpuvec.rays import _dispatch, _xp
    from gpuvec.tools.baselines import rays_accepted_answer

    monkeypatch.delenv("GPUVEC_JIT", raising=False)
    monkeypatch.delitem(__import__("sys").modules, "gpuvec.rays._numba", raising=False)  # as in a new process
    monkeypatch.delattr(rays, "_numba", raising=False)
    monkeypatch.setattr(_dispatch, "numpy_loop_samples", 0)
    tiny = dispatch.XP_BELOW_SAMPLES
    assert _dispatch.select(np, 2, 5, 1, "nearest", samples=tiny).__name__ == "gpuvec.rays._xp"
    assert _dispatch.numpy_loop_samples == 0  # a tiny call counts nothing towards numba's load
    # until numba is loaded, what map_coordinates takes in one call goes there too, paying its samples
    assert _dispatch.select(np, 2, 5, 1, "nearest", samples=tiny + 1).__name__ == "gpuvec.rays._xp"
    one_call = _xp.ONE_CALL_POINTS
    assert _dispatch.select(np, 2, 5, 1, "nearest", samples=one_call + 1).__name__ == "gpuvec.rays._numpy"
    assert _dispatch.numpy_loop_samples == tiny + 1 + one_call + 1
    import gpuvec.rays._numba  # loaded: the one-call path still wins for tiny calls

    assert _dispatch.select(np, 2, 5, 1, "nearest", samples=tiny).__name__ == "gpuvec.rays._xp"
    assert _dispatch.select(np, 2, 5, 1, "nearest", samples=tiny + 1).__name__ == "gpuvec.rays._numba"
    monkeypatch.setenv("GPUVEC_JIT", "1")
    assert _dispatch.select(np, 2, 5, 1, "nearest", samples=tiny).__name__ == "gpuvec.rays._numba"
    monkeypatch.setenv("GPUVEC_JIT", "0")
    assert _dispatch.select(np, 2, 5, 1, "nearest", samples=tiny).__name__ == "gpuvec.rays._numpy"
    monkeypatch.delenv("GPUVEC_JIT")
    rng = np.random.default_rng(5)
    for shape, origin in (((8, 8), (4, 2)), ((16, 9), (-3.5, 20.25)), ((6, 6), (3, 3))):
        img = rng.integers(0, 9, shape) if shape == (6, 6) else rng.random(shape)
        got = gpuvec.ray_max(img, origin, 5)
        want = rays_accepted_answer(img, *origin)
        assert got[1].dtype == np.uint8 and got[0].dtype == img.dtype
        np.testing.assert_array_equal(got[0], want[0])
        np.testing.assert_array_equal(got[1], want[1])
        # the one-call path against the per-sample path (both map_coordinates; every point is computed alone)
        monkeypatch.setattr(_xp, "ONE_CALL_POINTS", 0)
        per_step = gpuvec.ray_max(img, origin, 5)
        monkeypatch.setattr(_xp, "ONE_CALL_POINTS", 1 << 14)
        np.testing.assert_array_equal(got[0], per_step[0])
        np.testing.assert_array_equal(got[1], per_step[1])


@pytest.mark.parametrize("mode", ["nearest", "constant", "reflect", "wrap"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_higher_orders_take_every_sample_of_a_block_in_one_call(monkeypatch, mode, dtype):
    """order > 1 prefilters the whole image in every map_coordinates call: a block's samples go in one call
    (one prefilter per block, not per sample index), bit-identical to the accepted answer's single call."""
    from gpuvec._core import dispatch as core_dispatch
    from gpuvec.rays import _xp
    from gpuvec.tools.baselines import rays_accepted_answer

    rng = np.random.default_rng(9)
    img = (rng.random((23, 17)) * 200).astype(dtype)
    img[3, 4] = np.nan
    want = rays_accepted_answer(img, -3.2, 20.7, 7, order=3, mode=mode, cval=1.5)
    monkeypatch.setattr(_xp, "ONE_CALL_POINTS", 0)
    monkeypatch.setitem(core_dispatch._CHUNK_ELEMENTS, "rays_points", (300, 300))  # blocks of 2 rows
    calls = []
    real = _xp.ndimage_for(np).map_coordinates
    monkeypatch.setattr("scipy.ndimage.map_coordinates", lambda *a, **k: calls.append(1) or real(*a, **k))
    got = gpuvec.ray_max(img, (-3.2, 20.7), 7, order=3, mode=mode, cval=1.5)
    np.testing.assert_array_equal(got[0], want[0])
    np.testing.assert_array_equal(got[1], want[1])
    assert len(calls) == 12  # 23 rows in blocks of 2: one call each (it was 7 per block, one per sample index)


@pytest.mark.parametrize("loaded", [False, True], ids=["numba-not-loaded", "numba-loaded"])
@pytest.mark.parametrize(("shape", "stop", "num"), [((13, 17), (4, 5), 6), ((100, 100), (60, 60), 3)])
def test_a_region_never_takes_the_whole_image_path(monkeypatch, loaded, shape, stop, num):
    """ray_max_window on a region of the image (the dask blocks' way in), GPUVEC_JIT unset: small calls go
    to map_coordinates only on the whole image; a region takes a loop, and equals the whole-image call."""
    import sys

    from gpuvec import rays
    from gpuvec.rays import _dispatch
    from gpuvec.rays import _rules as rules

    monkeypatch.delenv("GPUVEC_JIT", raising=False)
    if not loaded:
        monkeypatch.delitem(sys.modules, "gpuvec.rays._numba", raising=False)
        monkeypatch.delattr(rays, "_numba", raising=False)
        monkeypatch.setattr(_dispatch, "numpy_loop_samples", 0)
    img = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    origin = (0.5 * shape[0], 3.25)
    window = rules.Window(shape, (0, 0), stop, (0, 0))
    box = rules.input_box(window, origin, num, 1, "nearest")
    region = img[tuple(slice(a, b) for a, b in box)]
    best, arg = _dispatch.ray_max_window(
        region, origin, num, 1, "nearest", -1.0, False, window._replace(offset=tuple(a for a, _ in box))
    )
    want = gpuvec.ray_max(img, origin, num, mode="nearest")
    np.testing.assert_array_equal(best, want[0][: stop[0], : stop[1]])
    np.testing.assert_array_equal(arg, want[1][: stop[0], : stop[1]])


@pytest.mark.parametrize("dtype", [np.float64, np.uint8])
@pytest.mark.parametrize("threads", ["1", None])
def test_spline_blocks_on_threads_match_map_coordinates(monkeypatch, dtype, threads):
    """Orders above 1 take map_coordinates a block of rows at a time, the blocks on the threads (scipy
    releases the GIL): the accepted answer's bits on one thread and on all of them."""
    from gpuvec._core import threads as _threads

    if threads is None:
        monkeypatch.delenv("GPUVEC_NUM_THREADS", raising=False)
    else:
        monkeypatch.setenv("GPUVEC_NUM_THREADS", threads)
    calls = []
    run_parallel = _threads.run_parallel
    monkeypatch.setattr(
        "gpuvec.rays._xp.run_parallel", lambda fn, spans, n: calls.append((len(spans), n)) or run_parallel(fn, spans, n)
    )
    rng = np.random.default_rng(7)
    img = random_image(rng, (64, 40), dtype)
    want = rays_accepted_answer(img, 30.5, -3.0, 20, order=3, mode="mirror")
    got = gpuvec.ray_max(img, (30.5, -3.0), 20, order=3, mode="mirror")
    assert_identical(got[0], want[0])
    assert np.array_equal(got[1], want[1])
    assert calls and calls[0][1] == _threads.worker_threads() and calls[0][0] >= calls[0][1]
