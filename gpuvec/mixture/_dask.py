"""GaussianMixture on dask arrays: imported by :mod:`gpuvec.mixture` only for dask inputs.

Two patterns (``../shared/SCALEOUT.md`` sections 4.3 and 4.4), chosen by X's chunks:

- **(B, N, D) with whole problems in each block** (N in one chunk; chunks
  along D are merged): each block of problems is a complete in-memory fit,
  run where the block lives (one task per block; no communication between
  iterations). Each task returns its fitted parameters as numpy, its warnings
  and its error, with problems named by their index in the block; the client
  re-numbers them to the *global* index and warns or raises once. The random
  starts of a block come from its own generator (seeded from
  ``random_state``), so they differ from the in-memory fit's; explicit starts
  give the in-memory result. A warm start (``warm_start=True`` after a fit
  of the same B and D) goes on by the second pattern, whatever the chunks.
- **(N, D) chunked along N, or (B, N, D) with N split** (a few huge problems):
  the EM loop runs on the client, the data stays on the workers. Each
  iteration is one pass: every block returns the
  :class:`~gpuvec.mixture.SufficientStats` of its problems (packed in one
  float64 row, zeros for other blocks' problems), ``sum(split_every=8)`` adds
  them in a tree, and the client runs
  :func:`~gpuvec.mixture.params_from_statistics`, the regularisation retry and
  the convergence test exactly as :func:`~gpuvec.mixture.fit_em` does, with
  its active set (a converged problem or start leaves the pass). The data's
  shift is computed once per fit, in the first pass (with the finiteness and
  ``sample_weight`` checks). ``n_init`` starts are one more batch axis of the
  statistics: one pass serves every start still running. From the same start
  the result is the in-memory fit's up to the summation order.

Initialisation in the second pattern reads the data in the first pass only:
the random inits (k-means++, kmeans, random, random_from_data) run in memory
on a uniform sample of at most :data:`INIT_SAMPLE_ROWS` rows per problem
gathered to the client (all rows when N is no larger: then the start is the
in-memory fit's with the same ``random_state``). A complete explicit start
reads nothing.

Fitted parameters are small numpy arrays on the client whatever the chunk
type (cupy chunks: the statistics and parameters come back as numpy, so the
client needs no GPU); arrays that scale with the data (labels,
responsibilities, log-likelihoods) are lazy dask arrays with the input's
chunk type. gpuvec never starts a cluster: every compute goes to dask's
current scheduler (the threaded one, or the active ``distributed.Client``),
with BLAS limited to one thread per dask thread around it (unlimited, an EM
pass was 3.5x slower).
"""

from __future__ import annotations

import re
import warnings
from typing import Any

import numpy as np

from gpuvec._core.checks import warn_at_caller
from gpuvec._core.dispatch import chunk_elements
from gpuvec._core.namespace import get_namespace, is_dask_array, to_numpy
from gpuvec._core.threads import blas_limited
from gpuvec.mixture._covariance import COVARIANCE_TYPES
from gpuvec.mixture._em import em_loop, interleave_starts, params_ok
from gpuvec.mixture._fit import convergence_warning_class, finish, n_parameters, store, warm_state
from gpuvec.mixture._validation import (
    Settings,
    check_matches_fit,
    check_n_samples,
    check_weight_shape,
    check_weight_values,
    check_X_metadata,
)
from gpuvec.mixture._xp import MixtureParams, SufficientStats, e_step, sufficient_statistics

__all__ = ["INIT_SAMPLE_ROWS", "aic", "bic", "fit", "fit_predict", "predict", "predict_proba", "score", "score_samples"]

INIT_SAMPLE_ROWS = 100_000
"""Rows of the uniform sample that an (N, D) dask fit's random initialisation runs on."""

SPLIT_EVERY = 8
"""Fan-in of the tree that adds the blocks' statistics."""


