"""Which implementation of the mixture's passes over X runs: the one place that decides.

Every pass over the data (the E-step with the M-step's sums, prediction) asks
:func:`pass_implementation`; the starts' nearest-centre and k-means++ distances
ask :func:`compiled`.

=======  =============================================  ====================================  ======================
backend  small D or K (:func:`blocked_pays` false)       large D and K (``blocked_pays``;      ``GPUVEC_JIT=0``
                                                        numpy: 'diag'/'spherical' by the rows)
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

Within the blocked pass, also decided here: the row halves on two threads
(:func:`row_spans`), the rows and grams kept between passes (:func:`keep_rows`, :func:`keep_grams`) and the
M-step's sums over nonzero responsibilities only (:func:`held_fraction`).
"""

from __future__ import annotations

import sys
import types
from typing import Any

from gpuvec._core.dispatch import NUMBA_PAYS_WORK, compiled_setting
from gpuvec._core.namespace import is_cupy_namespace

__all__ = [
    "blocked_pays", "compiled", "expanded_tied", "held_fraction", "is_blocked", "keep_grams", "keep_rows",
    "pass_implementation", "row_spans",
]  # fmt: skip


def _loop_wanted(xp: Any, work: int) -> bool:
    """Whether :func:`compiled` would take the numba loops for a pass of ``work`` (without importing them)."""
    if is_cupy_namespace(xp):
        return False
    setting = compiled_setting()
    loaded = "gpuvec.mixture._numba" in sys.modules
    return not (setting == "off" or (setting == "auto" and work < NUMBA_PAYS_WORK and not loaded))


def compiled(xp: Any, work: int) -> types.ModuleType | None:
    """The numba loops (:mod:`gpuvec.mixture._numba`) for a pass of ``work`` (B N K D^2), or None for the reference."""
    if not _loop_wanted(xp, work):
        return None
    try:
        from gpuvec.mixture import _numba
    except ImportError:  # numba missing (a core dependency): the reference
        return None
    return _numba


# 'diag' and 'spherical': the smallest K D at which the blocked pass wins, by rows (B N) up to a bound:
# their loop does one multiply-add per feature and component and reads X once, so it wins at many rows,
# while the GEMMs' share of the work grows with K D. Measured on the 2-core machine of
# benchmarks/RESULTS.md, whole fits, interleaved, loop / blocked time:
#   'diag'  N = 2,000: K = 8 D = 512 1.2, K = 16 D = 256 1.3, K = 64 D = 64 1.3 (K = 16 D = 128 0.9);
#           N = 10,000: K = 16 D = 512 1.08, K = 64 D = 128 1.22 (K = 16 D = 128 0.86);
#           N = 30,000-100,000: K = 64 D = 512 1.12 (K = 64 D = 128 0.83-0.97, K = 16 D = 512 0.79).
#   'spherical' N = 2,000-5,000: K >= 8 from D = 32 1.0-3.6, K = 5 from D = 128 1.0-1.7;
#           N = 10,000: K = 16 D = 128 1.26, K = 8 D = 256 1.03; N = 100,000: K = 16 D = 128 0.96,
#           K = 64 D = 128 1.09, K = 16 D = 512 1.30.
#   (K = 2 and 3 stay on the loop from 8192 rows: 'spherical' N = 5,000-20,000 D = 512 0.82-0.94.)
# Rows: (rows below, smallest K D, smallest K); the first row whose bound the rows are below decides.
_SMALL_K_D = {
    "diag": ((8192, 4096, 1), (32768, 8192, 1), (None, 32768, 1)),
    "spherical": ((32768, 2048, 8), (None, 4096, 8)),
}


