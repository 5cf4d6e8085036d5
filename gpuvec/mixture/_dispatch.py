"""Which implementation of the mixture's passes over X runs: the one place that decides.

Every pass over the data (the E-step with the M-step's sums, prediction) asks
:func:`pass_implementation`; the starts' nearest-centre and k-means++ distances
ask :func:`compiled`:

=======  ==============================================  ====================================  ==================
backend  small D (``D < BLOCKED_FROM_D[type]``)           large D                               ``GPUVEC_JIT=0``
=======  ==============================================  ====================================  ==================
numpy    ``_numba``: one fused loop per sample (auto:    ``_blocked``: one GEMM per row block  ``_xp`` (reference)
         from ``NUMBA_PAYS_WORK``, or once loaded)       and component (BLAS-3)                 or ``_blocked``
cupy     ``_xp`` (all components in one GEMM)            ``_blocked`` (cuBLAS)                  the same
=======  ==============================================  ====================================  ==================

The reference is written once against the array namespace; the numba loops
and the blocked GEMMs compute the same statistics (compared with the reference
in tests/mixture/test_implementations.py). Where D is large, a per-sample loop
cannot compete with BLAS: the E-step and the M-step are each N K D^2
multiply-adds ('tied': N D^2), which BLAS runs at many times a scalar loop's
rate; where D is small, one fused loop beats GEMMs whose temporaries are
larger than the work. ``BLOCKED_FROM_D`` is where the two meet on the 2-core
machine of benchmarks/RESULTS.md (one pass, interleaved, best of several).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from gpuvec._core.dispatch import NUMBA_PAYS_WORK, compiled_setting
from gpuvec._core.namespace import is_cupy_namespace

__all__ = ["BLOCKED_FROM_D", "compiled", "pass_implementation"]

# The dimension from which per-component GEMMs beat the fused loop, by covariance type.
BLOCKED_FROM_D: dict[str, int] = {"full": 16, "tied": 16, "diag": 16, "spherical": 16}


def compiled(xp: Any, work: int) -> types.ModuleType | None:
    """The numba loops (:mod:`gpuvec.mixture._numba`) for a pass of ``work`` (B N K D^2), or None for the reference."""
    if is_cupy_namespace(xp):
        return None
    setting = compiled_setting()
    loaded = "gpuvec.mixture._numba" in sys.modules
    if setting == "off" or (setting == "auto" and work < NUMBA_PAYS_WORK and not loaded):
        return None
    try:
        from gpuvec.mixture import _numba
    except ImportError:  # numba missing (a core dependency): the reference
        return None
    return _numba


def pass_implementation(xp: Any, B: int, N: int, K: int, D: int, covariance_type: str) -> types.ModuleType | None:
    """The module whose ``moments`` and ``e_step_outputs`` run a pass over X, or None for :mod:`gpuvec.mixture._xp`.

    ``_numba`` where D is small, ``_blocked`` where it is large (the table above).
    """
    if BLOCKED_FROM_D[covariance_type] <= D:
        from gpuvec.mixture import _blocked

        return _blocked
    return compiled(xp, B * N * K * D * D)
