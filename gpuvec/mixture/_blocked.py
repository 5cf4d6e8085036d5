"""The EM pass for large D, written once against the array namespace: GEMMs over row blocks.

At large D the pass is BLAS-3 work. The E-step multiplies each sample by each
component's precision Cholesky factor (N K D^2 multiply-adds; 'tied': one
factor for all components, N D^2), and the M-step adds each component's
weighted second moments (N K D^2; 'tied': only their total enters the shared
covariance, N D^2). Here they are GEMMs over row blocks of ``z = x - shift``:

- 'full': all components in one GEMM per block, the factors side by side
  ((D, K D)) and the weighted rows side by side for the grams, in blocks of at
  least 256 rows where such blocks fit four chunk budgets (1.3x against 2.2x
  the BLAS floor at D = 128, K = 16); else one GEMM per component over
  (rows, D) blocks, which large K D needs to stay bounded;
- 'tied': one GEMM against the shared factor, one for the distances to the K
  whitened means, one for the total second moments (the rows' gram, which a fit
  keeps); a fit's later passes score the rows as ``z . (Lambda d_k) + c_k``, one
  GEMM of N D K, the whitened norms' sum taken from the gram as a trace
  (:func:`_tied_expanded`), where the rows are near enough to the shift;
- 'diag': the rows and their squares side by side, ``[z | z^2]``, one GEMM
  for every distance and one for both moments; 'spherical': one GEMM with
  the means and one for the first moments, the rows' squared norms in
  matrix-vector products (its statistics keep ``sum r |z|^2``); both in
  blocks small enough to be read back from cache (the products are
  memory-bound).

Temporaries are bounded by the chunk budget (never (N, K, D)), per thread where a
large problem's rows run in two halves (:func:`gpuvec.mixture._dispatch.row_spans`);
'diag' and 'spherical' fits may keep their rows between passes, 'tied' fits their grams
(:class:`KeptRows`). sklearn makes
the same products over all of X at once, one component at a time.

:func:`moments` has the signature and the result of the numba loops' (the
statistics of :func:`gpuvec.mixture._xp.sufficient_statistics`);
:func:`e_step_outputs` those of prediction. Which formulation runs is chosen
by :mod:`gpuvec.mixture._dispatch`.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from gpuvec._core.dispatch import chunk_elements
from gpuvec._core.namespace import get_namespace
from gpuvec._core.threads import blas_limited, run_parallel, worker_threads
from gpuvec.mixture._covariance import COVARIANCE_TYPES, exp_nonpositive, logsumexp_last, row_max, sum_last

__all__ = ["e_step_outputs", "label_moments", "moments"]

_LOG_2PI = math.log(2 * math.pi)
# Where the expanded 'tied' distance is below this fraction of |y|^2 + |dP|^2, its rounding (~4 eps of that
# sum) would exceed 1e-12 of it: those entries are computed by subtraction.
_CANCELLATION = 1e-4
_EPS = float(np.finfo(np.float64).eps)
# Rows of a block whose GEMMs run all the components of 'full' at once: below this the GEMMs lose their rate
# (one GEMM of (rows, D) x (D, K D) against K of (rows, D) x (D, D): 1.3x against 2.2x the BLAS floor at
# D = 128, K = 16 here; equal at D = 512, K = 2).
_STACKED_ROWS = 256


# A 'tied' pass after a fit's first scores its rows as z . (Lambda d_k) + c_k without the whitened rows
# (:func:`_tied_expanded`) where the estimated rounding of the scores (eps sqrt(D) max |z| max |Lambda d_k|) and
# of the trace that replaces the whitened norms (eps sqrt(D) |Lambda o S|_F, per unit of row weight) are
# both at most this many nats: rows far from the shift, and precisions far from well-conditioned (collinear
# features: the trace's terms cancel), keep the whitened form. Against long-double sums, the trace's estimate
# was 10-50x its error per row with collinear features (cond(P) 1.3e3: 6.4e-9 against 6.5e-10; 7e3: 3e-7
# against 6e-9) and 3e-12 or less on the bench grid's data (D = 32-1024).
_EXPANDED_ERROR = 1e-10

# Up to this many components, the stacked 'full' pass sums each component's squared distances in one
# einsum (no squares written back) and adds each gram as its own SYRK; above, squares and one GEMM for
# every gram win. Whole fits here (2-core EPYC, 3 iterations, three A/B runs of 5 rounds):
# N = 1e4 D = 128 K = 2 1.07-1.18x faster, K = 4 1.07-1.17x, N = 1e5 D = 128 K = 2 1.00-1.31x,
# N = 2000 D = 128 K = 2 1.13-1.27x, N = 1e4 D = 96 K = 4 1.05-1.18x, D = 512 K = 2 0.98-1.07x.
_FEW_STACKED = 4


def _row_blocks(
    N: int, D: int, K: int, budget: int, stacked: bool = False, small: bool = False, wide: bool = False
) -> Iterator[slice]:
    """Row blocks of about ``budget`` elements of temporaries; 'diag' and 'spherical' (``small``) take a
    quarter: their GEMMs are memory-bound, and the rows ('diag': [Z | Z^2]) read back from cache made a
    'diag' pass 1.5x faster on the 2-core Xeon (D = 512, K = 16, N = 1e4: 21 against 33 ms, an eighth);
    on the 2-core EPYC a quarter made fits 1.00-1.14x faster than an eighth in 15 cells (most at
    D >= 512, K = 64), slower in none; 'full' and 'tied' lose
    GEMM rate in smaller blocks. 'full' one component at a time (``wide``) takes four budgets: each
    block adds K (D, D) grams, and fewer, taller blocks made a pass at N = 1e4, D = 1024, K = 4 1.66-1.78
    -> 1.34 s with the grams as SYRK (:func:`_add_weighted_gram`)."""
    if stacked:
        rows = max(_STACKED_ROWS, budget // (K * D + D))
    else:
        rows = max(1, (budget // 4 if small else 4 * budget if wide else budget) // (D + K))
    for s in range(0, N, rows):
        yield slice(s, min(N, s + rows))


def _triangle_groups(xp: Any, P: Any) -> list[tuple[int, int]]:
    """Column groups ``(start, stop)`` of products with the precision factors P (..., D, D): where every
    factor is upper triangular (as gpuvec and sklearn >= 1.3 make them), the outputs of a group need only
    the factors' first ``stop`` rows (and the samples' first ``stop`` features), so m groups do
    ``(m + 1) / (2 m)`` of a full GEMM's multiply-adds. m = D // 32, at most 8 (fewer, wider groups lose
    less GEMM rate than they save below that): (7900, 512) rows times a factor in 26.5 against 35.1 ms,
    (3900, 1024) 42.4 against 67.2 ms, (8000, 128) 1.9 against 2.6 ms on the 2-core machine. Any other
    factor (a lower one passed to the public functions) takes one group of all D columns."""
    D = P.shape[-1]
    if bool(xp.tril(P, -1).any()):
        return [(0, D)]
    m = max(1, min(8, D // 32))
    width = -(-D // m)
    return [(s, min(D, s + width)) for s in range(0, D, width)]


def _stacked(K: int, D: int, covariance_type: str, budget: int) -> bool:
    """Whether 'full' runs all components in one GEMM per row block ((rows, K D) temporaries) rather than one
    GEMM per component: while blocks of at least :data:`_STACKED_ROWS` rows stay within four budgets and
    the (D, K D) grams that every block adds to fit one budget (beyond, adding them each block costs more
    than one GEMM per component saves: a pass at N = 1e4, D = 128, K = 64 0.58 s stacked against 0.51 s,
    D = 1024, K = 16 8.3 against 5.4 s; at D = 96, K = 64 0.33 against 0.39 s)."""
    return covariance_type == "full" and K > 1 and 4 * budget >= _STACKED_ROWS * K * D and budget > K * D * D


def _log_det(xp: Any, P: Any, covariance_type: str, D: int) -> Any:
    """``sum(log(diag(P_k)))`` per component, (K,) (one value for 'tied', broadcast)."""
    if covariance_type == "spherical":
        return D * xp.log(P)
    diagonal = P if covariance_type == "diag" else xp.diagonal(P, axis1=-2, axis2=-1)
    return xp.log(diagonal).sum(-1)


def _weighted_log_prob(
    xp: Any, Z: Any, d: Any, P: Any, constant: Any, covariance_type: str, extra: Any = None, stacked: Any = None
) -> Any:
    """``log w_k + log N(z | d_k, P_k)``, shape (n, K), of one problem's rows Z (n, D).

    ``d`` (K, D) are the means minus the shift Z was taken about; ``constant`` (K,)
    is ``log w_k + log det P_k - D log(2 pi) / 2``; ``stacked`` is :func:`_problem`'s
    products: for 'full' per column group ``(start, stop)`` of :func:`_triangle_groups`
    the factors' rows ``:stop`` of those columns side by side (None: one GEMM per
    component) and ``d_k P_k`` there; for 'tied' the column groups; for 'diag' the (2 D, K) matrix and (K,) offset whose
    product with ``extra = [Z | Z * Z]`` gives the distances; for 'spherical' the
    (D, K) matrix for Z, the offset and the precisions of the rows' squared
    norms ``extra`` (n,) (what :func:`_rows` gives).
    """
    n, D = Z.shape
    K = d.shape[0]
    if covariance_type == "full":  # per column group of the factors (triangular): all components at once, or each
        maha = xp.zeros((n, K))
        for (start, stop), factors, offsets in stacked:
            if factors is not None:
                y = xp.matmul(Z[:, :stop], factors)
                y -= offsets
                if K <= _FEW_STACKED:
                    y3 = y.reshape(n, K, stop - start)
                    maha += xp.einsum("nkw,nkw->nk", y3, y3)
                    continue
                y *= y
                maha += sum_last(xp, y.reshape(n, K, stop - start))
                continue
            for k in range(K):
                y = xp.matmul(Z[:, :stop], P[k, :stop, start:stop])
                y -= offsets[k]
                y *= y
                maha[:, k] += sum_last(xp, y)
    elif covariance_type == "tied":  # one GEMM for the shared factor (by column groups), one for the distances
        y = xp.empty((n, D))
        for start, stop in stacked:  # written in place (BLAS takes the strided output): 1.15x the copy's speed
            xp.matmul(Z[:, :stop], P[:stop, start:stop], out=y[:, start:stop])
        dP = xp.matmul(d, P)
        ysq, dsq = xp.einsum("ij,ij->i", y, y), sum_last(xp, dP * dP)
        maha = xp.matmul(y, -2.0 * dP.T)
        maha += dsq
        maha += ysq[:, None]
        # |y|^2 - 2 y.dP + |dP|^2 loses ~eps (|y|^2 + |dP|^2) to cancellation: where that is more than 1e-12
        # of the distance (data far from the shift, e.g. clusters on either side of it), subtract instead
        # (found among the pairs below the bound with the largest |dP|^2: one compare and no (n, K) float
        # temporaries, unless one component's whitened mean is far from the others'; flatnonzero, as numpy's
        # 2-D nonzero takes 13x longer)
        flat = xp.flatnonzero(maha < (_CANCELLATION * (ysq + dsq.max()))[:, None])
        rows, cols = flat // K, flat % K
        close = maha[rows, cols] < _CANCELLATION * (ysq[rows] + dsq[cols])
        rows, cols = rows[close], cols[close]
        if rows.shape[0]:
            t = y[rows] - dP[cols]
            maha[rows, cols] = xp.einsum("ij,ij->i", t, t)
    elif covariance_type == "diag":  # one GEMM of the rows and their squares side by side, [Z | Z^2] (n, 2D)
        maha = xp.matmul(extra, stacked[0])
        maha += stacked[1]
    else:  # spherical: one GEMM with the means, and the rows' squared norms
        maha = xp.matmul(Z, stacked[0])
        maha += stacked[1]
        maha += extra[:, None] * stacked[2]
    maha *= -0.5
    maha += constant
    return maha


def _tied_expanded(xp: Any, problem: tuple, P: Any) -> tuple[Any, Any, Any, float]:
    """'tied' scores without the whitened rows: ``(A, c, Lambda, a)`` with ``A = (Lambda d_k)^T`` (D, K),
    ``c_k = constant_k - |d_k P|^2 / 2`` and ``Lambda = P P^T``, the precision, so that a row's
    ``log w_k + log N(z | d_k)`` is ``z A + c - |z|^2_Lambda / 2``. The last term is the same for every
    component: it leaves the responsibilities alone, and its sum over the rows is ``tr(Lambda S)`` with S the
    rows' (weighted) gram, which a fit keeps (:class:`KeptRows`). One GEMM of N D K and one of D^3 a pass in
    place of the whitened rows' N D^2 (triangular: about half that). ``a``: the largest ``|Lambda d_k|``."""
    d, constant, _ = problem
    dP = xp.matmul(d, P)
    A = xp.matmul(P, dP.T)  # (D, K), through the factor: Lambda's own rounding would pass cond(P)^2 on to it
    a = float(xp.sqrt(xp.max(sum_last(xp, (A * A).T))))
    return A, constant - 0.5 * sum_last(xp, dP * dP), xp.matmul(P, P.T), a


