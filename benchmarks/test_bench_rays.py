"""ray_max: the seed's loop (on a sub-block), the accepted answer, gpuvec on numpy and cupy."""

from __future__ import annotations

import numpy as np
import pytest

import gpuvec
from benchmarks.baselines import rays_accepted_answer, rays_seed_loop
from benchmarks.conftest import run, size

SIZES = [size(500, 64), size(1000, 96), size(3000, 128)]
# The accepted answer's (2, rows*cols*num) float64 coordinates: skip it past 4 GB.
ACCEPTED_LIMIT = 4 << 30


def image(n):
    return np.random.default_rng(0).random((n, n))


@pytest.mark.parametrize("num", [5, 50])
@pytest.mark.parametrize("n", SIZES)
def test_gpuvec(benchmark, backend, n, num):
    """gpuvec's default path: the CuPy kernel, or on the CPU the numba loop where numba is installed."""
    img = backend.asarray(image(n))
    benchmark.group = f"rays {n}x{n} num={num}"
    run(benchmark, gpuvec.ray_max, img, (n // 2, n // 3), num)


@pytest.mark.parametrize("num", [5, 50])
@pytest.mark.parametrize("n", SIZES)
def test_gpuvec_numpy_streaming(benchmark, monkeypatch, n, num):
    """The plain-numpy streaming reference (GPUVEC_JIT=0)."""
    monkeypatch.setenv("GPUVEC_JIT", "0")
    benchmark.group = f"rays {n}x{n} num={num}"
    run(benchmark, gpuvec.ray_max, image(n), (n // 2, n // 3), num)


@pytest.mark.parametrize("num", [5, 50])
@pytest.mark.parametrize("n", SIZES)
def test_accepted_answer(benchmark, n, num):
    if 2 * 8 * n * n * num > ACCEPTED_LIMIT:
        pytest.skip(f"needs {2 * 8 * n * n * num / 2**30:.0f} GB for its coordinates")
    benchmark.group = f"rays {n}x{n} num={num}"
    run(benchmark, rays_accepted_answer, image(n), n // 2, n // 3, num, rounds=1)


@pytest.mark.parametrize("num", [5, 50])
@pytest.mark.parametrize("n", SIZES)
def test_accepted_answer_cupyx(benchmark, backend, n, num):
    if backend is np:
        pytest.skip("the cupyx port runs on the GPU only")
    if 2 * 8 * n * n * num > ACCEPTED_LIMIT:
        pytest.skip("coordinates past 4 GB")
    import cupyx.scipy.ndimage as cnd

    benchmark.group = f"rays {n}x{n} num={num}"
    run(benchmark, rays_accepted_answer, backend.asarray(image(n)), n // 2, n // 3, num, map_coordinates=cnd.map_coordinates, xp=backend)


@pytest.mark.parametrize("num", [5])
def test_seed_loop_40x40_block(benchmark, num):
    """The asker's loop on a 40x40 image: multiply the per-cell time by rows*cols to extrapolate."""
    benchmark.group = "rays seed loop 40x40 (per 1600 cells)"
    run(benchmark, rays_seed_loop, image(40), 20, 13, num, rounds=1)