def _dask():
    try:
        import dask
        import dask.array as da
    except ImportError:  # pragma: no cover - a dask array without dask cannot exist
        msg = "GaussianMixture on dask arrays needs the extra: pip install 'gpuvec[dask]'"
        raise TypeError(msg) from None
    return dask, da


def _compute(*collections):
    dask, _ = _dask()
    with blas_limited(always=True):  # held around the whole compute: the tasks run in dask's threads
        return dask.compute(*collections)


# --------------------------------------------------------------------------- validation


def _chunk_xp(X):
    """numpy or cupy: the namespace of X's chunks (from its meta)."""
    return get_namespace(X._meta)


def _check_X(gm, X, *, fitting: bool) -> None:
    """The in-memory fit's checks of X that read no values, and those of a dask array's chunks."""
    if not is_dask_array(X):
        msg = (
            f"X is a {type(X).__module__}.{type(X).__name__} while sample_weight is a dask array: pass both as dask "
            "arrays (dask.array.from_array(X, chunks=...)), or sample_weight in memory"
        )
        raise TypeError(msg)
    if any(np.isnan(c) for c in X.shape):
        raise ValueError(f"X has unknown chunk sizes (shape {X.shape}): call X.compute_chunk_sizes() first")
    check_X_metadata(tuple(X.shape), X.dtype)
    if fitting:
        check_n_samples(X.shape[-2], gm.n_components)
    else:
        check_matches_fit(gm, tuple(X.shape))


def _result_dtype(X):
    return np.float32 if X.dtype == np.float32 else np.float64


def _weight_as_dask(sample_weight, X, shape, chunks, scaled=False):
    """sample_weight (dask or in memory) as a float64 dask array of ``shape`` chunked like X's leading axes."""
    _, da = _dask()
    if type(sample_weight).__module__.split(".sparse")[0] in ("scipy", "cupyx.scipy"):
        raise TypeError("sample_weight must be a dense array; got a sparse matrix (use .toarray())")
    if not is_dask_array(sample_weight):
        in_memory = (
            sample_weight
            if hasattr(sample_weight, "__array_namespace__") or hasattr(sample_weight, "__cuda_array_interface__")
            else np.asarray(sample_weight)
        )
        get_namespace(X._meta, in_memory)  # TypeError for numpy weights with cupy chunks: no silent copy
        sw = da.from_array(in_memory, chunks=-1)
    else:
        sw = sample_weight
        get_namespace(X._meta, sw._meta)  # the same chunk type as X's
    if np.dtype(sw.dtype).kind not in "biuf":
        raise TypeError(f"sample_weight must be a real numeric array; got dtype {sw.dtype}")
    if tuple(sw.shape) != shape:
        raise ValueError(f"sample_weight must have shape {shape} to match X; got shape {tuple(sw.shape)}")
    sw = sw.astype(np.float64).rechunk(chunks)
    if not scaled:  # for in-memory fits of blocks, which scale their own
        return sw
    # scaled to mean 1 over each problem's positive weights, as in memory (validate_sample_weight)
    positive, total = _compute((sw > 0).sum(axis=-1), sw.sum(axis=-1))
    positive, total = np.asarray(positive, dtype=np.float64), np.asarray(total)
    scale = np.where(total > 0, positive / np.where(total > 0, total, 1.0), 1.0)
    return sw * (scale[..., None] if scale.ndim else float(scale))


# --------------------------------------------------------------------------- N split: the EM loop on the client


def _layout(S, K, D, covariance_type):
    """Shapes of the packed statistics of S starts: nk, sx, sxx, log-likelihood, weight sum."""
    tail = COVARIANCE_TYPES[covariance_type].moments_shape(K, D)
    return ((S, K), (S, K, D), (S,) + tail, (S,), (S,))


def _unpack(vec, shapes):
    out, at = [], 0
    for shape in shapes:
        size = int(np.prod(shape))
        out.append(vec[at : at + size].reshape(shape))
        at += size
    return out