def _expanded_holds(xp: Any, memo: dict | None, expanded: tuple, D: int) -> bool:
    """Whether a row span's rounding in :func:`_tied_expanded`'s form stays within ``_EXPANDED_ERROR`` nats a row,
    from its memo (its gram, largest row norm and weight): False where there is no gram yet, or a bound is NaN."""
    if not memo:
        return False
    if "gram_squared" not in memo:
        memo["gram_squared"] = memo["gram"][0] ** 2
    scores = _EPS * math.sqrt(D) * memo["largest"] * expanded[3]
    Lam = expanded[2]
    trace = _EPS * math.sqrt(D * float(xp.sum(Lam * Lam * memo["gram_squared"]))) / max(memo["weight"], 1e-300)
    return scores <= _EXPANDED_ERROR and trace <= _EXPANDED_ERROR


def _problem(
    xp: Any, weights: Any, means: Any, P: Any, shift: Any, covariance_type: str, stacked: bool = False
) -> tuple[Any, Any, Any]:
    """One problem's (d, constant, products) for :func:`_weighted_log_prob`, about ``shift`` (D,); for 'full' the
    products are per column group of the triangular factors (``stacked``: all components' side by side)."""
    K, D = means.shape
    with np.errstate(divide="ignore"):
        constant = xp.log(weights) + _log_det(xp, P, covariance_type, D) - 0.5 * D * _LOG_2PI
    d = means - shift
    if covariance_type == "diag":  # |z - d|^2_prec = z^2 . prec - 2 z . (d prec) + d^2 . prec
        prec = P * P  # (K, D)
        return d, constant, (xp.concatenate([-2.0 * (d * prec).T, prec.T]), sum_last(xp, d * d * prec))
    if covariance_type == "spherical":  # (|z|^2 - 2 z . d + |d|^2) prec
        prec = P * P  # (K,)
        return d, constant, (-2.0 * d.T * prec, sum_last(xp, d * d) * prec, prec)
    if covariance_type == "tied":
        return d, constant, _triangle_groups(xp, P)
    dP = xp.matmul(d[:, None, :], P)[:, 0]  # (K, D): d_k P_k
    groups = []
    for start, stop in _triangle_groups(xp, P):
        if stacked:  # rows :stop of each factor's columns start:stop, side by side: (stop, K w)
            factors = xp.ascontiguousarray(xp.swapaxes(P[:, :stop, start:stop], 0, 1).reshape(stop, -1))
            groups.append(((start, stop), factors, dP[:, start:stop].reshape(-1)))
        else:
            groups.append(((start, stop), None, dP[:, start:stop]))
    return d, constant, groups


