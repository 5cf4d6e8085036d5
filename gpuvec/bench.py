"""The benchmark grid: one definition of every case, run by ``gpuvec bench`` and by pytest-benchmark.

Each :class:`Case` is an algorithm at a size, run by one method (the seed's code,
the library a user would otherwise reach for, gpuvec) on one backend. Its
``make`` does the setup and returns the callable to time; timings synchronise
the GPU inside the timed call and follow a warm-up call (kernel compilation).
Within a group, ratios are taken against the group's reference: the seed's
accepted answer, or the library the seed's askers would otherwise use.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.util
import json
import os
import statistics
import sys
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np

import gpuvec
from gpuvec import baselines
from gpuvec._backend import compiled_enabled, ndimage_for

__all__ = [
    "Case",
    "cases",
    "check_algorithms",
    "check_output_path",
    "check_plot_path",
    "main",
    "run_cases",
    "skipped_references",
]

# The accepted ray answer's (2, rows*cols*num) float64 coordinates: skip it past 4 GB.
_ACCEPTED_LIMIT = 4 << 30


@dataclasses.dataclass(frozen=True)
class Case:
    """One benchmark: ``make()`` sets up and returns the zero-argument callable to time."""

    algorithm: str
    group: str
    method: str
    backend: str
    make: Callable[[], Callable[[], Any]]
    reference: bool = False
    rounds: int = 3
    items: int = 0  # samples produced per call, for a throughput column

    @property
    def id(self) -> str:
        return f"{self.group} | {self.method} [{self.backend}]".replace(" ", "_")


@contextlib.contextmanager
def _env(name: str, value: str) -> Iterator[None]:
    old = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if old is None:
            del os.environ[name]
        else:
            os.environ[name] = old


def _quiet(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` with warnings silenced (fits stopped at max_iter warn by design here)."""

    def call():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fn()

    return call


def _xp(backend: str):
    with gpuvec.use_backend(backend) as xp:
        return xp


# --------------------------------------------------------------------------- the grid


def _ray_cases(quick: bool, backends: list[str]) -> Iterable[Case]:
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
        "rays", group, "accepted answer script", "numpy", _cold_process(n, 5, "accepted"), reference=True, rounds=2
    )
    yield Case("rays", group, "gpuvec script", "numpy", _cold_process(n, 5, "gpuvec"), rounds=2)
    yield Case(
        "rays", group, "gpuvec script, GPUVEC_JIT=0", "numpy", _cold_process(n, 5, "gpuvec", jit=False), rounds=2
    )
    group = "rays seed loop 40x40 num=5"
    yield Case("rays", group, "seed loop", "numpy", _rays(40, 5, "loop"), reference=True, rounds=1)
    for backend in backends:
        yield Case("rays", group, "gpuvec", backend, _rays(40, 5, "gpuvec", backend))


def _rays(n: int, num: int, method: str, backend: str = "numpy") -> Callable[[], Callable[[], Any]]:
    """The setup of one ray case: a random n x n image, origin (n/2, n/3)."""

    def make():
        img = np.random.default_rng(0).random((n, n))
        orow, ocol = n // 2, n // 3
        if method == "accepted":
            return lambda: baselines.rays_accepted_answer(img, orow, ocol, num)
        if method == "loop":
            return lambda: baselines.rays_seed_loop(img, orow, ocol, num)
        if method == "cupyx":
            return _accepted_cupyx(img, num)
        a = _xp(backend).asarray(img)
        if method == "streaming":
            return lambda: _streaming(a, (orow, ocol), num)
        return lambda: gpuvec.ray_max(a, (orow, ocol), num)

    return make


