"""gpuvec._core.jit: the compiled loops where numba has no writable cache directory (a read-only install).

numba decides where to cache a function as it decorates it and raises ``RuntimeError: cannot cache
function ...: no locator available`` where no location works. Each test forces that in a new process
(the modules compile once per process) by emptying numba's list of cache locators, which fails as
a read-only install does, for root too (root writes through any permission bits).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

pytest.importorskip("numba")

# Every numba module of gpuvec in one process: its results against the references (GPUVEC_JIT=0 in the
# same process), and the warnings it gave.
_SCRIPT = r"""
import os, warnings
import numba.core.caching
numba.core.caching.CacheImpl._locator_classes = []  # no cache location works: as a read-only install
import numpy as np
import gpuvec

def reference(fn):
    os.environ["GPUVEC_JIT"] = "0"
    try:
        return fn()
    finally:
        os.environ["GPUVEC_JIT"] = "1"

rng = np.random.default_rng(0)
img = rng.normal(size=(7, 9))
X = np.concatenate([rng.normal(size=(60, 2)), rng.normal(size=(60, 2)) + 6.0])
M = rng.normal(size=(50, 3, 3))
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    calls = [
        lambda: gpuvec.ray_max(img, (3, 4), num=None),
        lambda: gpuvec.ray_max(img, (3, 4), num=5),
        lambda: gpuvec.ray_max(img, (3, 4), num=12),
        lambda: gpuvec.GaussianMixture(2, random_state=0).fit(X).means_,
        lambda: gpuvec.nearest_rotation(M),
    ]
    for call in calls:
        got, want = call(), reference(call)
        for g, w in zip(got if isinstance(got, tuple) else (got,), want if isinstance(want, tuple) else (want,)):
            np.testing.assert_allclose(g, w, rtol=1e-9, atol=1e-12)
import sys
for module in ("gpuvec.rays._numba", "gpuvec.mixture._numba", "gpuvec.rotations._numba"):
    assert module in sys.modules, module
for w in caught:
    print(f"{w.category.__name__}|{os.path.basename(w.filename)}|{w.message}")
"""


def test_loops_run_uncached_with_one_warning_where_numba_cannot_cache():
    """ray_max (dense and fixed rays), a mixture fit and nearest_rotation on their numba paths, with no
    cache location: the reference's results and exactly one RuntimeWarning naming NUMBA_CACHE_DIR, at
    the caller's line (here ``<string>``), not a crash."""
    env = dict(os.environ, GPUVEC_JIT="1")
    env.pop("NUMBA_CACHE_DIR", None)
    run = subprocess.run([sys.executable, "-c", _SCRIPT], env=env, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert len(lines) == 1, lines
    category, filename, message = lines[0].split("|", 2)
    assert category == "RuntimeWarning" and filename == "<string>", lines
    assert "cannot cache function" in message and "NUMBA_CACHE_DIR" in message, message


def test_a_new_function_runs_uncached_and_warns_once(monkeypatch):
    """In this process, on functions of its own: uncached dispatchers that run, one warning for two of them."""
    import warnings

    import numba.core.caching

    from gpuvec._core import jit

    monkeypatch.setattr(numba.core.caching.CacheImpl, "_locator_classes", [])
    monkeypatch.setattr(jit, "_warned", False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        twice = jit.cached_njit(nogil=True)(lambda x: 2 * x)
        thrice = jit.cached_njit()(lambda x: 3 * x)
    assert twice(21) == 42 and thrice(2) == 6
    assert twice._cache.__class__.__name__ == "NullCache"  # numba's dispatcher without an on-disk cache
    assert [w.category for w in caught] == [RuntimeWarning], [str(w.message) for w in caught]
    assert "NUMBA_CACHE_DIR" in str(caught[0].message) and caught[0].filename == __file__


def test_other_errors_of_numba_are_not_taken_for_the_cache(monkeypatch):
    """Only numba's 'cannot cache' RuntimeError means no cache location: any other error is raised as numba's."""
    import numba

    from gpuvec._core import jit

    def broken(**options):
        raise RuntimeError("something else went wrong")

    monkeypatch.setattr(numba, "njit", broken)
    with pytest.raises(RuntimeError, match="something else"):
        jit.cached_njit()(lambda x: x)