def _rows(xp: Any, X: Any, shift: Any, sample_weight: Any, covariance_type: str, out: Any = None) -> tuple[Any, Any]:
    """A block's rows Z about ``shift`` in float64 (zero where the weight is 0: such a row touches no sum,
    whatever it holds), and what its products need besides: for 'diag' ``[Z | Z * Z]`` (n, 2D) with Z its
    left half, for 'spherical' the squared norms ``|z|^2`` (n,), else None. ``out``: where to write them
    (the block's rows of :class:`KeptRows`)."""
    n, D = X.shape
    squares = covariance_type == "diag"
    kept, norms = (None, None) if out is None else out
    ZZ: Any = (xp.empty((n, 2 * D)) if kept is None else kept) if squares else None
    Z = xp.subtract(X, shift, out=ZZ[:, :D] if squares else kept, dtype=xp.float64)
    if sample_weight is not None:
        Z[sample_weight == 0] = 0.0
    if squares:
        xp.multiply(Z, Z, out=ZZ[:, D:])
        return Z, ZZ
    if covariance_type != "spherical":
        return Z, None
    return Z, xp.einsum("ij,ij->i", Z, Z) if norms is None else xp.einsum("ij,ij->i", Z, Z, out=norms)


class KeptRows:
    """What a fit's first pass makes for the others, where :func:`gpuvec.mixture._dispatch.keep_rows` and
    :func:`~gpuvec.mixture._dispatch.keep_grams` say: its rows about the shift, float64 ('diag'
    ``[Z | Z^2]`` (B, N, 2 D), 'spherical' Z (B, N, D) and the squared norms (B, N)), where ``rows``; for
    'tied' the weighted gram of each problem's row span (``grams``, keyed ``(b, lo, hi)``), which no
    parameter moves. Making the rows took a fifth of each 'diag'/'spherical' pass (20-iteration fits at
    N = 1e4, D = 256-1024, K = 16 1.23-1.79x faster on the 2-core machine, 3-iteration ones 1.03-1.12x).
    """

    def __init__(self, xp: Any, B: int, N: int, D: int, covariance_type: str, rows: bool = True) -> None:
        width = 2 * D if covariance_type == "diag" else D
        self.rows = xp.empty((B, N, width)) if rows else None
        self.norms = xp.empty((B, N)) if rows and covariance_type == "spherical" else None
        self.grams: dict[tuple[int, int, int], Any] = {}
        self.made = False

    def block(self, b: int, s: slice) -> tuple[Any, Any] | None:
        """Problem b's rows s: what :func:`_rows` gives (``made``) or fills (``out``); None where no rows are kept."""
        if self.rows is None:
            return None
        return self.rows[b, s], None if self.norms is None else self.norms[b, s]


