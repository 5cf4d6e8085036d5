"""Every knob of gpuvec's implementation choices, in one place.

Each algorithm's ``_dispatch`` module chooses among its implementations (numpy
reference, numba, CUDA) and reads what it needs from here:

- :func:`compiled_setting`: ``GPUVEC_JIT`` (auto, on or off), read on every call;
- :func:`chunk_elements`: how large one chunk of work is, per backend;
- ``NUMBA_PAYS_*``: when a numba loop repays its first-use cost in a new
  process (a compiled loop already loaded in this process always runs).
"""

from __future__ import annotations

import os
import types
from typing import Literal

from gpuvec._core.namespace import is_cupy_namespace

__all__ = [
    "NUMBA_PAYS_MATRICES",
    "NUMBA_PAYS_SAMPLES",
    "NUMBA_PAYS_WORK",
    "SERIAL_BELOW",
    "XP_BELOW_SAMPLES",
    "chunk_elements",
    "compiled_enabled",
    "compiled_setting",
]


# --------------------------------------------------------------------------- "compiled code pays off"

# Both thresholds are about numba's one-time load in a new process (~0.6-0.7 s on the 2-core
# machine of benchmarks/RESULTS.md): below them the numpy reference finishes first.
# ray_max, fixed-num 2-D rays: samples computed by the numpy loop in this process (the current call
# included) before numba takes over (a ski-rental rule: repeated small calls reach numba too).
NUMBA_PAYS_SAMPLES = 1 << 26
# Mixtures: the work of one call (B x N x K x D x D) from which the fused numba loop runs.
NUMBA_PAYS_WORK = 1 << 22
# nearest_rotation: 3x3 matrices from which the numba loop runs (numpy's batched SVD takes about 0.6 s
# for this many here, as long as numba's first load).
NUMBA_PAYS_MATRICES = 1 << 18
# ray_max: fixed-num 2-D calls up to this many samples (a 16 x 16 image at num=16), while numba is not
# loaded, take map_coordinates in one call (0.08 ms at 8 x 8 here) instead of the numpy loop (0.17 ms).
XP_BELOW_SAMPLES = 1 << 12

# --------------------------------------------------------------------------- threads

# Work below which a CPU loop runs on the calling thread alone: handing spans to the pool costs about
# 0.1 ms a call here, more than the whole of such a call (rays: cells x num samples, a few ns each;
# mixtures: B N K D^2 of one pass; covariances: entries of the stack that multivariate_normal
# factors, where the threads also cost BLAS's limit (~1 ms: 1000 covariances of 10 x 10 took 1.45 ms
# on two threads, 0.57 ms on one). See gpuvec._core.threads.threads_for.
SERIAL_BELOW: dict[str, int] = {"rays": 1 << 15, "mixture": 1 << 16, "rotations": 1 << 12, "covariances": 1 << 20}


# --------------------------------------------------------------------------- chunk sizes


# Elements per chunk, by (what, backend). The algorithm modules ask :func:`chunk_elements`
# and never branch on the backend for a size. Each figure was measured (benchmarks/RESULTS.md):
_CHUNK_ELEMENTS: dict[str, tuple[int, int]] = {
    #                      numpy     cupy
    # Largest per-chunk temporary of the EM pass (B x n x max(K, D) x D elements): ~8 MB keeps a
    # 2-core CPU's temporaries in cache; the GPU wants few launches (2**20 was 2x slower on an H200).
    "mixture": (1 << 20, 1 << 24),
    # Matrices per chunk of the rotation checks: the nine entry rows of a CPU chunk stay in cache.
    "rotations": (1 << 12, 1 << 20),
    # Rows x columns per block of the ray loops: the blocked numpy loop keeps a dozen float64 rows
    # of the image width in cache (256 KiB); the GPU fallbacks take large blocks.
    "rays_block": (1 << 15, 1 << 24),
    # Points per map_coordinates call on the general ray paths (any order, any mode, dense rays).
    "rays_points": (1 << 21, 1 << 21),
}


def chunk_elements(xp: types.ModuleType, what: str) -> int:
    """How many elements one chunk of ``what`` should hold on the backend of ``xp``.

    Examples
    --------
    >>> import numpy as np
    >>> chunk_elements(np, "rotations")
    4096
    """
    numpy_size, cupy_size = _CHUNK_ELEMENTS[what]
    return cupy_size if is_cupy_namespace(xp) else numpy_size


_JIT_WORDS = {
    "": "auto",
    "auto": "auto",
    "1": "on",
    "true": "on",
    "on": "on",
    "yes": "on",
    "0": "off",
    "false": "off",
    "off": "off",
    "no": "off",
}


def compiled_setting() -> Literal["auto", "on", "off"]:
    """``GPUVEC_JIT`` as one of three settings for the compiled implementations.

    ``auto`` (unset or empty): compiled code runs where it pays; on the CPU the
    numba loops take work large enough to repay numba's one-time load in a new
    process (about half a second), or any work once they are loaded. ``on``
    (``1``/``true``/``yes``): always, where an implementation exists. ``off``
    (``0``/``false``/``no``): never; the namespace reference runs, on either
    backend. Read on every call, so tests and benchmarks can switch it.

    Raises
    ------
    ValueError
        If ``GPUVEC_JIT`` holds anything else.

    Examples
    --------
    >>> compiled_setting() in ("auto", "on", "off")
    True
    """
    value = os.environ.get("GPUVEC_JIT", "").strip().lower()
    if value in _JIT_WORDS:
        return _JIT_WORDS[value]  # type: ignore[return-value]
    msg = (
        "GPUVEC_JIT must be one of auto or empty (compiled paths where they pay), 1, true, on, yes (always) "
        f"or 0, false, off, no (never); got {value!r}"
    )
    raise ValueError(msg)


def compiled_enabled() -> bool:
    """Whether compiled implementations may run at all (``GPUVEC_JIT`` is not off); see :func:`compiled_setting`.

    Examples
    --------
    >>> compiled_enabled() == (compiled_setting() != "off")
    True
    """
    return compiled_setting() != "off"