def _cold_process(n: int, num: int, method: str, jit: bool = True) -> Callable[[], Callable[[], Any]]:
    """A one-call script run as a new Python process, the way a user's script runs: the warm-up
    run fills the caches (numba's on-disk cache among them), the timed runs start from scratch."""
    import inspect
    import subprocess

    setup = f"import numpy as np\nimg = np.random.default_rng(0).random(({n}, {n}))\n"
    if method == "accepted":
        body = "from scipy.ndimage import map_coordinates\n" + inspect.getsource(baselines.rays_accepted_answer)
        body += f"rays_accepted_answer(img, {n // 2}, {n // 3}, {num})\n"
    else:
        body = f"import gpuvec\ngpuvec.ray_max(img, ({n // 2}, {n // 3}), {num})\n"
    env = {k: v for k, v in os.environ.items() if k != "GPUVEC_JIT"}  # the default: compiled where it pays
    env.update(GPUVEC_BACKEND="numpy", **({} if jit else {"GPUVEC_JIT": "0"}))

    def make():
        return lambda: subprocess.run([sys.executable, "-c", setup + body], env=env, check=True)

    return make


def _dense_rgb(h: int, w: int, method: str, backend: str = "numpy") -> Callable[[], Callable[[], Any]]:
    """The second answer's case: a 3-channel uint8 photograph-sized image, origin (200, 400)-like."""

    def make():
        img = np.random.default_rng(0).integers(0, 256, (h, w, 3)).astype(np.uint8)
        ctr = (h * 200 // 768, w * 400 // 1024)
        if method == "second":
            return lambda: baselines.rays_second_answer(img, ctr)
        a = _xp(backend).asarray(img)
        return lambda: gpuvec.ray_max(a, ctr, None, order=0, channel_axis=-1, return_coords=True)

    return make


def _streaming(img, origin, num):
    with _env("GPUVEC_JIT", "0"):
        return gpuvec.ray_max(img, origin, num)


def _accepted_cupyx(img, num):
    """The accepted answer with cupyx's map_coordinates: what a user would port to the GPU."""
    xp = _xp("cupy")
    ndimage = ndimage_for(xp)
    a = xp.asarray(img)
    return lambda: baselines.rays_accepted_answer(
        a, img.shape[0] // 2, img.shape[1] // 3, num, map_coordinates=ndimage.map_coordinates, xp=xp
    )


def _rotation_stack(n: int, count: int) -> np.ndarray:
    Q, _ = np.linalg.qr(np.random.default_rng(0).normal(size=(min(count, 100_000), n, n)))
    return np.resize(Q, (count, n, n))


def _rotations(n: int, count: int, method: str, backend: str = "numpy") -> Callable[[], Callable[[], Any]]:
    def make():
        R = _rotation_stack(n, count)
        if method == "batched numpy":
            return lambda: baselines.is_rotation_batched_numpy(R)
        if method == "seed loop":
            return lambda: [baselines.is_rotation_seed(r) for r in R]
        a = _xp(backend).asarray(R)
        return lambda: gpuvec.is_rotation(a)

    return make


def _rotation_cases(quick: bool, backends: list[str]) -> Iterable[Case]:
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


def _sampling(N: int, method: str, backend: str = "numpy") -> Callable[[], Callable[[], Any]]:
    """Setups of the sampling cases: per-coordinate means and stds (N, 3), 1000 draws."""

    def make():
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
        xp = _xp(backend)
        gen = gpuvec.random.default_rng(0, backend=backend)
        if method == "gpuvec normal":
            m, s = xp.asarray(means), xp.asarray(stds)
            return lambda: gen.normal(m, s, size=(1000, N, 3))
        mean, c = xp.zeros((N, 3)), xp.asarray(cov)
        return lambda: gen.multivariate_normal(mean, c, size=1000)

    return make


def _random_cases(quick: bool, backends: list[str]) -> Iterable[Case]:
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


def _big_mixture(N: int, D: int, K: int):
    rng = np.random.default_rng(0)
    X = rng.normal(0, 5, (K, D))[rng.integers(0, K, N)] + rng.normal(size=(N, D))
    start = dict(
        weights_init=np.full(K, 1 / K),
        means_init=X[rng.choice(N, K, replace=False)],
        precisions_init=np.broadcast_to(np.eye(D), (K, D, D)).copy(),
    )
    return X, start


def _small_mixtures(B: int, N: int, D: int, K: int):
    rng = np.random.default_rng(1)
    X = np.stack([np.concatenate([rng.normal(0, 1, (N // 2, D)), rng.normal(3, 1, (N // 2, D))]) for _ in range(B)])
    start = dict(
        weights_init=np.full((B, K), 1 / K),
        means_init=X[:, rng.choice(N, K, replace=False)],
        precisions_init=np.broadcast_to(np.eye(D), (B, K, D, D)).copy(),
    )
    return X, start


def _mixture(shape: tuple[int, ...], method: str, backend: str = "numpy") -> Callable[[], Callable[[], Any]]:
    """Setups of the mixture cases, all from the same explicit starts (5 iterations for the big one)."""

    def make():
        if len(shape) == 3:
            X, start = _big_mixture(*shape)
            K, fixed = shape[2], dict(max_iter=5, tol=0)
            if method == "sklearn":
                from sklearn.mixture import GaussianMixture as SkGM  # an extra: only the sklearn cases import it

                return _quiet(lambda: SkGM(K, **fixed, **start).fit(X))
            a = _xp(backend).asarray(X)
            return _quiet(lambda: gpuvec.GaussianMixture(K, **fixed, **start).fit(a))
        X, start = _small_mixtures(*shape)
        B, K = shape[0], shape[3]
        if method == "sklearn":
            from sklearn.mixture import GaussianMixture as SkGM

            return _quiet(lambda: [SkGM(K, **{k: v[b] for k, v in start.items()}).fit(X[b]) for b in range(B)])
        a = _xp(backend).asarray(X)
        return _quiet(lambda: gpuvec.GaussianMixture(K, **start).fit(a))

    return make


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


_MEMORY_SCRIPT = """
import json, sys, warnings
import numpy as np
import gpuvec
N, D, K, dtype, n_init = {N}, {D}, {K}, np.{dtype}, {n_init}
rng = np.random.default_rng(0)
centres = rng.normal(0, 5, (K, D))
X = np.empty((N, D), dtype=dtype)
for s in range(0, N, 1 << 20):  # built in pieces: no temporary beyond X
    n = min(N, s + (1 << 20)) - s
    X[s : s + n] = centres[rng.integers(0, K, n)] + rng.standard_normal((n, D))
def status_mib(field):  # VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(field + ":")) / 1024
before = status_mib("VmRSS")  # Python, numpy, gpuvec and X
with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    gpuvec.GaussianMixture(K, max_iter=3, n_init=n_init, random_state=0).fit(X)
peak = status_mib("VmHWM")
print(json.dumps(dict(x_mib=X.nbytes / 2**20, peak_beyond_x_mib=peak - before, peak_mib=peak)))
"""


def mixture_peak_memory(N: int, D: int, K: int, dtype: str = "float64", n_init: int = 1) -> dict[str, float]:
    """Peak RSS of ``GaussianMixture(K, max_iter=3, n_init=n_init).fit(X)`` in a new process, beyond Python,
    imports and X.

    X (N, D) is built in the process; numba's load, if the fit uses it, counts. Returns
    ``{"x_mib": ..., "peak_beyond_x_mib": ..., "peak_mib": ...}`` (the last: the whole process's peak RSS;
    Linux: reads VmRSS and VmHWM from /proc/self/status).
    """
    import subprocess

    code = _MEMORY_SCRIPT.format(N=N, D=D, K=K, dtype=dtype, n_init=n_init)
    env = {k: v for k, v in os.environ.items() if k != "GPUVEC_JIT"}
    env["GPUVEC_BACKEND"] = "numpy"
    out = subprocess.run([sys.executable, "-c", code], env=env, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def _mixture_memory(N: int, D: int, K: int, dtype: str, n_init: int) -> Callable[[], Callable[[], Any]]:
    """A memory row: the timed call is the new process; its peak RSS beyond X goes to stderr."""

    def make():
        def call():
            m = mixture_peak_memory(N, D, K, dtype, n_init)
            print(
                f"  peak RSS beyond X: {m['peak_beyond_x_mib']:.0f} MiB "
                f"({m['peak_beyond_x_mib'] / m['x_mib']:.2f}x X of {m['x_mib']:.0f} MiB); "
                f"process peak {m['peak_mib']:.0f} MiB",
                file=sys.stderr,
                flush=True,
            )
            return m

        return call

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


def _mixture_cases(quick: bool, backends: list[str]) -> Iterable[Case]:
    has_sklearn = _installed("sklearn")
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
    for N, D, K, dtype, n_init in MIXTURE_MEMORY_CASES:
        N = N // 100 if quick else N
        starts = f" n_init={n_init}" if n_init > 1 else ""
        group = f"gmm fit peak memory N={N} D={D} K={K} {dtype}{starts} (a new process; peak RSS on stderr)"
        yield Case("mixture", group, "gpuvec", "numpy", _mixture_memory(N, D, K, dtype, n_init), rounds=1)


def _dask_cases(quick: bool, backends: list[str]) -> Iterable[Case]:
    """gpuvec on dask arrays (dask's threaded scheduler) against the same call in memory: what dask costs.

    Dask pays where the data do not fit; these cases say what a pass costs where they do. The cluster
    figures (2-process LocalCluster, worker memory) are in benchmarks/test_dask*_bench.py.
    """
    if not _installed("dask"):
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
    def make():
        import dask.array as da

        img = np.random.default_rng(0).random((n, n), dtype=np.float32)
        origin = (0.3125 * n, 0.7126 * n)
        if not lazy:
            return lambda: gpuvec.ray_max(img, origin, 5)
        x = da.from_array(img, chunks=chunk)
        return lambda: da.compute(*gpuvec.ray_max(x, origin, 5), scheduler="threads")

    return make


def _dask_mixture(N: int, lazy: bool) -> Callable[[], Callable[[], Any]]:
    def make():
        import dask.array as da

        rng = np.random.default_rng(0)
        K, D = 8, 8
        X = rng.normal(size=(N, D)) + np.repeat(rng.normal(scale=4, size=(K, D)), N // K, axis=0)
        start = {
            "means_init": X[:: N // K][:K],
            "weights_init": np.full(K, 1 / K),
            "precisions_init": np.stack([np.eye(D)] * K),
        }
        gm = gpuvec.GaussianMixture(K, max_iter=3, tol=0.0, **start)
        data = da.from_array(X, chunks=(N // 8, D)) if lazy else X
        return _quiet(lambda: gm.fit(data))

    return make


def _dask_rotations(lazy: bool) -> Callable[[], Callable[[], Any]]:
    def make():
        import dask.array as da

        R = _rotation_stack(3, 1000)
        if not lazy:
            return lambda: gpuvec.is_rotation(R)
        x = da.from_array(R, chunks=(250, 3, 3))
        return lambda: gpuvec.is_rotation(x).compute(scheduler="threads")

    return make


ALGORITHMS = {
    "rays": _ray_cases,
    "rotations": _rotation_cases,
    "random": _random_cases,
    "mixture": _mixture_cases,
    "dask": _dask_cases,
}

# References that come with an extra, by algorithm: (module, what it is, the extra that installs it).
# Their cases are left out where the module is missing (the gpuvec cases still run, without a ratio).
_OPTIONAL_REFERENCES = {"mixture": ("sklearn", "scikit-learn", "sklearn")}


def skipped_references(algorithms: Iterable[str] | None = None) -> list[str]:
    """One note per chosen algorithm whose reference cases are skipped because an extra is missing.

    Examples
    --------
    >>> skipped_references(["rays"])
    []
    """
    chosen = list(ALGORITHMS) if algorithms is None else check_algorithms(algorithms)
    notes = [
        f"note: {name}: skipping the reference cases timed against {what}, which is not installed "
        f"(pip install 'gpuvec[{extra}]')"
        for name, (module, what, extra) in _OPTIONAL_REFERENCES.items()
        if name in chosen and not _installed(module)
    ]
    if "dask" in chosen and not _installed("dask"):
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


def check_output_path(path: str | os.PathLike, name: str = "path") -> None:
    """Raise ValueError unless a file can be written at ``path`` (checked before any case runs)."""
    text = os.fspath(path)
    folder = os.path.dirname(text) or "."
    if not text:
        msg = f"{name} must be a file path; got an empty string"
        raise ValueError(msg)
    if os.path.isdir(text):
        example = os.path.join(text, "bench.json")
        msg = f"{name} must be a file path; got the folder {text!r}: add a file name, e.g. {example!r}"
        raise ValueError(msg)
    if not os.path.isdir(folder):
        state = "is a file, not a folder" if os.path.exists(folder) else "does not exist: create it first (mkdir -p {})"
        msg = (
            f"{name} must be a path in an existing folder; got {text!r}, whose folder {folder!r} {state.format(folder)}"
        )
        raise ValueError(msg)
    if not os.access(folder, os.W_OK) or (os.path.exists(text) and not os.access(text, os.W_OK)):
        msg = f"{name} must be a writable path; got {text!r}, which this user cannot write: choose another place"
        raise ValueError(msg)


def _pyplot(name: str = "plot_path"):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        msg = f"{name} needs matplotlib (pip install 'gpuvec[plot]'); importing it failed: {exc}"
        raise ImportError(msg) from exc
    return plt


def check_plot_path(path: str | os.PathLike, name: str = "plot_path") -> None:
    """Raise unless matplotlib imports and can write ``path``'s format (checked before any case runs)."""
    _pyplot(name)
    from matplotlib.backend_bases import FigureCanvasBase

    ext = os.path.splitext(os.fspath(path))[1].lstrip(".").lower()
    formats = FigureCanvasBase.get_supported_filetypes()
    if ext and ext not in formats:
        known = ", ".join(sorted(formats))
        msg = f"{name} must end in a format matplotlib writes ({known}); got {os.fspath(path)!r}: try a .png"
        raise ValueError(msg)


def available_backends() -> list[str]:
    """numpy, and cupy where a CUDA device answers (never imports cupy under GPUVEC_BACKEND=numpy)."""
    from gpuvec import _backend

    if os.environ.get("GPUVEC_BACKEND", "").strip().lower() == "numpy" or not _backend.cupy_usable():
        return ["numpy"]
    return ["numpy", "cupy"]


def cases(
    quick: bool = False, algorithms: Iterable[str] | None = None, backends: list[str] | None = None
) -> list[Case]:
    """The benchmark grid: every case of the chosen algorithms, quick (CI-sized) or full."""
    backends = available_backends() if backends is None else backends
    chosen = list(ALGORITHMS) if algorithms is None else check_algorithms(algorithms)
    return [case for name in chosen for case in ALGORITHMS[name](quick, backends)]


# --------------------------------------------------------------------------- running


def synced(fn: Callable[[], Any]) -> Callable[[], Any]:
    """``fn`` followed by a device synchronisation, so a timer sees the work, not the launch."""

    def call():
        out = fn()
        gpuvec.sync()
        return out

    return call


def run_cases(selected: list[Case], progress=None) -> list[dict[str, Any]]:
    """Time each case (one warm-up, then ``case.rounds`` timed calls); returns one record per case.

    Progress lines go to ``progress`` (default: the current ``sys.stderr``).
    """
    progress = sys.stderr if progress is None else progress
    records = []
    for i, case in enumerate(selected, 1):
        print(f"[{i}/{len(selected)}] {case.group}: {case.method} [{case.backend}]", file=progress, flush=True)
        fn = synced(case.make())
        fn()
        times = []
        for _ in range(case.rounds):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
        records.append(
            {
                "algorithm": case.algorithm,
                "group": case.group,
                "method": case.method,
                "backend": case.backend,
                "reference": case.reference,
                "median_s": statistics.median(times),
                "rounds": case.rounds,
                "items": case.items,
            }
        )
    return add_speedups(records)


def add_speedups(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Set each record's ``speedup_vs_reference`` (None where its group has no reference)."""
    for group in {r["group"] for r in records}:
        ref = [r for r in records if r["group"] == group and r["reference"]]
        for r in records:
            if r["group"] == group:
                r["speedup_vs_reference"] = ref[0]["median_s"] / r["median_s"] if ref else None
    return records


def format_table(records: list[dict[str, Any]]) -> str:
    """Medians and ratios against each group's reference, as aligned text."""
    lines = []
    width = max((len(r["group"]) for r in records), default=5)
    for group in dict.fromkeys(r["group"] for r in records):
        for r in (r for r in records if r["group"] == group):
            ratio = r.get("speedup_vs_reference")
            ratio = "reference" if r["reference"] else ("" if ratio is None else f"{ratio:.1f}x")
            rate = f"  {r['items'] / r['median_s']:.3g}/s" if r["items"] else ""
            lines.append(
                f"{group:<{width}}  {r['method'] + ' [' + r['backend'] + ']':<36} "
                f"{r['median_s'] * 1e3:12.3f} ms  {ratio:>10}{rate}"
            )
    return "\n".join(lines)


def plot(records: list[dict[str, Any]], path: str) -> None:
    """A bar chart of speed-ups against each group's reference (needs matplotlib: gpuvec[plot])."""
    plt = _pyplot()
    rows = [r for r in records if not r["reference"] and r.get("speedup_vs_reference")]
    fig, ax = plt.subplots(figsize=(9, 0.3 * len(rows) + 1.5))
    labels = [f"{r['group']}: {r['method']} [{r['backend']}]" for r in rows]
    ax.barh(
        labels,
        [r["speedup_vs_reference"] for r in rows],
        color=["tab:green" if r["backend"] == "cupy" else "tab:blue" for r in rows],
    )
    ax.set_xscale("log")
    ax.axvline(1.0, color="black", lw=0.8)
    ax.set_xlabel("speed-up vs the group's reference (log scale)")
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(
    quick: bool = False, algorithms: list[str] | None = None, json_path: str | None = None, plot_path: str | None = None
) -> int:
    """``gpuvec bench``: run the grid, print the table, optionally save JSON and a PNG.

    Everything that could fail after the run is checked first: the settings (a bad
    ``GPUVEC_BACKEND``, or ``GPUVEC_BACKEND=cupy`` with no GPU, raises rather than
    timing numpy alone), the algorithm names, the output paths and matplotlib.
    Reference cases whose library is not installed are skipped with a note on stderr.
    """
    gpuvec.backend_info()
    compiled_enabled()
    if json_path is not None:
        check_output_path(json_path, "json_path")
    if plot_path is not None:
        check_output_path(plot_path, "plot_path")
        check_plot_path(plot_path, "plot_path")
    for note in skipped_references(algorithms):
        print(note, file=sys.stderr)
    selected = cases(quick=quick, algorithms=algorithms)
    records = run_cases(selected)
    info = gpuvec.backend_info()
    print(f"\n{info.name} backend; {info.reason}; " + ", ".join(f"{k} {v}" for k, v in info.versions.items()))
    print(format_table(records))
    if json_path is not None:
        with open(json_path, "w") as f:
            json.dump(
                {
                    "backend": info.name,
                    "versions": info.versions,
                    "device": info.device,
                    "quick": quick,
                    "cases": records,
                },
                f,
                indent=1,
            )
    if plot_path is not None:
        plot(records, plot_path)
    return 0