def moments(
    X: Any,
    params: Any,
    covariance_type: str,
    sample_weight: Any,
    shift: Any,
    budget: int,
    kept: KeptRows | None = None,
    spans: list[tuple[int, int]] | None = None,
    held: float = 0.0,
    expanded_tied: bool = False,
) -> tuple:
    """The statistics of one E-step, ``(nk, sx, sxx, log_likelihood, weight_sum)``, as the numba loops give them.

    Parameters
    ----------
    X : array, shape (B, N, D), float32 or float64 (rows are taken to float64 a block at a time)
    params : MixtureParams
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
    sample_weight : array, shape (B, N), or None
    shift : array, shape (B, 1, D)
    budget : int
        Elements of the largest temporary (:func:`gpuvec._core.dispatch.chunk_elements`).
    kept : KeptRows, optional
        The fit's rows ('diag', 'spherical'): filled by this pass unless ``kept.made``, else read;
        and the 'tied' grams: added by this pass where not yet there, else read.
    spans : list of (int, int), optional
        Ranges of each problem's rows summed separately, then in order, on the worker threads with BLAS
        at one thread under each (:func:`gpuvec.mixture._dispatch.row_spans`); default all N at once.
    held : float, default 0
        In a row block where at most this fraction of the responsibilities is nonzero, the moments sum over
        each component's nonzero rows only ('full': the second moments; 'diag': both; 'spherical': the first)
        (:func:`gpuvec.mixture._dispatch.held_fraction`); 0: GEMMs over every row.
    expanded_tied : bool, default False
        'tied', where ``kept`` holds the grams of an earlier pass: score the rows without their whitened form
        (:func:`_tied_expanded`, :func:`gpuvec.mixture._dispatch.expanded_tied`), where they are near enough
        to the shift.

    Returns
    -------
    nk (B, K), sx (B, K, D), sxx (B,) + ``moments_shape(K, D)``, log_likelihood (B,), weight_sum (B,).
    """
    xp = get_namespace(X)
    B, N, D = X.shape
    K = params.means.shape[1]
    spec = COVARIANCE_TYPES[covariance_type]
    nk, sx = xp.zeros((B, K)), xp.zeros((B, K, D))
    sxx = xp.zeros((B,) + spec.moments_shape(K, D))
    ll, ws = xp.zeros(B), xp.zeros(B)
    stacked = _stacked(K, D, covariance_type, budget)
    spans = [(0, N)] if spans is None else spans
    threads = min(len(spans), worker_threads())
    errors: dict[str, Any] = {**np.geterr(), "call": np.geterrcall()}  # the caller's, for the pool's threads too
    for b in range(B):
        P = params.precisions_cholesky[b]
        problem = _problem(xp, params.weights[b], params.means[b], P, shift[b, 0], covariance_type, stacked)
        parts: list[Any] = [None] * len(spans)
        expanded = None  # 'tied' with the grams of an earlier pass: scores without the whitened rows
        if expanded_tied and kept is not None and (b, *spans[0]) in kept.grams:
            expanded = _tied_expanded(xp, problem, P)

        def run(
            lo: int, hi: int, b: int = b, problem: tuple = problem, P: Any = P, parts: list = parts,
            expanded: tuple | None = expanded,
        ) -> None:  # fmt: skip
            with np.errstate(**errors):
                w = None if sample_weight is None else sample_weight[b, lo:hi]
                rows, memo = None, None
                if kept is not None:
                    block = kept.block(b, slice(lo, hi))
                    rows = None if block is None else (kept.made, block)
                    memo = kept.grams.setdefault((b, lo, hi), {}) if covariance_type == "tied" else None
                if expanded and not _expanded_holds(xp, memo, expanded, D):
                    expanded = None  # no gram yet, rows far from the shift, or an ill-conditioned precision
                parts[spans.index((lo, hi))] = _span_moments(
                    xp, X[b, lo:hi], w, shift[b, 0], problem, P, covariance_type, budget, stacked, rows, held, memo,
                    expanded,
                )  # fmt: skip

        if len(spans) > 1:  # one BLAS thread under each of ours, on any number of them: the same bits
            with blas_limited(always=True):
                run_parallel(run, spans, threads)
        else:
            run(*spans[0])
        for part in parts:  # in the spans' order, whatever the threads
            for acc, value in zip((nk, sx, sxx, ll, ws), part):
                acc[b] += value
    if kept is not None:
        kept.made = True
    return nk, sx, sxx, ll, ws