def _first_pass_block(x, w=None, *, n_problems, block_info=None):
    """One (b, n, D) block's sums for the shifts and the checks, as a (1, 1, B * (2D + 5)) float64 numpy row
    (zeros for the problems of other blocks). Per problem: sum x (D), rows, sum w x (D), sum w, non-finite
    x, bad weights (non-finite or negative), positive weights."""
    xp = get_namespace(x)
    b0, b1 = block_info[0]["array-location"][0]
    b, n, D = x.shape
    x64 = x.astype(xp.float64, copy=False)
    rows = xp.zeros((b, 2 * D + 5))
    rows[:, :D] = x64.sum(1)
    rows[:, D] = n
    finite = xp.isfinite(x64)
    rows[:, 2 * D + 2] = n * D - finite.sum((1, 2))
    if w is not None:
        w = w.reshape(b, n)
        good = xp.isfinite(w) & (w >= 0)
        wz = xp.where(good, w, 0.0)
        rows[:, D + 1 : 2 * D + 1] = xp.matmul(wz[:, None, :], xp.where(finite, x64, 0.0))[:, 0]
        rows[:, 2 * D + 1] = wz.sum(1)
        rows[:, 2 * D + 3] = n - good.sum(1)
        rows[:, 2 * D + 4] = (wz > 0).sum(1)
    out = np.zeros((n_problems, 2 * D + 5))
    out[b0:b1] = to_numpy(rows)
    return out.reshape(1, 1, -1)


def _stats_block(x, w=None, *, params, problems, shift, covariance_type, block_info=None):
    """One (b, n, D) block's :class:`SufficientStats` of the starts in ``params`` (start s fits problem
    ``problems[s]``), packed in one (1, 1, width) float64 numpy row; zeros for the starts of other blocks."""
    xp = get_namespace(x)
    b0, b1 = block_info[0]["array-location"][0]
    weights, means, P = params
    S, K, D = means.shape
    shapes = _layout(S, K, D, covariance_type)
    out = [np.zeros(s) for s in shapes]
    mine = np.nonzero((problems >= b0) & (problems < b1))[0]
    if mine.size:
        b, n, _ = x.shape
        local = problems[mine] - b0
        w = None if w is None else w.reshape(b, n)
        if b == 1:  # every start reads the same rows (a view)
            X = xp.broadcast_to(x, (mine.size, n, D))
            sw = None if w is None else xp.broadcast_to(w, (mine.size, n))
        elif mine.size == b and bool((local == np.arange(b)).all()):
            X, sw = x, w
        else:
            idx = xp.asarray(local)
            X, sw = x[idx], None if w is None else w[idx]
        part = MixtureParams(*(None if a is None else xp.asarray(a[mine]) for a in (weights, means, None, P)))
        stats = sufficient_statistics(X, part, covariance_type, sw, xp.asarray(shift[problems[mine]]))
        for full, got in zip(out, (stats.nk, stats.sx, stats.sxx, stats.log_likelihood, stats.weight_sum)):
            full[mine] = to_numpy(got)
    return np.concatenate([a.reshape(-1) for a in out]).reshape(1, 1, -1)


def _map_blocks(func, X, sw, *, width, **kwargs):
    """``func(x_block[, w_block], **kwargs)`` over X's (b, n, D) blocks, each giving a (1, 1, width) row."""
    _, da = _dask()
    nb, nn = X.numblocks[:2]
    args = (X,) if sw is None else (X, sw[:, :, None])
    chunks = ((1,) * nb, (1,) * nn, (width,))
    return da.map_blocks(func, *args, chunks=chunks, dtype=np.float64, meta=np.empty((0, 0, 0)), **kwargs)


def _tree_sum(rows):
    """The blocks' rows added in a tree of fan-in :data:`SPLIT_EVERY`."""
    return rows.sum(axis=(0, 1), split_every=SPLIT_EVERY)


