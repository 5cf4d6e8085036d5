"""The benchmark grid: one definition of every case, run by ``gpuvec bench`` and by pytest-benchmark.

Each :class:`Case` is an algorithm at a size, run by one method (the seed's code,
the library a user would otherwise reach for, gpuvec) on one backend. Its
``make`` does the setup and returns the callable to time; timings synchronise
the GPU inside the timed call and follow a warm-up call (kernel compilation).
Within a group, ratios are taken against the group's reference: the seed's
accepted answer, or the library the seed's askers would otherwise use.

This module only defines the cases (:func:`cases`, by algorithm in :data:`ALGORITHMS`);
the cases timed in a new process come from :mod:`gpuvec.tools.bench_process`, and
:mod:`gpuvec.tools.bench` times them and reports.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any, Literal

import numpy as np

import gpuvec
from gpuvec._core.backend import BackendName
from gpuvec._core.namespace import ndimage_for
from gpuvec.tools import baselines
from gpuvec.tools.bench_case import Case, env, installed, quiet, xp_of
from gpuvec.tools.bench_process import cold_process, mixture_memory

__all__ = [
    "ALGORITHMS",
    "MIXTURE_MEMORY_CASES",
    "Case",
    "available_backends",
    "cases",
    "check_algorithms",
    "skipped_references",
]

_ACCEPTED_LIMIT = 4 << 30


# --------------------------------------------------------------------------- the grid


def _ray_cases(quick: bool, backends: list[BackendName]) -> Iterable[Case]:
    for n in (64, 128) if quick else (500, 1000, 3000):
        for num in (5, 50):
            group = f"rays {n}x{n} num={num}"
            fits = 2 * 8 * n * n * num <= _ACCEPTED_LIMIT
            if fits:
                yield Case(
                    "rays", group, "accepted answer", "numpy", _rays(n, num, "accepted"), reference=True, rounds=1
                )
            for backend in backends:
                yield Case("rays", group, "gpuvec", backend, _rays(n, num, "gpuvec", backend))
            yield Case("rays", group, "gpuvec numpy streaming", "numpy", _rays(n, num, "streaming"))
            if "cupy" in backends and fits:
                yield Case("rays", group, "accepted answer (cupyx)", "cupy", _rays(n, num, "cupyx", "cupy"), rounds=1)
    h, w = (96, 128) if quick else (768, 1024)
    group = f"rays dense {h}x{w}x3 uint8 (every pixel on the ray)"
    yield Case("rays", group, "seed's second answer", "numpy", _dense_rgb(h, w, "second"), reference=True, rounds=1)
    for backend in backends:
        yield Case("rays", group, "gpuvec num=None order=0", backend, _dense_rgb(h, w, "gpuvec", backend), rounds=1)
    n = 500 if quick else 3000
    group = f"rays {n}x{n} num=5, a new process per call (imports included)"
    yield Case(
        "rays", group, "accepted answer script", "numpy", cold_process(n, 5, "accepted"), reference=True, rounds=2
    )
    yield Case("rays", group, "gpuvec script", "numpy", cold_process(n, 5, "gpuvec"), rounds=2)
    yield Case("rays", group, "gpuvec script, GPUVEC_JIT=0", "numpy", cold_process(n, 5, "gpuvec", jit=False), rounds=2)
    group = "rays seed loop 40x40 num=5"
    yield Case("rays", group, "seed loop", "numpy", _rays(40, 5, "loop"), reference=True, rounds=1)
    for backend in backends:
        yield Case("rays", group, "gpuvec", backend, _rays(40, 5, "gpuvec", backend))


def _rays(n: int, num: int, method: str, backend: BackendName = "numpy") -> Callable[[], Callable[[], Any]]:
    """The setup of one ray case: a random n x n image, origin (n/2, n/3)."""

    def make() -> Callable[[], Any]:
        img = np.random.default_rng(0).random((n, n))
        orow, ocol = n // 2, n // 3
        if method == "accepted":
            return lambda: baselines.rays_accepted_answer(img, orow, ocol, num)
        if method == "loop":
            return lambda: baselines.rays_seed_loop(img, orow, ocol, num)
        if method == "cupyx":
            return _accepted_cupyx(img, num)
        a = xp_of(backend).asarray(img)
        if method == "streaming":
            return lambda: _streaming(a, (orow, ocol), num)
        return lambda: gpuvec.ray_max(a, (orow, ocol), num)

    return make


def _dense_rgb(h: int, w: int, method: str, backend: BackendName = "numpy") -> Callable[[], Callable[[], Any]]:
    """The second answer's case: a 3-channel uint8 photograph-sized image, origin (200, 400)-like."""

    def make() -> Callable[[], Any]:
        img = np.random.default_rng(0).integers(0, 256, (h, w, 3)).astype(np.uint8)
        ctr = (h * 200 // 768, w * 400 // 1024)
        if method == "second":
            return lambda: baselines.rays_second_answer(img, ctr)
        a = xp_of(backend).asarray(img)
        return lambda: gpuvec.ray_max(a, ctr, None, order=0, channel_axis=-1, return_coords=True)

    return make


def _streaming(img: Any, origin: tuple[float, ...], num: int) -> tuple[Any, ...]:
    with env("GPUVEC_JIT", "0"):
        return gpuvec.ray_max(img, origin, num)


def _accepted_cupyx(img: Any, num: int) -> Callable[[], Any]:
    """The accepted answer with cupyx's map_coordinates: what a user would port to the GPU."""
    xp = xp_of("cupy")
    ndimage = ndimage_for(xp)
    a = xp.asarray(img)
    return lambda: baselines.rays_accepted_answer(
        a, img.shape[0] // 2, img.shape[1] // 3, num, map_coordinates=ndimage.map_coordinates, xp=xp
    )


def _rotation_stack(n: int, count: int) -> np.ndarray:
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(min(count, 100_000), n, n)))
    return np.resize(Q, (count, n, n))