def blocked_pays(K: int, D: int, covariance_type: str, samples: int | None = None) -> bool:
    """Whether one GEMM per row block and component beats the fused per-sample loop, for ``samples``
    (B N) rows in all; ``samples=None`` where the alternative is not the loop (cupy, ``GPUVEC_JIT=0``
    or a pass too small to load it): there, whatever the rows, 'diag' takes the blocked pass from
    D = 64 with K >= 8, 'spherical' from D = 32 with K >= 8, 128 with K >= 5, 512 with any K.

    Measured on the 2-core machine of benchmarks/RESULTS.md (best of 3-6, numba loop / blocked GEMMs):
    'full' crosses at D = 96 (one pass, N = 20,000: 0.6-0.8x at D = 64, 1.0-1.7x at 96 for K = 2 to
    64); 'tied' at D = 48 for K = 2 (1.2x; 1.9x at 96) and D = 24 for K >= 16 (2.1-3.2x; 6.5x at
    D = 48 K = 64). 'diag' and 'spherical' by the rows too (``_SMALL_K_D``): 'diag' from K D = 4096
    below 8192 rows, 8192 below 32768, 32768 from there; 'spherical' below 8192 rows with K >= 8
    from D = 32, K >= 5 from D = 128 or any K from D = 512 (K = 2-3, N = 2,000: 1.4x), then with
    K >= 8 from K D = 2048, and 4096 from 32768 rows.
    Not measured on a GPU.
    """
    if covariance_type == "full":
        return D >= 96
    if covariance_type == "tied":
        return D >= 48 or (D >= 24 and K >= 8)
    if samples is None and covariance_type == "diag":  # not against the loop: the row-free rules measured
        return D >= 64 and K >= 8  # before the loop took diagonal factors faster
    if samples is None or (covariance_type == "spherical" and samples < 8192):
        return D >= 512 or (D >= 128 and K >= 5) or (D >= 32 and K >= 8)
    for below, smallest, fewest in _SMALL_K_D[covariance_type]:
        if below is None or samples < below:
            return smallest <= K * D and fewest <= K
    return False  # not reached: the last row has no bound


def pass_implementation(xp: Any, B: int, N: int, K: int, D: int, covariance_type: str) -> types.ModuleType | None:
    """The module whose ``moments`` and ``e_step_outputs`` run a pass over X, or None for :mod:`gpuvec.mixture._xp`.

    ``_blocked`` where :func:`blocked_pays`, else the fused ``_numba`` loop where it runs (:func:`compiled`).
    """
    work = B * N * K * D * D
    if blocked_pays(K, D, covariance_type, B * N if _loop_wanted(xp, work) else None):
        from gpuvec.mixture import _blocked

        return _blocked
    return compiled(xp, work)


def is_blocked(impl: types.ModuleType | None) -> bool:
    """Whether :func:`pass_implementation` chose the blocked GEMMs (whose ``moments`` also take the row
    spans and a fit's kept rows), without importing them."""
    return impl is not None and impl.__name__ == "gpuvec.mixture._blocked"


# Rows times features from which the blocked pass (numpy) sums two halves of a problem's rows on two threads
# (BLAS at one thread under each). Whole fits on the 2-core machine, interleaved, one range / two halves:
# N D = 1e8 ('spherical' N = 1e5 D = 1024 K = 16 1.39, 'diag' K = 64 1.27), 5e7 ('spherical' D = 512
# K = 64 1.17, 'tied' K = 16 1.09), 1.3e7 ('full' N = 1e5 D = 128 K = 16 1.09, 'tied' 0.82), and
# below 1e7 0.63-0.98 (N = 1e4, D = 128-1024, every type; the threads' hand-offs and BLAS switches).
HALVES_FROM = 1 << 25