def _split_pass(X, sw, params, problems, shift, covariance_type):
    """One EM pass: the summed statistics of the starts in ``params`` (numpy, on the client)."""
    dask, _ = _dask()
    S, K, D = params.means.shape
    shapes = _layout(S, K, D, covariance_type)
    width = sum(int(np.prod(s)) for s in shapes)
    packed = dask.delayed((params.weights, params.means, params.precisions_cholesky), pure=True)  # one key
    rows = _map_blocks(
        _stats_block, X, sw, width=width, params=packed, problems=problems, shift=shift, covariance_type=covariance_type
    )
    (vec,) = _compute(_tree_sum(rows))
    nk, sx, sxx, ll, wsum = _unpack(vec, shapes)
    return SufficientStats(nk, sx, sxx, ll, wsum, shift[problems])


def _sample_starts(gm, settings, sample, sample_weight, rng, n_init, B, K, D):
    """The ``n_init`` starts of each of the B problems, each by an in-memory ``max_iter=0`` fit (random init,
    user parameters, the regularisation retry) of ``sample``, drawing in turn from one generator as the
    in-memory fit does.

    Returns (params with S = B * n_init starts, start i of problem b at b * n_init + i; reg_covar (S,); the
    ValueError of each failed start or None). A failed start of one problem (B = 1) loses to the others, as
    in memory; with B > 1 its error is raised.
    """
    init = type(gm)(
        **{**gm.get_params(), "max_iter": 0, "n_init": 1, "warm_start": False, "verbose": 0, "random_state": rng}
    )
    batched = sample.ndim == 3
    starts: list[MixtureParams] = []
    regs: list[Any] = []
    errors: list[ValueError | None] = []
    kept: list[str] = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(n_init):
            try:
                init.fit(sample, sample_weight=sample_weight)
            except ValueError as exc:
                if n_init == 1 or B > 1:
                    raise
                errors.append(exc)
                nan = np.full(1, np.nan)
                tail = COVARIANCE_TYPES[settings.covariance_type].precision_shape(K, D)
                shapes = [(1, K), (1, K, D)] + [(1,) + tail] * 2
                starts.append(MixtureParams(*(np.broadcast_to(nan, s).reshape(s) for s in shapes)))
                regs.append(np.full(1, float(settings.reg_covar)))
                continue
            errors.append(None)
            attrs = (init.weights_, init.means_, init.covariances_, init.precisions_cholesky_)
            starts.append(
                MixtureParams(
                    *(
                        np.asarray(a, dtype=np.float64) if batched else np.asarray(a, dtype=np.float64)[None]
                        for a in attrs
                    )
                )
            )
            regs.append(np.broadcast_to(np.asarray(init.reg_covar_, dtype=np.float64), (B,)))
    for w in caught:  # the start's reg_covar raise is reported with the fit's; the others once each
        text = str(w.message)
        if "reg_covar raised" not in text and text not in kept:
            kept.append(text)
            warn_at_caller(text, w.category)
    failures = [e for e in errors if e is not None]
    if len(failures) == len(errors):
        raise failures[0]
    params = MixtureParams(*(interleave_starts(np, parts) for parts in zip(*starts)))
    return params, interleave_starts(np, regs), errors


def _weights_of_problems(sample_weight, X3, batched):
    """sample_weight as a float64 dask array (B, N) chunked like X3's first two axes, or None."""
    _, da = _dask()
    if sample_weight is None:
        return None
    B, N, _ = X3.shape
    shape = tuple(sample_weight.shape) if hasattr(sample_weight, "shape") else np.shape(sample_weight)
    check_weight_shape(shape, B, N, batched)
    if shape == (B, N) and batched:
        return _weight_as_dask(sample_weight, X3, (B, N), X3.chunks[:2], scaled=True)
    sw = _weight_as_dask(sample_weight, X3, (N,), X3.chunks[1:2], scaled=True)
    return da.broadcast_to(sw[None], (B, N), chunks=X3.chunks[:2])