def _rotations(n: int, count: int, method: str, backend: BackendName = "numpy") -> Callable[[], Callable[[], Any]]:
    def make() -> Callable[[], Any]:
        R = _rotation_stack(n, count)
        if method == "batched numpy":
            return lambda: baselines.is_rotation_batched_numpy(R)
        if method == "seed loop":
            return lambda: [baselines.is_rotation_seed(r) for r in R]
        a = xp_of(backend).asarray(R)
        return lambda: gpuvec.is_rotation(a)

    return make


def _rotation_cases(quick: bool, backends: list[BackendName]) -> Iterable[Case]:
    for n, count in ((3, 20_000 if quick else 10_000_000), (8, 5_000 if quick else 1_000_000)):
        group = f"is_rotation {count} {n}x{n}"
        yield Case(
            "rotations",
            group,
            "batched numpy",
            "numpy",
            _rotations(n, count, "batched numpy"),
            reference=True,
            rounds=1,
        )
        for backend in backends:
            yield Case("rotations", group, "gpuvec", backend, _rotations(n, count, "gpuvec", backend))
    count = 2_000 if quick else 100_000
    group = f"is_rotation {count} 3x3 (seed loop)"
    yield Case(
        "rotations", group, "seed answer, looped", "numpy", _rotations(3, count, "seed loop"), reference=True, rounds=1
    )
    yield Case("rotations", group, "gpuvec", "numpy", _rotations(3, count, "gpuvec"))


def _sampling(N: int, method: str, backend: BackendName = "numpy") -> Callable[[], Callable[[], Any]]:
    """Setups of the sampling cases: per-coordinate means and stds (N, 3), 1000 draws."""

    def make() -> Callable[[], Any]:
        rng = np.random.default_rng(1)
        means, stds = rng.random((N, 3)), rng.random((N, 3)) + 0.1
        cov = np.broadcast_to(np.eye(3) * 2 + 0.5, (N, 3, 3)).copy()
        if method == "numpy normal":
            g = np.random.default_rng(0)
            return lambda: baselines.normal_seed_broadcast(g, means, stds)
        if method == "seed loop":
            return lambda: baselines.normal_seed_loop(means, stds)
        if method == "numpy mvn loop":
            g = np.random.default_rng(0)
            return lambda: [g.multivariate_normal(np.zeros(3), c, 1000) for c in cov]
        xp = xp_of(backend)
        gen = gpuvec.random.default_rng(0, backend=backend)
        if method == "gpuvec normal":
            m, s = xp.asarray(means), xp.asarray(stds)
            return lambda: gen.normal(m, s, size=(1000, N, 3))
        mean, c = xp.zeros((N, 3)), xp.asarray(cov)
        return lambda: gen.multivariate_normal(mean, c, size=1000)

    return make