def _span_moments(
    xp: Any, X: Any, sample_weight: Any, shift: Any, problem: tuple, P: Any, covariance_type: str, budget: int,
    stacked: bool, kept: tuple | None = None, held: float = 0.0, memo: dict | None = None,
    expanded: tuple | None = None,
) -> tuple:  # fmt: skip
    """One problem's statistics ``(nk, sx, sxx, log_likelihood, weight_sum)`` over the rows X (n, D), a block
    of rows at a time; ``kept``: ``(made, (rows, norms))`` of these rows in :class:`KeptRows`; ``held``: as
    in :func:`moments`. 'tied' in a fit: ``memo`` holds these rows' weighted gram ('gram', their sxx, the
    same sums made by an earlier pass) and largest norm ('largest'), or is filled here; with
    ``expanded`` (:func:`_tied_expanded`) the rows are scored without their whitened form."""
    n, D = X.shape
    d, constant, factors = problem
    K = d.shape[0]
    spec = COVARIANCE_TYPES[covariance_type]
    small, wide = not spec.full_matrix, covariance_type == "full" and not stacked
    nk, sx, sxx = xp.zeros(K), xp.zeros((K, D)), xp.zeros(spec.moments_shape(K, D))
    ll, ws = 0.0, 0.0
    grams: Any = xp.zeros((D, K * D)) if stacked else None  # column block k: component k's second moments
    made, (rows_kept, norms_kept) = (False, (None, None)) if kept is None else kept
    gram = None if memo is None else memo.get("gram")
    largest: Any = 0.0  # the rows' largest squared norm, where a 'tied' fit's memo is filled (read once, at the end)
    # (kept rows too go in cache-sized blocks, read from memory once for both GEMMs: blocks as tall as the
    # (rows, K) temporaries allow made a 20-iteration 'diag' N = 1e4 D = 1024 K = 16 fit 580 -> 656 ms)
    for s in _row_blocks(n, D, K, budget, stacked, small, wide):
        block_kept = None if rows_kept is None else (rows_kept[s], None if norms_kept is None else norms_kept[s])
        w = None if sample_weight is None else sample_weight[s]
        if made and block_kept is not None:  # made by the fit's first pass
            rows, norms = block_kept
            Z, extra = (rows[:, :D], rows) if covariance_type == "diag" else (rows, norms)
        else:
            Z, extra = _rows(xp, X[s], shift, w, covariance_type, block_kept)
        if expanded is None:
            lp = _weighted_log_prob(xp, Z, d, P, constant, covariance_type, extra, factors)
        else:  # less |z|^2_Lambda / 2 in every row (added back below, as a trace)
            lp = xp.matmul(Z, expanded[0])
            lp += expanded[1]
        resp, block_ll, block_ws = _responsibilities(xp, lp, w)
        ll += block_ll
        ws += block_ws
        nk += resp.sum(0)
        nonzero = _nonzero_by_component(xp, resp, held)
        if covariance_type == "diag":  # the first and second moments in one product
            both = xp.matmul(resp.T, extra) if nonzero is None else _sparse_product(nonzero, extra)
            sx += both[:, :D]
            sxx += both[:, D:]
            continue
        if covariance_type == "spherical":
            sx += xp.matmul(resp.T, Z) if nonzero is None else _sparse_product(nonzero, Z)
            sxx += xp.matmul(extra, resp)
            continue
        sx += xp.matmul(resp.T, Z)
        if nonzero is not None:  # 'full': each component's gram over its nonzero rows (the others add zeros)
            indptr, rows, values = nonzero
            for k in range(K):
                lo, hi = int(indptr[k]), int(indptr[k + 1])
                if hi > lo:
                    acc = grams[:, k * D : (k + 1) * D] if stacked else sxx[k]
                    _add_weighted_gram(xp, acc, Z[rows[lo:hi]], values[lo:hi])
        elif stacked and K > _FEW_STACKED:  # one GEMM for every component's weighted gram
            grams += xp.matmul(Z.T, (Z[:, None, :] * resp[:, :, None]).reshape(Z.shape[0], K * D))
        elif covariance_type == "full":  # each gram as its own SYRK (stacked, a few: into its column block)
            for k in range(K):
                acc = grams[:, k * D : (k + 1) * D] if stacked else sxx[k]
                _add_weighted_gram(xp, acc, Z, resp[:, k])
        elif gram is None:  # 'tied': every row's responsibilities add up to its weight, whatever the parameters
            if w is None:
                _add_gram(xp, sxx[0], Z)
            else:
                _add_weighted_gram(xp, sxx[0], Z, w)
            if memo is not None:
                largest = xp.maximum(largest, xp.max(xp.einsum("ij,ij->i", Z, Z)))
    if stacked:
        sxx = xp.swapaxes(grams.reshape(D, K, D), 0, 1)
    if memo is not None and gram is None:
        memo["gram"], memo["largest"], memo["weight"] = sxx, math.sqrt(float(largest)), float(ws)
    if expanded is not None and gram is not None:  # the rows' sum of w |z|^2_Lambda / 2: tr(Lambda S) / 2
        ll -= 0.5 * xp.sum(expanded[2] * gram[0])
    return nk, sx, sxx if gram is None else gram, ll, ws