def _fit_split(gm, settings, X, sample_weight):
    """Fit the problems of X (N, D), or (B, N, D) with N split over chunks, by the client-driven EM loop;
    stores gm's attributes; returns gm."""
    K, ct = settings.n_components, settings.covariance_type
    batched = X.ndim == 3
    dtype = _result_dtype(X)
    X3 = (X if batched else X[None]).rechunk({2: -1})
    B, N, D = X3.shape
    sw = _weights_of_problems(sample_weight, X3, batched)
    rng = settings.rng(np)  # a bad random_state is refused up front
    warm = warm_state(gm, settings, np, B, D)
    n_init = 1 if warm is not None else settings.n_init
    explicit = settings.explicit_start

    # First pass: the shifts, the checks of X and sample_weight, and (for a random init) the sample.
    first = _tree_sum(_map_blocks(_first_pass_block, X3, sw, width=B * (2 * D + 5), n_problems=B))
    sample = sample_sw = None
    if warm is None and not explicit:
        if N > INIT_SAMPLE_ROWS:
            seed = int(to_numpy(rng.integers(0, 2**62)))
            rows = np.sort(np.random.default_rng(seed).choice(N, INIT_SAMPLE_ROWS, replace=False))
            sample = X3[:, rows]
            sample_sw = None if sw is None else sw[:, rows]
        else:
            sample, sample_sw = X3, sw
    sums, sample, sample_sw = _compute(first, sample, sample_sw)
    sums = sums.reshape(B, 2 * D + 5)
    if (sums[:, 2 * D + 2] > 0).any():
        raise ValueError("Input X contains NaN or infinity (or a value too large for dtype('float64')).")
    if sw is not None:
        check_weight_values(
            bad_values=bool((sums[:, 2 * D + 3] > 0).any()),
            empty_problem=bool((sums[:, 2 * D + 1] == 0).any()),
            too_few_positive=bool((sums[:, 2 * D + 4] < K).any()),
            n_components=K,
        )
    mean = sums[:, :D] / sums[:, D : D + 1]
    if sw is None:
        shift = mean
    else:
        total = sums[:, 2 * D + 1 : 2 * D + 2]
        shift = np.where(total > 0, sums[:, D + 1 : 2 * D + 1] / np.where(total > 0, total, 1.0), mean)
    shift = shift.reshape(B, 1, D)

    if warm is not None:
        params, reg, previous = (MixtureParams(*map(to_numpy, warm[0])), to_numpy(warm[1]), to_numpy(warm[2]))
        start_errors = [None]
        start_reg = reg.copy()
    else:
        if explicit:  # a complete explicit start needs no data: the in-memory start, from the same parameters
            sample, sample_sw = np.zeros((B, K, D)), None
        else:
            sample = to_numpy(sample).astype(np.float64)
            sample_sw = None if sample_sw is None else to_numpy(sample_sw)
        if not batched:
            sample, sample_sw = sample[0], None if sample_sw is None else sample_sw[0]
        params, reg, start_errors = _sample_starts(gm, settings, sample, sample_sw, rng, n_init, B, K, D)
        previous = None
        start_reg = np.full(B * n_init, float(settings.reg_covar))
    S = B * n_init
    start_failed = ~params_ok(params)
    start_overflow = ~np.isfinite(params.covariances.reshape(S, -1)).all(-1)

    def pass_fn(p, active):
        return _split_pass(X3, sw, p, active // n_init, shift, ct)

    result = em_loop(np, pass_fn, params, reg, ct, lower_bound=previous, **settings.em_options())
    finish(gm, settings, np, result, start_failed, start_overflow, start_reg, n_init, batched, dtype, start_errors)
    return gm


# --------------------------------------------------------------------------- (B, N, D): problems split over B


_LIST = re.compile(r"\[([^\[\]]*)\](\.\.\.)?")


def _split_message(text: str, offset: int):
    """(template, lists): every bracketed list of ``text`` cut out; lists after 'problems ' shifted by
    ``offset`` (block index -> global index). Each list: (items, truncated, is_problem_list)."""
    lists = []

    def cut(match):
        inner = [s for s in match.group(1).split(", ") if s]
        truncated = bool(match.group(2)) or "..." in inner
        inner = [s for s in inner if s != "..."]
        is_problems = text[: match.start()].endswith("problems ")
        if is_problems:
            inner = [str(int(s) + offset) for s in inner]
        lists.append((inner, truncated, is_problems))
        return "\x00"

    return _LIST.sub(cut, text), lists


def _merge_messages(messages):
    """[(template, lists)] of several blocks -> the distinct messages, lists of equal templates joined."""
    merged: dict[str, list] = {}
    for template, lists in messages:
        if template not in merged:
            merged[template] = [([], False, p) for _, _, p in lists]
        merged[template] = [(a + b, ta or tb, p) for (a, ta, p), (b, tb, _) in zip(merged[template], lists)]
    out = []
    for template, lists in merged.items():
        text = template
        for items, truncated, is_problems in lists:
            more = truncated or len(items) > 10
            shown = ", ".join(items[:10])
            if is_problems:
                rendered = f"[{shown}]{'...' if more else ''}"
            else:
                rendered = f"[{shown}{', ...' if more else ''}]"
            text = text.replace("\x00", rendered, 1)
        out.append(text)
    return out


def _fit_problems(estimator, x, w, params, inits, seed, offset):
    """A complete in-memory fit of one block of problems by ``estimator`` (the GaussianMixture class); its
    attributes as numpy, its warnings and its error."""
    import warnings as _warnings

    gm = estimator(**{**params, **inits, "random_state": seed, "warm_start": False})
    out = {"offset": offset, "error": None, "warnings": [], "attrs": None}
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        try:
            gm.fit(x, sample_weight=w)
        except ValueError as exc:
            out["error"] = str(exc)
    out["warnings"] = [(w.category.__name__, str(w.message)) for w in caught]
    if out["error"] is None:
        names = (
            "weights_",
            "means_",
            "covariances_",
            "precisions_",
            "precisions_cholesky_",
            "converged_",
            "n_iter_",
            "lower_bound_",
            "lower_bounds_",
            "reg_covar_",
        )
        out["attrs"] = {name: to_numpy(getattr(gm, name)) for name in names}
    return out


def _fit_batched(gm, settings, X, sample_weight):
    """Fit the B problems of X block by block where the blocks live; stores gm's attributes; returns gm."""
    dask, _ = _dask()
    B, N, D = X.shape
    K, ct = settings.n_components, settings.covariance_type
    X = X.rechunk({1: -1, 2: -1})
    sizes = X.chunks[0]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    sw = None
    if sample_weight is not None:
        shape = tuple(getattr(sample_weight, "shape", np.shape(sample_weight)))
        if shape == (N,):
            sw = _weight_as_dask(sample_weight, X, (N,), -1)
        else:
            sw = _weight_as_dask(sample_weight, X, (B, N), (X.chunks[0], -1))
    rng = settings.rng(np)
    seeds = [int(s) for s in to_numpy(rng.integers(0, 2**62, size=len(sizes)))]
    tails = {
        "weights_init": (K,),
        "means_init": (K, D),
        "precisions_init": COVARIANCE_TYPES[ct].precision_shape(K, D),
    }
    params = {k: v for k, v in gm.get_params().items() if k not in tails and k not in ("random_state", "warm_start")}
    x_blocks = X.to_delayed().ravel()
    if sw is None:
        w_blocks = [None] * len(sizes)
    elif sw.ndim == 1:
        w_blocks = [sw.to_delayed().ravel()[0]] * len(sizes)
    else:
        w_blocks = sw.to_delayed().ravel()
    tasks = []
    for i, (xb, wb, start, size) in enumerate(zip(x_blocks, w_blocks, offsets, sizes)):
        if size == 0:  # an empty block along B (boolean indexing, compute_chunk_sizes): no problem to fit
            continue
        inits = {}
        for name, tail in tails.items():
            value = getattr(settings, name)
            if value is not None:
                value = to_numpy(value) if not isinstance(value, (list, tuple)) else np.asarray(value)
                if value.ndim == len(tail) + 1 and value.shape[0] == B:
                    value = value[start : start + size]
            inits[name] = value
        tasks.append(dask.delayed(_fit_problems, pure=True)(type(gm), xb, wb, params, inits, seeds[i], int(start)))
    results = _compute(*tasks)

    errors = [_split_message(r["error"], r["offset"]) for r in results if r["error"] is not None]
    by_category: dict[str, list] = {}
    for r in results:
        for category, text in r["warnings"]:
            if errors and "identical components" not in text:
                continue  # as in memory: a failure raises before the fit's own warnings
            by_category.setdefault(category, []).append(_split_message(text, r["offset"]))
    for category, messages in by_category.items():
        cls = convergence_warning_class() if category == "ConvergenceWarning" else UserWarning
        for text in _merge_messages(messages):
            warn_at_caller(text, cls)
    if errors:
        raise ValueError("\n".join(_merge_messages(errors)))

    attrs = {name: [r["attrs"][name] for r in results] for name in results[0]["attrs"]}
    longest = max(h.shape[1] for h in attrs["lower_bounds_"])
    attrs["lower_bounds_"] = [
        np.pad(h, ((0, 0), (0, longest - h.shape[1])), constant_values=np.nan) for h in attrs["lower_bounds_"]
    ]
    store(gm, {name: np.concatenate(parts) for name, parts in attrs.items()})
    return gm


# --------------------------------------------------------------------------- public entry points


def fit(gm, X, y=None, sample_weight=None):
    """:meth:`GaussianMixture.fit` for a dask X (see the module docstring); returns gm."""
    settings = Settings.of(gm)
    _check_X(gm, X, fitting=True)
    B, D = X.shape[0] if X.ndim == 3 else 1, X.shape[-1]
    warm = warm_state(gm, settings, np, B, D) is not None
    if X.ndim == 3 and X.numblocks[1] == 1 and not warm:  # whole problems in each block: one fit per block
        return _fit_batched(gm, settings, X, sample_weight)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return _fit_split(gm, settings, X, sample_weight)


def partial_fit(gm, X, y=None, sample_weight=None):
    """:meth:`GaussianMixture.partial_fit` on a dask X: one step per chunk along the samples, in order, each
    chunk (and its weights) computed alone: equal to calling partial_fit on each chunk in turn."""
    check_X_metadata(tuple(X.shape), X.dtype)
    if any(np.isnan(c) for c in X.shape):
        raise ValueError(f"X has unknown chunk sizes (shape {X.shape}): call X.compute_chunk_sizes() first")
    axis = X.ndim - 2  # the samples' axis
    X = X.rechunk({a: -1 for a in range(X.ndim) if a != axis})
    sw, per_row = None, axis == 0
    if sample_weight is not None:
        given = tuple(getattr(sample_weight, "shape", np.shape(sample_weight)))
        per_row = per_row or given == (X.shape[axis],)  # one weight per row, shared by the B problems
        shape = (X.shape[axis],) if per_row else tuple(X.shape[: axis + 1])
        sw = _weight_as_dask(sample_weight, X, shape, X.chunks[axis : axis + 1] if per_row else X.chunks[: axis + 1])
    for i, n in enumerate(X.chunks[axis]):
        if n == 0:  # an empty chunk (compute_chunk_sizes after a mask): no step
            continue
        block = X.blocks[(i,) if axis == 0 else (0, i)]
        weights = None if sw is None else sw.blocks[(i,) if per_row else (0, i)]
        x, w = _compute(block, weights) if weights is not None else (*_compute(block), None)
        gm.partial_fit(x, sample_weight=w)
    return gm


def fit_predict(gm, X, y=None, sample_weight=None):
    """Fit, then the labels of X as a lazy dask array (of the fitted parameters, as :meth:`predict`)."""
    fit(gm, X, sample_weight=sample_weight)
    return predict(gm, X)


def _predict_block(x, params=None, covariance_type="full", what="labels", out_dtype=np.float64, block_info=None):
    """Labels, responsibilities or log-likelihoods of one block, in cache-sized row chunks."""
    xp = get_namespace(x)
    weights, means, P = (xp.asarray(a) for a in params)
    batched = x.ndim == 3
    if batched:  # this block's problems
        b0, b1 = block_info[0]["array-location"][0]
        weights, means, P = weights[b0:b1], means[b0:b1], P[b0:b1]
    else:
        x, weights, means, P = x[None], weights[None], means[None], P[None]
    X = x.astype(xp.float64, copy=False)
    if not bool(xp.isfinite(X).all()):
        kind = "NaN" if bool(xp.isnan(X).any()) else "infinity or a value too large for dtype('float64')"
        raise ValueError(f"Input X contains {kind}.")
    B, N, D = X.shape
    K = means.shape[1]
    if what == "labels":
        out = xp.empty((B, N), dtype=xp.int64)
    else:
        out = xp.empty((B, N, K) if what == "proba" else (B, N), dtype=out_dtype)
    step = max(1, chunk_elements(xp, "mixture") // max(1, B * max(K, D) * D))
    with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
        for s in range(0, N, step):
            sl = slice(s, min(N, s + step))
            log_resp, log_norm = e_step(X[:, sl], weights, means, P, covariance_type)
            if what == "labels":
                out[:, sl] = log_resp.argmax(-1)
            elif what == "proba":
                out[:, sl] = xp.exp(log_resp)
            else:
                out[:, sl] = log_norm
    return out if batched else out[0]


def _estimate(gm, X, what):
    dask, _ = _dask()
    _check_X(gm, X, fitting=False)
    xp = _chunk_xp(X)
    dtype = _result_dtype(X)
    X = X.rechunk({-1: -1})
    # numpy on the client (also after an in-memory cupy fit); each block moves them to its chunk type
    params = dask.delayed(tuple(to_numpy(a) for a in (gm.weights_, gm.means_, gm.precisions_cholesky_)), pure=True)
    out_dtype = np.int64 if what == "labels" else dtype
    kwargs = {"params": params, "covariance_type": gm.covariance_type, "what": what, "out_dtype": out_dtype}
    meta = xp.empty((0,) * (X.ndim - (0 if what == "proba" else 1)), dtype=out_dtype)
    if what == "proba":
        chunks = X.chunks[:-1] + ((gm.n_components,),)
        return X.map_blocks(_predict_block, chunks=chunks, dtype=out_dtype, meta=meta, **kwargs)
    return X.map_blocks(_predict_block, drop_axis=X.ndim - 1, dtype=out_dtype, meta=meta, **kwargs)


def predict(gm, X):
    """Component labels of a dask X: a lazy int64 dask array, shape (N,) or (B, N)."""
    return _estimate(gm, X, "labels")


def predict_proba(gm, X):
    """Responsibilities of a dask X: a lazy dask array, shape (N, K) or (B, N, K)."""
    return _estimate(gm, X, "proba")


def score_samples(gm, X):
    """Log-likelihood of each sample of a dask X: a lazy dask array, shape (N,) or (B, N)."""
    return _estimate(gm, X, "log_norm")


def _score(gm, X):
    (s,) = _compute(score_samples(gm, X).mean(-1))
    return (float(s) if X.ndim == 2 else to_numpy(s)), X.shape[-2]


def score(gm, X, y=None):
    """Mean log-likelihood of a dask X, computed: a float, or a numpy array of shape (B,)."""
    return _score(gm, X)[0]


def bic(gm, X):
    """Bayesian information criterion of a dask X, computed: a float, or a numpy array of shape (B,)."""
    import math

    s, n = _score(gm, X)
    return -2 * s * n + n_parameters(gm) * math.log(n)


def aic(gm, X):
    """Akaike information criterion of a dask X, computed: a float, or a numpy array of shape (B,)."""
    s, n = _score(gm, X)
    return -2 * s * n + 2 * n_parameters(gm)
