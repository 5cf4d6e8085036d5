"""The grids over shapes: GaussianMixture against sklearn (``gpuvec bench --only mixture-shapes``), and
ray_max against the accepted answer over size, dtype, num, order, mode and origin (``--only rays-shapes``).

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
        elif covariance_type == "diag":  # products with (K, D) tables, each twice (the rows and their squares)
            W, R = rng.normal(size=(D, 2 * K)), rng.normal(size=(N, 2 * K))
        else:  # spherical: the distances to the means, the first moments (the squared norms are N D)
            W, R = rng.normal(size=(D, K)), rng.normal(size=(N, K))

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


# --------------------------------------------------------------------------- ray_max over shapes and options

_RAY_GRID: dict[str, tuple[Any, ...]] = dict(
    n=(8, 16, 256, 1000), dtype=("uint8", "float64"), num=(5, 50), order=(1, 3)
)
_RAY_QUICK: dict[str, tuple[Any, ...]] = dict(n=(8, 64), dtype=("float64",), num=(5,), order=(1, 3))


def _ray_case(shape: tuple, method: str, backend: BackendName = "numpy") -> Callable[[], Callable[[], Any]]:
    n, dtype, num, order, mode, where = shape

    def make() -> Callable[[], Any]:
        from gpuvec.tools.baselines import rays_accepted_answer

        img = (np.random.default_rng(0).random((n, n)) * 200).astype(dtype)
        origin = (0.37 * n, 0.61 * n) if where == "inside" else (-0.3 * n, 1.4 * n)
        if method == "accepted":  # the accepted answer, with the same order and mode passed to map_coordinates
            return lambda: rays_accepted_answer(img, *origin, num, order=order, mode=mode)
        a = xp_of(backend).asarray(img)
        return lambda: gpuvec.ray_max(a, origin, num, order=order, mode=mode)

    return make


def ray_shape_cases(quick: bool, backends: list[BackendName]) -> Iterable[Case]:
    """ray_max against the accepted answer (map_coordinates on every sample at once) over image size, dtype,
    num, order, mode and the origin inside or outside the image (``gpuvec bench --only rays-shapes``)."""
    grid = _RAY_QUICK if quick else _RAY_GRID
    for n in grid["n"]:
        for dtype in grid["dtype"]:
            for num in grid["num"]:
                for order in grid["order"]:
                    if n >= 1000 and (num > 5 or order > 1):  # the accepted answer: seconds and gigabytes
                        continue
                    for mode in ("nearest", "constant"):
                        for where in ("inside", "outside"):
                            shape = (n, dtype, num, order, mode, where)
                            group = f"rays shapes {n}x{n} {dtype} num={num} order={order} {mode} origin {where}"
                            yield Case("rays-shapes", group, "accepted answer", "numpy", _ray_case(shape, "accepted"),
                                       reference=True)  # fmt: skip
                            for backend in backends:
                                yield Case("rays-shapes", group, "gpuvec", backend, _ray_case(shape, "gpuvec", backend))
