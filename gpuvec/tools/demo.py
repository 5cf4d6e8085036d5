"""``gpuvec demo``: each question gpuvec started from solved with gpuvec, checked, and timed next to its own code."""

from __future__ import annotations

import time
import types
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

import gpuvec
from gpuvec.tools.baselines import SEED_RAY_DIST, SEED_RAY_IMAGE, SEED_RAY_MAX, rays_accepted_answer, seed_em_data

# The accepted ray answer builds (2, size*size*5) float64 coordinates: 4 GiB at most (as in gpuvec bench).
MAX_SIZE = int(((4 << 30) / (2 * 8 * 5)) ** 0.5)  # 7327


def check_size(size: object, name: str = "size") -> None:
    """Raise unless ``size`` is an int from 1 to :data:`MAX_SIZE` (``name`` is what the message calls it)."""
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)):
        msg = f"{name} must be an integer from 1 to {MAX_SIZE}; got {size!r} of type {type(size).__name__}"
        raise TypeError(msg)
    if not 1 <= size <= MAX_SIZE:
        msg = (
            f"{name} must be an integer from 1 to {MAX_SIZE} (the accepted answer it is timed against "
            f"builds 80*size**2 bytes of coordinates, 4 GiB at most); got {size}"
        )
        raise ValueError(msg)