def _responsibilities(xp: Any, lp: Any, w: Any) -> tuple[Any, Any, Any]:
    """A block's responsibilities (n, K) from its log-probabilities ``lp`` (overwritten: one exp for both),
    times the rows' weights ``w`` (n,) (None: 1); and the block's log-likelihood and weight sums."""
    top = row_max(xp, lp)
    lp -= top[:, None]
    resp = exp_nonpositive(xp, lp, out=lp)
    total = sum_last(xp, resp)
    resp /= total[:, None]
    with np.errstate(divide="ignore"):
        log_norm = xp.log(total) + top
    if w is None:
        return resp, log_norm.sum(), lp.shape[0]
    resp *= w[:, None]
    return resp, (xp.where(w > 0, log_norm, 0.0) * w).sum(), w.sum()


def _nonzero_by_component(xp: Any, resp: Any, held: float) -> tuple[Any, Any, Any] | None:
    """``(indptr, rows, values)``: the nonzero entries of a block's responsibilities (n, K) component by
    component, rows ascending (``resp.T`` in CSR form); None where more than ``held`` of them are nonzero.

    Responsibilities are exactly 0 below e^-700 of their row's largest
    (:func:`gpuvec.mixture._covariance.exp_nonpositive`): components far apart in many dimensions leave
    most rows to one component, and the sums over the others' rows are sums of zeros.
    """
    n, K = resp.shape
    if not held or int(xp.count_nonzero(resp)) > held * n * K:
        return None
    RT = xp.ascontiguousarray(resp.T)
    flat = xp.flatnonzero(RT)
    return xp.searchsorted(flat, xp.arange(K + 1) * n), flat % n, RT.reshape(-1)[flat]


