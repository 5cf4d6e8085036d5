"""normal(means, stds, size=(1000, N, 3)): numpy's broadcast Generator.normal, the seed's loop, gpuvec."""

from __future__ import annotations

import numpy as np

import gpuvec
from benchmarks.baselines import normal_seed_broadcast, normal_seed_loop
from benchmarks.conftest import run, size

N = size(1000, 50)


def params():
    rng = np.random.default_rng(1)
    return rng.random((N, 3)), rng.random((N, 3)) + 0.1


def test_gpuvec_normal(benchmark, backend):
    means, stds = (backend.asarray(a) for a in params())
    rng = gpuvec.random.default_rng(0, backend=backend.__name__)
    benchmark.group = f"normal (1000, {N}, 3)"
    run(benchmark, rng.normal, means, stds, size=(1000, N, 3))
    benchmark.extra_info["samples_per_s"] = 3000 * N / benchmark.stats.stats.median


def test_numpy_broadcast_normal(benchmark):
    means, stds = params()
    benchmark.group = f"normal (1000, {N}, 3)"
    run(benchmark, normal_seed_broadcast, np.random.default_rng(0), means, stds)
    benchmark.extra_info["samples_per_s"] = 3000 * N / benchmark.stats.stats.median


def test_seed_loop(benchmark):
    means, stds = params()
    benchmark.group = f"normal (1000, {N}, 3)"
    run(benchmark, normal_seed_loop, means, stds, rounds=1)


def test_gpuvec_multivariate_normal(benchmark, backend):
    rng = gpuvec.random.default_rng(0, backend=backend.__name__)
    mean = backend.zeros((N, 3))
    cov = backend.asarray(np.broadcast_to(np.eye(3) * 2 + 0.5, (N, 3, 3)).copy())
    benchmark.group = f"multivariate_normal 1000 x {N} x 3"
    run(benchmark, rng.multivariate_normal, mean, cov, size=1000)
