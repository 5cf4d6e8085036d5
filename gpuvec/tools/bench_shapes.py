"""The mixture-shapes grid (``gpuvec bench --only mixture-shapes``): GaussianMixture against sklearn over shapes.

Each cell is (N, D, K, covariance type, dtype): sklearn and gpuvec from the same
explicit start (weights, means, precisions), 3 EM iterations, ``tol=0``,
``reg_covar=1e-3``, and the cell's BLAS floor: numpy matmuls doing the pass's
products (the E-step's and the M-step's, 3 iterations) at this machine's GEMM
rate, timed in the same run. The lower bounds of the two fits are compared when
the gpuvec case is set up, and the relative difference printed on stderr.

Not in the default grid (``gpuvec bench`` without ``--only``): the full grid
takes tens of minutes; ``--quick`` takes seconds.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np

import gpuvec
from gpuvec._core.backend import BackendName
from gpuvec.tools.bench_case import Case, installed, quiet, xp_of

__all__ = ["shape_cases"]

_FULL_GRID = dict(N=(10_000, 100_000, 1_000_000), D=(2, 8, 32, 128, 512, 1024), K=(2, 16, 64))
_QUICK_GRID = dict(N=(2_000,), D=(4, 96), K=(2, 8))
# sklearn's work per fit beyond which a cell is left out of the full grid (minutes per fit here).
_WORK_CAP = 4e10


def _start(N: int, D: int, K: int, covariance_type: str, dtype: str) -> tuple[np.ndarray, dict[str, Any]]:
    rng = np.random.default_rng(0)
    X = ((3.0 * rng.normal(size=(K, D)))[rng.integers(0, K, N)] + rng.normal(size=(N, D)) + 2.0).astype(dtype)
    precisions = {
        "full": np.broadcast_to(np.eye(D), (K, D, D)).copy(),
        "tied": np.eye(D),
        "diag": np.ones((K, D)),
        "spherical": np.ones(K),
    }[covariance_type]
    start = dict(
        n_components=K,
        covariance_type=covariance_type,
        max_iter=3,
        tol=0.0,
        reg_covar=1e-3,
        weights_init=np.full(K, 1 / K),
        means_init=X[rng.choice(N, K, replace=False)].astype(np.float64),
        precisions_init=precisions,
    )
    return X, start


def _fit(method: str, shape: tuple, backend: BackendName = "numpy") -> Callable[[], Callable[[], Any]]:
    def make() -> Callable[[], Any]:
        X, start = _start(*shape)
        if method == "sklearn":
            from sklearn.mixture import GaussianMixture as SkGM

            return quiet(lambda: SkGM(**start).fit(X))
        a = xp_of(backend).asarray(X)
        fit = quiet(lambda: gpuvec.GaussianMixture(**start).fit(a))
        if installed("sklearn") and backend == "numpy":
            from sklearn.mixture import GaussianMixture as SkGM

            ours, theirs = fit().lower_bound_, quiet(lambda: SkGM(**start).fit(X))().lower_bound_
            rel = abs(ours - theirs) / abs(theirs)
            print(f"{_label(shape)}: lower bounds {rel:.1e} relative apart (gpuvec vs sklearn)", file=sys.stderr)
        return fit

    return make


def _floor(shape: tuple) -> Callable[[], Callable[[], Any]]:
    """The pass's products, 3 iterations, as numpy matmuls of the same sizes (float64)."""
    N, D, K, covariance_type, _ = shape

    def make() -> Callable[[], Any]:
        rng = np.random.default_rng(1)
        X = rng.normal(size=(N, D))
        if covariance_type == "full":  # E-step: X against every component's factor; M-step: a gram per component
            W, R = rng.normal(size=(D, K * D)), rng.normal(size=(N, K * D))
        elif covariance_type == "tied":  # one factor and one gram, and products with the (K, D) means
            W, R = rng.normal(size=(D, D + K)), rng.normal(size=(N, D + K))
        else:  # products with (K, D) tables, each twice
            W, R = rng.normal(size=(D, 2 * K)), rng.normal(size=(N, 2 * K))

        def run() -> None:
            for _ in range(3):
                X @ W
                R.T @ X

        return run

    return make


def _label(shape: tuple) -> str:
    N, D, K, covariance_type, dtype = shape
    return f"gmm shapes {covariance_type} {dtype} N={N} D={D} K={K}, 3 iterations"


def shape_cases(quick: bool, backends: list[BackendName]) -> Iterable[Case]:
    """The cells of the grid, quick (CI-sized) or full, each: sklearn (the reference), gpuvec, the BLAS floor."""
    grid = _QUICK_GRID if quick else _FULL_GRID
    has_sklearn = installed("sklearn")
    for covariance_type in ("full", "tied", "diag", "spherical"):
        for dtype in ("float64",) if quick else ("float64", "float32"):
            for N in grid["N"]:
                for D in grid["D"]:
                    for K in grid["K"]:
                        work = N * K * D * (D if covariance_type == "full" else 1)
                        if work > _WORK_CAP or (dtype == "float32" and D not in (8, 128)):
                            continue
                        if N >= 1_000_000 and (K * D > 128 or dtype == "float32"):  # sklearn: a minute a fit
                            continue
                        shape = (N, D, K, covariance_type, dtype)
                        group = _label(shape)
                        if has_sklearn:
                            yield Case("mixture-shapes", group, "sklearn", "numpy", _fit("sklearn", shape),
                                       reference=True, rounds=1)  # fmt: skip
                        for backend in backends:
                            yield Case("mixture-shapes", group, "gpuvec", backend, _fit("gpuvec", shape, backend),
                                       rounds=1 if work > 1e9 else 3)  # fmt: skip
                        yield Case("mixture-shapes", group, "BLAS floor", "numpy", _floor(shape), rounds=3)