def _sparse_product(nonzero: tuple[Any, Any, Any], M: Any) -> Any:
    """``resp.T @ M`` (K, m) from :func:`_nonzero_by_component`'s entries (numpy): one pass of scipy's CSR
    product, one multiply-add per nonzero entry and column of M."""
    from scipy.sparse import csr_matrix  # lazy: scipy.sparse loads only for blocks that take this path

    indptr, rows, values = nonzero
    return csr_matrix((values, rows, indptr), shape=(indptr.shape[0] - 1, M.shape[0])) @ M


def label_moments(
    X: Any, labels: Any, n_components: int, covariance_type: str, sample_weight: Any, shift: Any, budget: int
) -> tuple:
    """Statistics of one-hot responsibilities given as labels, ``(nk, sx, sxx, weight_sum)``: per row block,
    one gather and one gram per component over its own rows (N D^2 in all for 'full', not N K D^2)."""
    xp = get_namespace(X)
    B, N, D = X.shape
    K = n_components
    nk, sx = xp.zeros((B, K)), xp.zeros((B, K, D))
    sxx = xp.zeros((B,) + COVARIANCE_TYPES[covariance_type].moments_shape(K, D))
    ws = xp.zeros(B)
    for b in range(B):
        for s in _row_blocks(N, D, K, budget):
            Z = X[b, s].astype(xp.float64)
            Z -= shift[b, 0]
            w = xp.ones(Z.shape[0]) if sample_weight is None else sample_weight[b, s]
            Z[w == 0] = 0.0  # a zero-weight row touches no sum, whatever it holds
            ws[b] += w.sum()
            lab = labels[b, s]
            for k in range(K):
                rows = lab == k
                Zk, wk = Z[rows], w[rows]
                nk[b, k] += wk.sum()
                sx[b, k] += xp.matmul(wk, Zk)
                if covariance_type == "full":
                    _add_weighted_gram(xp, sxx[b, k], Zk, wk)
                elif covariance_type == "diag":
                    sxx[b, k] += xp.matmul(wk, Zk * Zk)
                elif covariance_type == "spherical":
                    sxx[b, k] += xp.matmul(wk, xp.einsum("ij,ij->i", Zk, Zk))
            if covariance_type == "tied":
                _add_weighted_gram(xp, sxx[b, 0], Z, w)
    return nk, sx, sxx, ws


