"""Which implementation of the mixture's passes over X runs: the one place that decides.

Every pass over the data (the E-step with the M-step's sums, prediction) asks
:func:`pass_implementation`; the starts' nearest-centre and k-means++ distances
ask :func:`compiled`.

=======  =============================================  ====================================  ======================
backend  small D or K (:func:`blocked_pays` false)       large D and K (``blocked_pays``)      ``GPUVEC_JIT=0``
=======  =============================================  ====================================  ======================
numpy    ``_numba``: one fused loop per sample (auto:   ``_blocked``: GEMMs over row blocks    ``_xp``, or
         from ``NUMBA_PAYS_WORK``, or once loaded)      (all components in one where it fits) ``_blocked``
cupy     ``_xp`` (all components in one GEMM)           ``_blocked`` (cuBLAS)                 the same
=======  =============================================  ====================================  ======================

Where D is small the fused loop wins: it reads each sample once and does the
triangular and symmetric halves of the products, while GEMMs over a block
pay for temporaries as large as the work. Where D and K are large the
products are BLAS-3 work (N K D^2 multiply-adds for 'full'; N D^2 for 'tied',
whose statistics keep one total; N K D for 'diag' and 'spherical'), and BLAS
runs them at several times the loop's rate. ``_blocked`` is namespace code,
not compiled: ``GPUVEC_JIT=0`` keeps it. The reference ``_xp`` formulation and
the other two compute the same statistics (tests/mixture/test_implementations.py).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from gpuvec._core.dispatch import NUMBA_PAYS_WORK, compiled_setting
from gpuvec._core.namespace import is_cupy_namespace

__all__ = ["blocked_pays", "compiled", "pass_implementation"]

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


def blocked_pays(K: int, D: int, covariance_type: str) -> bool:
    """Whether one GEMM per row block and component beats the fused per-sample loop.

    Measured on the 2-core machine of benchmarks/RESULTS.md (one pass, N = 20,000, best of 3,
    numba loop / blocked GEMMs): 'full' crosses at D = 96 (0.6-0.8x at D = 64, 1.0-1.7x at 96 for
    K = 2 to 64); 'tied' at D = 48 for K = 2 (1.2x; 1.9x at 96) and D = 24 for K >= 16 (2.1-3.2x;
    6.5x at D = 48 K = 64); 'diag' only with K >= 8, from D = 64 (1.1-1.6x at 96-128; with K = 2 the
    loop stays 2x faster up to D = 256). 'spherical' (whose blocked pass has no squares to multiply;
    whole fits, N = 2,000, 5,000 and 20,000): with K >= 8 from D = 32 (1.2-3.1x), with K = 5 from
    D = 128 (1.1-2.1x), with K = 2 or 3 from D = 512 (1.1-1.7x; 0.75-1.54x at D = 256).
    Not measured on a GPU.
    """
    if covariance_type == "full":
        return D >= 96
    if covariance_type == "tied":
        return D >= 48 or (D >= 24 and K >= 8)
    if covariance_type == "spherical":
        return D >= 512 or (D >= 128 and K >= 5) or (D >= 32 and K >= 8)
    return D >= 64 and K >= 8


def pass_implementation(xp: Any, B: int, N: int, K: int, D: int, covariance_type: str) -> types.ModuleType | None:
    """The module whose ``moments`` and ``e_step_outputs`` run a pass over X, or None for :mod:`gpuvec.mixture._xp`.

    ``_blocked`` where :func:`blocked_pays`, else the fused ``_numba`` loop where it runs (:func:`compiled`).
    """
    if blocked_pays(K, D, covariance_type):
        from gpuvec.mixture import _blocked

        return _blocked
    return compiled(xp, B * N * K * D * D)
