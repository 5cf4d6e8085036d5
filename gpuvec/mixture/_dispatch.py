"""Which implementation of the mixture's passes over X runs: the one place that decides.

Every pass over the data (the E-step with the M-step's sums, the starts'
nearest-centre and k-means++ distances, prediction) asks :func:`compiled`:

=======  ===================================================  ===================
backend  ``GPUVEC_JIT`` unset (auto) or on                    ``GPUVEC_JIT=0``
=======  ===================================================  ===================
numpy    ``_numba`` (fused loops, every covariance type;      ``_xp`` / ``_starts``
         auto: from ``NUMBA_PAYS_WORK``, or once loaded)      (numpy reference)
cupy     ``_xp`` / ``_starts`` on cupy (the reference)        the same
=======  ===================================================  ===================

The reference is written once against the array namespace; the numba loops
compute the same statistics in one pass over X (compared with the reference
in tests/mixture/test_implementations.py).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from gpuvec._core.dispatch import NUMBA_PAYS_WORK, compiled_setting
from gpuvec._core.namespace import is_cupy_namespace

__all__ = ["compiled"]


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