def _add_weighted_gram(xp: Any, acc: Any, Z: Any, r: Any) -> None:
    """``acc += Z^T (Z * r)`` as ``W^T W`` with ``W = Z sqrt(r)`` (``r >= 0``): numpy's matmul runs a product
    of a matrix with its own transpose as SYRK, half the multiply-adds (1.1-1.4x a GEMM's time here, the
    result exactly symmetric)."""
    W = Z * xp.sqrt(r)[:, None]
    acc += xp.matmul(W.T, W)


def _add_gram(xp: Any, acc: Any, Z: Any) -> None:
    """``acc += Z^T Z`` (SYRK, as :func:`_add_weighted_gram`)."""
    acc += xp.matmul(Z.T, Z)


def e_step_outputs(X: Any, weights: Any, means: Any, P: Any, covariance_type: str, what: str, out: Any) -> Any:
    """Fill ``out`` with 'labels' (B, N), 'proba' (B, N, K) or 'log_norm' (B, N) of X under the parameters."""
    xp = get_namespace(X)
    B, N, D = X.shape
    K = means.shape[1]
    budget = chunk_elements(xp, "mixture")
    stacked = _stacked(K, D, covariance_type, budget)
    small = not COVARIANCE_TYPES[covariance_type].full_matrix
    for b in range(B):
        center = means[b].mean(0)  # rows are taken about the components' centre: less cancellation than about 0
        d, constant, factors = _problem(xp, weights[b], means[b], P[b], center, covariance_type, stacked)
        for s in _row_blocks(N, D, K, budget, stacked, small):
            Z, extra = _rows(xp, X[b, s], center, None, covariance_type)
            lp = _weighted_log_prob(xp, Z, d, P[b], constant, covariance_type, extra, factors)
            if what == "labels":
                out[b, s] = lp.argmax(-1)
                continue
            log_norm = logsumexp_last(xp, lp)
            if what == "proba":
                out[b, s] = xp.exp(lp - log_norm[:, None])
            else:
                out[b, s] = log_norm
    return out