def _random_cases(quick: bool, backends: list[BackendName]) -> Iterable[Case]:
    N = 50 if quick else 1000
    items = 3000 * N
    group = f"normal (1000, {N}, 3)"
    yield Case(
        "random", group, "numpy broadcast normal", "numpy", _sampling(N, "numpy normal"), reference=True, items=items
    )
    yield Case("random", group, "seed loop", "numpy", _sampling(N, "seed loop"), rounds=1, items=items)
    for backend in backends:
        yield Case("random", group, "gpuvec", backend, _sampling(N, "gpuvec normal", backend), items=items)
    group = f"multivariate_normal 1000 x {N} x 3"
    yield Case(
        "random", group, "numpy loop", "numpy", _sampling(N, "numpy mvn loop"), reference=True, rounds=1, items=items
    )
    for backend in backends:
        yield Case("random", group, "gpuvec", backend, _sampling(N, "gpuvec mvn", backend), items=items)
    B, d = (200, 100) if quick else (10_000, 100)
    group = f"multivariate_normal one draw x {B} covariances of {d}x{d}"
    yield Case("random", group, "cholesky + einsum", "numpy", _many_covariances(B, d, "by hand"), reference=True)
    for backend in backends:
        yield Case("random", group, "gpuvec", backend, _many_covariances(B, d, "gpuvec", backend))


def _many_covariances(B: int, d: int, method: str, backend: BackendName = "numpy") -> Callable[[], Callable[[], Any]]:
    """Setups of the many-covariances case: B random positive-definite (d, d) covariances, one draw each."""

    def make() -> Callable[[], Any]:
        A = np.random.default_rng(2).standard_normal((B, d, d)) / np.sqrt(d)
        cov, mean = A @ np.swapaxes(A, -1, -2) + np.eye(d), np.zeros((B, d))
        if method == "by hand":
            g = np.random.default_rng(0)
            return lambda: baselines.mvn_cholesky_einsum(g, mean, cov)
        xp = xp_of(backend)
        gen, m, c = gpuvec.random.default_rng(0, backend=backend), xp.asarray(mean), xp.asarray(cov)
        return lambda: gen.multivariate_normal(m, c)

    return make


def _big_mixture(N: int, D: int, K: int) -> tuple[Any, dict[str, Any]]:
    rng = np.random.default_rng(0)
    X = rng.normal(0, 5, (K, D))[rng.integers(0, K, N)] + rng.normal(size=(N, D))
    start = dict(
        weights_init=np.full(K, 1 / K),
        means_init=X[rng.choice(N, K, replace=False)],
        precisions_init=np.broadcast_to(np.eye(D), (K, D, D)).copy(),
    )
    return X, start