def row_spans(xp: Any, N: int, D: int, K: int, covariance_type: str) -> list[tuple[int, int]]:
    """The ranges of a problem's N rows whose statistics the blocked pass sums separately, then in order:
    two halves (for two threads) on numpy from ``N D >= HALVES_FROM``, else all N. Fixed by the shape, never
    by the threads, and run with BLAS at one thread under each of gpuvec's threads: one thread gives the
    same sums as two.

    Examples
    --------
    >>> import numpy as np
    >>> row_spans(np, 100_000, 512, 16, "diag")
    [(0, 50000), (50000, 100000)]
    >>> row_spans(np, 10_000, 512, 16, "diag")
    [(0, 10000)]
    """
    if is_cupy_namespace(xp) or N * D < HALVES_FROM or N < 2:
        return [(0, N)]
    return [(0, N // 2), (N // 2, N)]


# Elements (float64) up to which a fit keeps its rows between passes ('diag' [Z | Z^2], 'spherical' Z and
# |z|^2: 256 MiB): a fifth of each pass on the 2-core machine went to making them.
KEEP_ROWS_ELEMENTS = 1 << 25


def keep_rows(xp: Any, B: int, N: int, K: int, D: int, covariance_type: str) -> bool:
    """Whether a fit of B problems of N rows keeps them between EM passes (:class:`gpuvec.mixture._blocked.KeptRows`):
    'diag' and 'spherical' on numpy where the blocked pass runs and they take at most ``KEEP_ROWS_ELEMENTS``.
    Not on cupy, whose memory is scarcer (and whose passes have not been measured). 'tied' keeps its grams
    (:func:`keep_grams`) but not its rows: 3-iteration fits at N = 1e4, D = 128, K = 64 were 0.8-0.95x as
    fast with them (the kept rows are fresh memory, slow to touch first on the 2-core machine; the row
    blocks are reused).

    Examples
    --------
    >>> import numpy as np
    >>> keep_rows(np, 1, 10_000, 16, 1024, "diag"), keep_rows(np, 1, 1_000_000, 16, 1024, "diag")
    (True, False)
    """
    if is_cupy_namespace(xp) or covariance_type not in ("diag", "spherical"):
        return False
    if B * N * (2 * D if covariance_type == "diag" else D + 1) > KEEP_ROWS_ELEMENTS:
        return False
    return is_blocked(pass_implementation(xp, B, N, K, D, covariance_type))


def keep_grams(xp: Any, B: int, N: int, K: int, D: int, covariance_type: str) -> bool:
    """Whether a 'tied' fit keeps its rows' weighted grams from the first pass for the others (B D^2 numbers
    a row span, and their squares for :func:`expanded_tied`'s check: the shared covariance's second moments,
    which no parameter moves): wherever the blocked pass runs, on any backend, while the grams of two spans
    and their squares take at most ``KEEP_ROWS_ELEMENTS``. Keeping them alone (before :func:`expanded_tied`):
    3-iteration fits on the 2-core machine, three A/B runs, N = 1e4 D = 128 K = 64 1.08-1.23x faster,
    D = 512 K = 16 1.31-1.53x, D = 1024 K = 2 1.36-1.45x, N = 1e5 D = 128 K = 16 1.19-1.36x, N = 2e4
    D = 32 K = 10 0.95-1.11x.

    Examples
    --------
    >>> import numpy as np
    >>> keep_grams(np, 1, 10_000, 64, 128, "tied"), keep_grams(np, 1, 10_000, 64, 128, "full")
    (True, False)
    >>> keep_grams(np, 100, 10_000, 16, 1024, "tied")  # 100 problems' grams would take 800 MiB a span
    False
    """
    if covariance_type != "tied" or 4 * B * D * D > KEEP_ROWS_ELEMENTS:
        return False
    return is_blocked(pass_implementation(xp, B, N, K, D, covariance_type))


def expanded_tied(N: int, D: int) -> bool:
    """Whether a 'tied' pass after a fit's first scores its N rows without their whitened form
    (:func:`gpuvec.mixture._blocked._tied_expanded`: one GEMM of N D K and the precision ``P P^T``, D^3, in
    place of the triangular products' ~N D^2 / 2): wherever N >= 2 D. (Rows far from the shift keep the
    whitened form whatever this says: that is a question of rounding, settled in the pass.)

    Examples
    --------
    >>> expanded_tied(10_000, 128), expanded_tied(1000, 1000)
    (True, False)
    """
    return N >= 2 * D


def held_fraction(xp: Any, D: int, covariance_type: str) -> float:
    """The largest fraction of nonzero responsibilities in a row block at which the blocked pass sums the
    M-step's moments over each component's nonzero rows only (0: never), on numpy.

    Responsibilities below e^-700 of their row's largest are exactly 0 (components far apart in many
    dimensions: most rows belong to one). 'full' then adds each component's gram over its own rows (one
    SYRK of those rows instead of all of them: the products scale with the nonzero entries); 'diag' and
    'spherical' take the product ``resp^T [Z | Z^2]`` (or ``resp^T Z``) as a sparse one, one multiply-add
    per nonzero entry and feature against a GEMM's K per row, which pays for rows of 1024 values and more
    with up to about 1/8 of the entries nonzero. Isolated products on the 2-core EPYC against the GEMM, rows
    of 2000 values: K = 64 1.8-4.3x faster at 1-4 nonzeros a row, K = 8-16 1.6-1.7x at 1/8 nonzero;
    1024 values, 455 rows, K = 64: 8.9x at one nonzero a row, 0.87x at eight (1/8: about where they meet);
    256 values: K = 16 1.7x, K = 64 1.0x at 1/16; 64 values 0.3-0.6x at any fraction. Whole fits
    (3 iterations, grid data): 'diag' N = 1e3-1e4, D = 1000-1024, K = 16-64 1.08-1.17x faster, D = 512
    1.03-1.04x; 'full' N = 1e3-1e4, D = 128, K = 16-64 1.35-1.37x.
    'tied' adds one gram of all rows (its weights sum to 1): nothing to skip. Not on cupy (not measured).

    Examples
    --------
    >>> import numpy as np
    >>> held_fraction(np, 1000, "diag"), held_fraction(np, 128, "diag"), held_fraction(np, 32, "full")
    (0.125, 0.0, 0.5)
    """
    if is_cupy_namespace(xp) or covariance_type == "tied":
        return 0.0
    if covariance_type == "full":
        return 0.5
    return 0.125 if (2 * D if covariance_type == "diag" else D) >= 1024 else 0.0
