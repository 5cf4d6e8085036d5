"""GaussianMixture: one big problem and 1000 small ones, sklearn against gpuvec, from the same starts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import gpuvec
from benchmarks.conftest import run, size

sklearn_mixture = pytest.importorskip("sklearn.mixture")

BIG_N, BIG_D, BIG_K = size(1_000_000, 5_000), 8, 16
SMALL_B, SMALL_N, SMALL_D, SMALL_K = size(1000, 20), 500, 3, 4


def big_problem():
    rng = np.random.default_rng(0)
    centers = rng.normal(0, 5, (BIG_K, BIG_D))
    X = centers[rng.integers(0, BIG_K, BIG_N)] + rng.normal(size=(BIG_N, BIG_D))
    start = dict(weights_init=np.full(BIG_K, 1 / BIG_K), means_init=X[rng.choice(BIG_N, BIG_K, replace=False)], precisions_init=np.broadcast_to(np.eye(BIG_D), (BIG_K, BIG_D, BIG_D)).copy())
    return X, start


def small_problems():
    rng = np.random.default_rng(1)
    X = np.stack([np.concatenate([rng.normal(0, 1, (SMALL_N // 2, SMALL_D)), rng.normal(3, 1, (SMALL_N // 2, SMALL_D))]) for _ in range(SMALL_B)])
    means = X[:, rng.choice(SMALL_N, SMALL_K, replace=False)]
    start = dict(weights_init=np.full((SMALL_B, SMALL_K), 1 / SMALL_K), means_init=means, precisions_init=np.broadcast_to(np.eye(SMALL_D), (SMALL_B, SMALL_K, SMALL_D, SMALL_D)).copy())
    return X, start


def quiet(fn):
    def wrapped(*args, **kwargs):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn(*args, **kwargs)

    return wrapped


@pytest.fixture(scope="module")
def big():
    return big_problem()


@pytest.fixture(scope="module")
def small():
    return small_problems()


def test_big_sklearn(benchmark, big):
    X, start = big
    benchmark.group = f"gmm N={BIG_N} D={BIG_D} K={BIG_K}, 5 iterations"
    run(benchmark, quiet(lambda: sklearn_mixture.GaussianMixture(BIG_K, max_iter=5, tol=0, **start).fit(X)), rounds=1)


def test_big_gpuvec(benchmark, backend, big):
    X, start = big
    Xb = backend.asarray(X)
    benchmark.group = f"gmm N={BIG_N} D={BIG_D} K={BIG_K}, 5 iterations"
    run(benchmark, quiet(lambda: gpuvec.GaussianMixture(BIG_K, max_iter=5, tol=0, **start).fit(Xb)), rounds=1)


def test_small_sklearn_loop(benchmark, small):
    X, start = small

    def loop():
        for b in range(SMALL_B):
            sklearn_mixture.GaussianMixture(SMALL_K, weights_init=start["weights_init"][b], means_init=start["means_init"][b], precisions_init=start["precisions_init"][b]).fit(X[b])

    benchmark.group = f"gmm {SMALL_B} problems N={SMALL_N} D={SMALL_D} K={SMALL_K}"
    run(benchmark, quiet(loop), rounds=1)


def test_small_gpuvec_batched(benchmark, backend, small):
    X, start = small
    Xb = backend.asarray(X)
    benchmark.group = f"gmm {SMALL_B} problems N={SMALL_N} D={SMALL_D} K={SMALL_K}"
    run(benchmark, quiet(lambda: gpuvec.GaussianMixture(SMALL_K, **start).fit(Xb)))
