"""Benchmark cases measured in a new Python process: what a user's script costs from a cold start.

Two kinds of row in the grid of :mod:`gpuvec.tools.bench_grid` run their timed call as a
``python -c`` subprocess rather than in the benchmarking process:

* :func:`cold_process`: a one-call ray script, imports and first-call compilation included;
* :func:`mixture_memory`: a ``GaussianMixture`` fit whose peak RSS beyond its data
  (:func:`mixture_peak_memory`) is printed to stderr.

Each returns a case's ``make`` (setup, then the zero-argument callable to time). The children
run on the numpy backend, with the caller's ``GPUVEC_JIT`` dropped unless a case sets it.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from typing import Any

from gpuvec.tools import baselines

__all__ = ["cold_process", "mixture_memory", "mixture_peak_memory"]


def cold_process(n: int, num: int, method: str, jit: bool = True) -> Callable[[], Callable[[], Any]]:
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

    def make() -> Callable[[], Any]:
        return lambda: subprocess.run([sys.executable, "-c", setup + body], env=env, check=True)

    return make


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


def mixture_memory(N: int, D: int, K: int, dtype: str, n_init: int) -> Callable[[], Callable[[], Any]]:
    """A memory row: the timed call is the new process; its peak RSS beyond X goes to stderr."""

    def make() -> Callable[[], Any]:
        def call() -> dict[str, Any]:
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
