"""Rotation checks on a stack of 3x3 (and 8x8) matrices: seed answer looped, batched numpy, gpuvec."""

from __future__ import annotations

import numpy as np
import pytest

import gpuvec
from benchmarks.baselines import is_rotation_batched_numpy, is_rotation_seed
from benchmarks.conftest import run, size

N3 = size(10_000_000, 20_000)


def stack(n, count):
    rng = np.random.default_rng(0)
    Q, _ = np.linalg.qr(rng.normal(size=(min(count, 100_000), n, n)))
    return np.resize(Q, (count, n, n))


@pytest.fixture(scope="module")
def rotations3():
    return stack(3, N3)


def test_gpuvec_3x3(benchmark, backend, rotations3):
    R = backend.asarray(rotations3)
    benchmark.group = f"is_rotation {N3} 3x3"
    run(benchmark, gpuvec.is_rotation, R)


def test_batched_numpy_3x3(benchmark, rotations3):
    benchmark.group = f"is_rotation {N3} 3x3"
    run(benchmark, is_rotation_batched_numpy, rotations3, rounds=1)


def test_seed_answer_looped_3x3_100k(benchmark, rotations3):
    """The seed's allclose answer in a Python loop over 100,000 matrices (scale by N/1e5)."""
    benchmark.group = "is_rotation seed loop 100k 3x3"
    R = rotations3[: size(100_000, 2_000)]
    run(benchmark, lambda: [is_rotation_seed(r) for r in R], rounds=1)


@pytest.mark.parametrize("method", ["gpuvec", "batched_numpy"])
def test_general_8x8(benchmark, backend, method):
    if method == "batched_numpy" and backend is not np:
        pytest.skip("numpy baseline runs once, on the CPU")
    R = stack(8, size(1_000_000, 5_000))
    benchmark.group = "is_rotation 8x8"
    if method == "gpuvec":
        run(benchmark, gpuvec.is_rotation, backend.asarray(R))
    else:
        run(benchmark, is_rotation_batched_numpy, R, rounds=1)