def _timed(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    fn(*args, **kwargs)  # warm-up (kernel compilation on the GPU)
    gpuvec.sync()
    t = time.perf_counter()
    out = fn(*args, **kwargs)
    gpuvec.sync()
    return out, time.perf_counter() - t


class _Report:
    def __init__(self) -> None:
        self.failures = 0

    def check(self, label: str, ok: bool) -> None:
        self.failures += not ok
        print(f"  {'ok   ' if ok else 'WRONG'} {label}")


def _rays(xp: types.ModuleType, size: int, report: _Report) -> None:
    """The question's 6x6 example exactly, then a ``size`` x ``size`` image timed against the accepted answer."""
    print("1. Rays: max and argmax along the ray from every cell to the origin (3, 3), num=5")
    m_max, m_dist = gpuvec.ray_max(xp.asarray(SEED_RAY_IMAGE), (3, 3), num=5)
    m_max, m_dist = gpuvec.to_numpy(m_max), gpuvec.to_numpy(m_dist)
    print(f"m_max =\n{m_max}\nm_dist =\n{m_dist}")
    report.check(
        "the question's 6x6 m_max and m_dist, exactly",
        np.array_equal(m_max, SEED_RAY_MAX) and np.array_equal(m_dist, SEED_RAY_DIST),
    )
    img = np.random.default_rng(0).random((size, size))
    (want, want_arg), t_seed = _timed(rays_accepted_answer, img, size // 2, size // 3)
    (got, got_arg), t_ours = _timed(gpuvec.ray_max, xp.asarray(img), (size // 2, size // 3))
    report.check(
        f"{size}x{size}: bit-identical to the accepted answer",
        np.array_equal(gpuvec.to_numpy(got), want) and np.array_equal(gpuvec.to_numpy(got_arg), want_arg),
    )
    print(f"  accepted answer {t_seed:.3f} s, gpuvec {t_ours:.4f} s: {t_seed / t_ours:.0f}x\n")


def _rotations(xp: types.ModuleType, report: _Report) -> None:
    """A permutation and a reflection, then 200,000 rotations timed against batched numpy."""
    print("2. Rotation matrices")
    perm = xp.asarray([[0, 0, 1], [1, 0, 0], [0, 1, 0]])
    refl = xp.asarray([[-1, 0, 0], [0, 1, 0], [0, 0, 1]])
    perm_ok, refl_ok = bool(gpuvec.is_rotation(perm)), bool(gpuvec.is_rotation(refl))
    print(f"  is_rotation(permutation) = {perm_ok}, is_rotation(diag(-1, 1, 1)) = {refl_ok}")
    report.check(
        "permutation is a rotation, reflection is not",
        bool(gpuvec.is_rotation(perm)) and not bool(gpuvec.is_rotation(refl)),
    )
    R = gpuvec.nearest_rotation(xp.asarray(np.random.default_rng(1).normal(size=(200_000, 3, 3))))
    ok, t_ours = _timed(gpuvec.is_rotation, R)
    Rn = gpuvec.to_numpy(R)
    t = time.perf_counter()
    gram = np.matmul(Rn, np.swapaxes(Rn, -1, -2))
    seed_ok = np.all(np.isclose(gram, np.eye(3)), axis=(-1, -2)) & np.isclose(np.linalg.det(Rn), 1)
    t_seed = time.perf_counter() - t
    report.check("200,000 random rotations all accepted", bool(ok.all()) and bool(seed_ok.all()))
    print(f"  batched numpy allclose {t_seed:.3f} s, gpuvec {t_ours:.4f} s: {t_seed / t_ours:.0f}x\n")


def _normal_samples(xp: types.ModuleType, report: _Report) -> None:
    """1000 draws of 2 x 3 coordinates: the shape, and the sample means against the given means."""
    print("3. Normal samples: 1000 sets of N x 3 coordinates from per-coordinate means and stds")
    means = np.array([[0.0, 0, 0], [1, 1, 1]])
    stds = np.array([[1.0, 1, 1], [2, 2, 2]])
    rng = gpuvec.random.default_rng(0)
    samples = gpuvec.to_numpy(rng.normal(xp.asarray(means), xp.asarray(stds), size=(1000, 2, 3)))
    print(f"  shape {samples.shape}; sample means {samples.mean(0).round(2).tolist()}")
    report.check(
        "shape (1000, 2, 3), moments within 4 standard errors",
        samples.shape == (1000, 2, 3) and bool((np.abs(samples.mean(0) - means) < 4 * stds / np.sqrt(1000)).all()),
    )
    print()


def _mixture(xp: types.ModuleType, report: _Report) -> None:
    """The question's two clusters fitted, then its own start (identical components) warned about."""
    print("4. Gaussian mixture on the question's data (clusters at (0, 0) and (5, 5), identity covariances)")
    data = seed_em_data().T  # the question keeps features in rows
    gm, t_ours = _timed(lambda: gpuvec.GaussianMixture(2, random_state=0).fit(xp.asarray(data)))
    means_fit = gpuvec.to_numpy(gm.means_)
    order = np.argsort(means_fit[:, 0])
    print(
        f"  means =\n{means_fit[order].round(3)}\n  covariances =\n{gpuvec.to_numpy(gm.covariances_)[order].round(3)}"
    )
    report.check(
        "means within 0.1 of (0,0), (5,5); covariances within 0.1 of I",
        bool(
            np.allclose(means_fit[order], [[0, 0], [5, 5]], atol=0.1)
            and np.allclose(gpuvec.to_numpy(gm.covariances_), np.eye(2), atol=0.1)
        ),
    )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        gpuvec.GaussianMixture(
            2, weights_init=[0.5, 0.5], means_init=[[10, 10], [10, 10]], precisions_init=[np.eye(2) / 10] * 2
        ).fit(xp.asarray(data))
    report.check(
        "the question's own start (identical components) is warned about",
        any("identical components" in str(w.message) for w in caught),
    )
    print(f"  fit in {t_ours:.3f} s\n")


def run(size: int = 1000) -> int:
    """Run the demo on the default backend; returns 0 if every answer is right, 1 otherwise.

    ``size`` (1 to :data:`MAX_SIZE`) is the image side of the timed ray comparison; it is checked,
    and the default backend chosen, before anything is printed.
    """
    check_size(size)
    xp = gpuvec.xp
    info = gpuvec.backend_info()
    print(f"gpuvec demo on {info.name} ({info.reason})\n")
    report = _Report()
    _rays(xp, size, report)
    _rotations(xp, report)
    _normal_samples(xp, report)
    _mixture(xp, report)
    print("all answers right" if not report.failures else f"{report.failures} answer(s) WRONG")
    return 0 if not report.failures else 1