def _small_mixtures(B: int, N: int, D: int, K: int) -> tuple[Any, dict[str, Any]]:
    rng = np.random.default_rng(1)
    X = np.stack([np.concatenate([rng.normal(0, 1, (N // 2, D)), rng.normal(3, 1, (N // 2, D))]) for _ in range(B)])
    start = dict(
        weights_init=np.full((B, K), 1 / K),
        means_init=X[:, rng.choice(N, K, replace=False)],
        precisions_init=np.broadcast_to(np.eye(D), (B, K, D, D)).copy(),
    )
    return X, start


def _mixture(shape: tuple[int, ...], method: str, backend: BackendName = "numpy") -> Callable[[], Callable[[], Any]]:
    """Setups of the mixture cases, all from the same explicit starts (5 iterations for the big one)."""

    def make() -> Callable[[], Any]:
        if len(shape) == 3:
            X, start = _big_mixture(*shape)
            K, fixed = shape[2], dict[str, Any](max_iter=5, tol=0)
            if method == "sklearn":
                from sklearn.mixture import GaussianMixture as SkGM  # an extra: only the sklearn cases import it

                return quiet(lambda: SkGM(K, **fixed, **start).fit(X))
            a = xp_of(backend).asarray(X)
            return quiet(lambda: gpuvec.GaussianMixture(K, **fixed, **start).fit(a))
        X, start = _small_mixtures(*shape)
        B, K = shape[0], shape[3]
        if method == "sklearn":
            from sklearn.mixture import GaussianMixture as SkGM

            return quiet(lambda: [SkGM(K, **{k: v[b] for k, v in start.items()}).fit(X[b]) for b in range(B)])
        a = xp_of(backend).asarray(X)
        return quiet(lambda: gpuvec.GaussianMixture(K, **start).fit(a))

    return make


# Peak-memory rows (N, D, K, dtype, n_init): a new process per call, peak RSS beyond X printed. The
# N=1e5 rows measure the fixed part of the peak (numba's load, buffers): it does not grow (or halve) with X.
MIXTURE_MEMORY_CASES = (
    (20_000_000, 4, 2, "float64", 1),
    (20_000_000, 8, 8, "float64", 1),
    (20_000_000, 8, 8, "float32", 1),
    (20_000_000, 8, 8, "float64", 3),
    (100_000, 8, 8, "float64", 1),
    (100_000, 8, 8, "float32", 1),
)


def _bayesian_problems(B: int) -> Any:
    """B problems of 600 rows in 2-D, each 2 to 4 well-separated clusters (the effective K differs)."""
    rng = np.random.default_rng(3)
    X = np.empty((B, 600, 2))
    for b in range(B):
        k = 2 + b % 3
        centers = rng.normal(0, 10, (k, 2))
        X[b] = centers[rng.integers(0, k, 600)] + rng.normal(size=(600, 2))
    return X


def _bayesian(B: int, method: str, backend: BackendName = "numpy") -> Callable[[], Callable[[], Any]]:
    """Setups of the BayesianGaussianMixture case: a loop of sklearn fits, or one batched gpuvec fit (K=6, both
    prior types)."""

    def make():
        X = _bayesian_problems(B)
        kinds: tuple[Literal["dirichlet_process", "dirichlet_distribution"], ...] = (
            "dirichlet_process",
            "dirichlet_distribution",
        )
        if method == "sklearn":
            from sklearn.mixture import BayesianGaussianMixture as SkBGM  # an extra: only the sklearn case imports it

            fits = [SkBGM(n_components=6, weight_concentration_prior_type=t, random_state=0) for t in kinds]
            return lambda: [model.fit(x) for model in fits for x in X]
        data = xp_of(backend).asarray(X)
        return lambda: [
            gpuvec.BayesianGaussianMixture(6, weight_concentration_prior_type=t, random_state=0).fit(data)
            for t in kinds
        ]

    return make


def _mixture_cases(quick: bool, backends: list[BackendName]) -> Iterable[Case]:
    has_sklearn = installed("sklearn")
    for shape, label in (
        ((5_000 if quick else 1_000_000, 8, 16), "gmm N={} D={} K={}, 5 iterations"),
        ((20 if quick else 1000, 500, 3, 4), "gmm {} problems N={} D={} K={}"),
    ):
        group = label.format(*shape)
        if has_sklearn:
            yield Case(
                "mixture",
                group,
                "sklearn" if len(shape) == 3 else "sklearn loop",
                "numpy",
                _mixture(shape, "sklearn"),
                reference=True,
                rounds=1,
            )
        for backend in backends:
            yield Case(
                "mixture",
                group,
                "gpuvec",
                backend,
                _mixture(shape, "gpuvec", backend),
                rounds=1 if len(shape) == 3 else 3,
            )
    B = 5 if quick else 50
    group = f"bayesian gmm {B} problems N=600 D=2 K=6, both prior types"
    if has_sklearn:
        yield Case("mixture", group, "sklearn loop", "numpy", _bayesian(B, "sklearn"), reference=True, rounds=1)
    for backend in backends:
        yield Case("mixture", group, "gpuvec", backend, _bayesian(B, "gpuvec", backend), rounds=1)
    for N, D, K, dtype, n_init in MIXTURE_MEMORY_CASES:
        N = N // 100 if quick else N
        starts = f" n_init={n_init}" if n_init > 1 else ""
        group = f"gmm fit peak memory N={N} D={D} K={K} {dtype}{starts} (a new process; peak RSS on stderr)"
        yield Case("mixture", group, "gpuvec", "numpy", mixture_memory(N, D, K, dtype, n_init), rounds=1)


def _dask_cases(quick: bool, backends: list[BackendName]) -> Iterable[Case]:
    """gpuvec on dask arrays (dask's threaded scheduler) against the same call in memory: what dask costs.

    Dask pays where the data do not fit; these cases say what a pass costs where they do. The cluster
    figures (2-process LocalCluster, worker memory) are in benchmarks/test_dask*_bench.py.
    """
    if not installed("dask"):
        return
    n, chunk = (1000, 250) if quick else (4000, 1000)
    group = f"dask ray_max {n}x{n} float32 in {chunk}x{chunk} chunks, num=5"
    yield Case("dask", group, "in memory", "numpy", _dask_rays(n, chunk, False), reference=True)
    yield Case("dask", group, "dask, threads", "numpy", _dask_rays(n, chunk, True))
    N = 200_000 if quick else 2_000_000
    group = f"dask GaussianMixture N={N} D=8 K=8, 3 EM iterations, 8 chunks"
    yield Case("dask", group, "in memory", "numpy", _dask_mixture(N, False), reference=True, rounds=1)
    yield Case("dask", group, "dask, threads", "numpy", _dask_mixture(N, True), rounds=1)
    group = "dask fixed cost: is_rotation of 1000 3x3 matrices in 4 blocks"
    yield Case("dask", group, "in memory", "numpy", _dask_rotations(False), reference=True, rounds=20)
    yield Case("dask", group, "dask, threads", "numpy", _dask_rotations(True), rounds=20)


def _dask_rays(n: int, chunk: int, lazy: bool) -> Callable[[], Callable[[], Any]]:
    def make() -> Callable[[], Any]:
        import dask.array as da

        img = np.random.default_rng(0).random((n, n), dtype=np.float32)
        origin = (0.3125 * n, 0.7126 * n)
        if not lazy:
            return lambda: gpuvec.ray_max(img, origin, 5)
        x = da.from_array(img, chunks=chunk)
        return lambda: da.compute(*gpuvec.ray_max(x, origin, 5), scheduler="threads")

    return make


def _dask_mixture(N: int, lazy: bool) -> Callable[[], Callable[[], Any]]:
    def make() -> Callable[[], Any]:
        import dask.array as da

        rng = np.random.default_rng(0)
        K, D = 8, 8
        X = rng.normal(size=(N, D)) + np.repeat(rng.normal(scale=4, size=(K, D)), N // K, axis=0)
        start: dict[str, Any] = {
            "means_init": X[:: N // K][:K],
            "weights_init": np.full(K, 1 / K),
            "precisions_init": np.stack([np.eye(D)] * K),
        }
        gm = gpuvec.GaussianMixture(K, max_iter=3, tol=0.0, **start)
        data = da.from_array(X, chunks=(N // 8, D)) if lazy else X
        return quiet(lambda: gm.fit(data))

    return make


def _dask_rotations(lazy: bool) -> Callable[[], Callable[[], Any]]:
    def make() -> Callable[[], Any]:
        import dask.array as da

        R = _rotation_stack(3, 1000)
        if not lazy:
            return lambda: gpuvec.is_rotation(R)
        x = da.from_array(R, chunks=(250, 3, 3))
        return lambda: gpuvec.is_rotation(x).compute(scheduler="threads")

    return make


def _shape_cases(quick: bool, backends: list[BackendName]) -> Iterable[Case]:
    from gpuvec.tools.bench_shapes import shape_cases  # its own module: the grids over shapes

    return shape_cases(quick, backends)


def _ray_shape_cases(quick: bool, backends: list[BackendName]) -> Iterable[Case]:
    from gpuvec.tools.bench_shapes import ray_shape_cases

    return ray_shape_cases(quick, backends)


ALGORITHMS = {
    "rays": _ray_cases,
    "rotations": _rotation_cases,
    "random": _random_cases,
    "mixture": _mixture_cases,
    "dask": _dask_cases,
    "mixture-shapes": _shape_cases,
    "rays-shapes": _ray_shape_cases,
}
# Left out of the grid unless asked for by name (--only): they take minutes (rays) to tens of minutes.
OPT_IN = ("mixture-shapes", "rays-shapes")

# References that come with an extra, by algorithm: (module, what it is, the extra that installs it).
# Their cases are left out where the module is missing (the gpuvec cases still run, without a ratio).
_OPTIONAL_REFERENCES = {
    "mixture": ("sklearn", "scikit-learn", "sklearn"),
    "mixture-shapes": ("sklearn", "scikit-learn", "sklearn"),
}


def _default() -> list[str]:
    return [name for name in ALGORITHMS if name not in OPT_IN]


def skipped_references(algorithms: Iterable[str] | None = None) -> list[str]:
    """One note per chosen algorithm whose reference cases are skipped because an extra is missing.

    Examples
    --------
    >>> skipped_references(["rays"])
    []
    """
    chosen = _default() if algorithms is None else check_algorithms(algorithms)
    notes = [
        f"note: {name}: skipping the reference cases timed against {what}, which is not installed "
        f"(pip install 'gpuvec[{extra}]')"
        for name, (module, what, extra) in _OPTIONAL_REFERENCES.items()
        if name in chosen and not installed(module)
    ]
    if "dask" in chosen and not installed("dask"):
        notes.append("note: dask: skipping the dask cases, dask is not installed (pip install 'gpuvec[dask]')")
    return notes


def check_algorithms(algorithms: Iterable[str], name: str = "algorithms") -> list[str]:
    """The chosen algorithm names, stripped, without blanks and repeats; raises unless they select some.

    Examples
    --------
    >>> check_algorithms([" rays", "mixture", "rays", ""])
    ['rays', 'mixture']
    """
    if isinstance(algorithms, str):
        msg = f"{name} must be a list of names, e.g. ['rays', 'mixture']; got the str {algorithms!r}"
        raise TypeError(msg)
    valid = ", ".join(ALGORITHMS)
    chosen = list(dict.fromkeys(a.strip() for a in algorithms if a.strip()))
    unknown = [a for a in chosen if a not in ALGORITHMS]
    if unknown:
        msg = f"{name} must name algorithms among {valid}; got unknown {', '.join(map(repr, unknown))}"
        raise ValueError(msg)
    if not chosen:
        msg = f"{name} selects no algorithm: give one or more of {valid} (comma-separated on the command line)"
        raise ValueError(msg)
    return chosen


def available_backends() -> list[BackendName]:
    """numpy, and cupy where a CUDA device answers (never imports cupy under GPUVEC_BACKEND=numpy)."""
    from gpuvec._core import backend

    if os.environ.get("GPUVEC_BACKEND", "").strip().lower() == "numpy" or not backend.cupy_usable():
        return ["numpy"]
    return ["numpy", "cupy"]


def cases(
    quick: bool = False, algorithms: Iterable[str] | None = None, backends: list[BackendName] | None = None
) -> list[Case]:
    """The benchmark grid: every case of the chosen algorithms, quick (CI-sized) or full."""
    backends = available_backends() if backends is None else backends
    chosen = _default() if algorithms is None else check_algorithms(algorithms)
    return [case for name in chosen for case in ALGORITHMS[name](quick, backends)]
