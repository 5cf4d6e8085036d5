"""GaussianMixture and BayesianGaussianMixture on dask arrays: imported only for dask inputs.

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
  BayesianGaussianMixture runs its variational loop
  (:func:`~gpuvec.mixture._variational.run`) the same way, one pass per
  iteration, its starts one after another as in memory; its default priors
  take the data's mean from the first pass and its covariance from one more.

Initialisation in the second pattern reads the data in the first pass only:
the random inits (k-means++, kmeans, random, random_from_data) run in memory
on a uniform sample of at most :data:`INIT_SAMPLE_ROWS` rows per problem
gathered to the client (all rows when N is no larger: then the start is the
in-memory fit's with the same ``random_state``; BayesianGaussianMixture's
start statistics from a sample are scaled to all rows). A complete explicit
start reads nothing.

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

import dataclasses
import re
import types
import warnings
from typing import Any

import numpy as np

import gpuvec.mixture._bayesian_fit as _bf
import gpuvec.mixture._fit as _fit
import gpuvec.mixture._variational as _vi
from gpuvec._core.checks import check_choice, warn_at_caller
from gpuvec._core.namespace import get_namespace, is_dask_array, to_numpy
from gpuvec.mixture._covariance import COVARIANCE_TYPES
from gpuvec.mixture._dask_blocks import (
    compute,
    dask_modules,
    first_pass,
    predict_block,
    result_dtype,
    split_pass,
    weight_as_dask,
)
from gpuvec.mixture._em import em_loop, interleave_starts, params_ok
from gpuvec.mixture._validation import (
    Settings,
    check_matches_fit,
    check_n_samples,
    check_weight_shape,
    check_X_metadata,
    user_init,
)
from gpuvec.mixture._xp import MixtureParams, SufficientStats

__all__ = ["INIT_SAMPLE_ROWS", "aic", "bic", "fit", "fit_predict", "predict", "predict_proba", "score", "score_samples"]

INIT_SAMPLE_ROWS = 100_000
"""Rows of the uniform sample that an (N, D) dask fit's random initialisation runs on."""

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


# --------------------------------------------------------------------------- N split: the EM loop on the client


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
    _, da = dask_modules()
    if sample_weight is None:
        return None
    B, N, _ = X3.shape
    shape = tuple(sample_weight.shape) if hasattr(sample_weight, "shape") else np.shape(sample_weight)
    check_weight_shape(shape, B, N, batched)
    if shape == (B, N) and batched:
        return weight_as_dask(sample_weight, X3, (B, N), X3.chunks[:2], scaled=True)
    sw = weight_as_dask(sample_weight, X3, (N,), X3.chunks[1:2], scaled=True)
    return da.broadcast_to(sw[None], (B, N), chunks=X3.chunks[:2])


def _init_sample(X3, sw, rng):
    """The rows (and weights) of X3 that a random initialisation runs on: all, or a uniform sample of
    :data:`INIT_SAMPLE_ROWS` per problem (lazy)."""
    N = X3.shape[1]
    if N <= INIT_SAMPLE_ROWS:
        return X3, sw
    seed = int(to_numpy(rng.integers(0, 2**62)))
    rows = np.sort(np.random.default_rng(seed).choice(N, INIT_SAMPLE_ROWS, replace=False))
    return X3[:, rows], None if sw is None else sw[:, rows]


def _split_inputs(settings, X, sample_weight):
    """What both client-driven fits start from: batched?, the result dtype, X as (B, N, D) with D in one
    chunk, the weights as a (B, N) dask array or None, the generator (a bad random_state refused up front)."""
    batched = X.ndim == 3
    X3 = (X if batched else X[None]).rechunk({2: -1})
    return batched, result_dtype(X), X3, _weights_of_problems(sample_weight, X3, batched), settings.rng(np)


def _fit_split(gm, settings, X, sample_weight):
    """Fit the problems of X (N, D), or (B, N, D) with N split over chunks, by the client-driven EM loop;
    stores gm's attributes; returns gm."""
    K, ct = settings.n_components, settings.covariance_type
    batched, dtype, X3, sw, rng = _split_inputs(settings, X, sample_weight)
    B, N, D = X3.shape
    warm = _fit.warm_state(gm, settings, np, B, D)
    n_init = 1 if warm is not None else settings.n_init
    explicit = settings.explicit_start

    # First pass: the shifts, the checks of X and sample_weight, and (for a random init) the sample.
    sample = sample_sw = None
    if warm is None and not explicit:
        sample, sample_sw = _init_sample(X3, sw, rng)
    data, (sample, sample_sw) = first_pass(X3, sw, K, sample, sample_sw)
    shift = data.shift

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
        return split_pass(X3, sw, p, active // n_init, shift, ct)

    result = em_loop(np, pass_fn, params, reg, ct, lower_bound=previous, **settings.em_options())
    _fit.finish(gm, settings, np, result, start_failed, start_overflow, start_reg, n_init, batched, dtype, start_errors)
    return gm


def _fit_variational_split(est, settings, X, sample_weight):
    """BayesianGaussianMixture's fit of X (N, D), or (B, N, D) with N split, by the client-driven loop of
    :func:`~gpuvec.mixture._variational.run`: the in-memory fit's steps with each statistics pass over the
    blocks. The default priors take the data's mean from the first pass and its covariance from one more
    (the statistics of one component about the mean); stores est's attributes; returns est."""
    ct, pt = settings.covariance_type, est.weight_concentration_prior_type
    batched, dtype, X3, sw, rng = _split_inputs(settings, X, sample_weight)
    B, N, D = X3.shape
    resume = _bf.resumes(est, settings, B, D)
    sample, sample_sw = (None, None) if resume else _init_sample(X3, sw, rng)
    data, (sample, sample_sw) = first_pass(X3, sw, settings.n_components, sample, sample_sw)
    if sw is not None and bool((data.positive < 2).any()):
        raise ValueError(_bf.TOO_FEW_POSITIVE)

    def data_covariance():  # sum w (x - mean)(x - mean)^T / (sum w - 1): one component's statistics
        one = "full" if ct in ("full", "tied") else "diag"
        P = np.broadcast_to(np.eye(D) if one == "full" else np.ones(D), (B, 1, *(D,) * (2 if one == "full" else 1)))
        gauss = MixtureParams(np.ones((B, 1)), data.mean[:, None, :], None, P)
        sxx = split_pass(X3, sw, gauss, np.arange(B), data.shift, one).sxx[:, 0]
        return sxx / (data.total - 1.0).reshape((B,) + (1,) * (sxx.ndim - 1))

    priors = _bf.priors(est, np, data.mean, data_covariance, batched)

    def start_statistics(n_init):  # the in-memory start on the sample, its sums scaled to all rows
        x = to_numpy(sample).astype(np.float64)
        w = None if sample_sw is None else to_numpy(sample_sw)
        stats = _fit.start_statistics(settings, np, x, w, n_init)
        if x.shape[1] == N or settings.init_params == "random_from_data":  # K rows, one each, whatever N
            return stats
        scale = np.repeat(data.total / (x.shape[1] if w is None else w.sum(1)), n_init)
        nk, sx, sxx, ll, ws = (a * scale.reshape((-1,) + (1,) * (a.ndim - 1)) for a in stats[:5])
        return SufficientStats(nk, sx, sxx, ll, ws, stats.shift)

    starts, previous = _bf.first_params(est, settings, np, priors, pt, B, D, start_statistics)

    def pass_fn(gauss, active):
        return split_pass(X3, sw, gauss, active, data.shift, ct)

    _bf.fit_starts(est, settings, np, pass_fn, starts, previous, priors, pt, batched, dtype)
    return est


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


GMM_ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_", "converged_",
                  "n_iter_", "lower_bound_", "lower_bounds_", "reg_covar_")  # fmt: skip
BGMM_ATTRIBUTES = ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_",
                   "weight_concentration_", "mean_precision_", "degrees_of_freedom_", *(f"{p}_" for p in _bf.PRIORS),
                   "covariance_prior_", "converged_", "n_iter_", "lower_bound_", "lower_bounds_")  # fmt: skip


def _fit_problems(estimator, x, w, params, per_problem, seed, offset, names):
    """A complete in-memory fit of one block of problems by ``estimator`` (the class); its attributes
    ``names`` as numpy (a tuple attribute as a tuple), its warnings and its error."""
    import warnings as _warnings

    est = estimator(**{**params, **per_problem, "random_state": seed, "warm_start": False})
    out = {"offset": offset, "error": None, "warnings": [], "attrs": None}
    with _warnings.catch_warnings(record=True) as caught:
        _warnings.simplefilter("always")
        try:
            est.fit(x, sample_weight=w)
        except ValueError as exc:
            out["error"] = str(exc)
    out["warnings"] = [(w.category.__name__, str(w.message)) for w in caught]
    if out["error"] is None:
        values = {name: getattr(est, name) for name in names}
        out["attrs"] = {k: tuple(map(to_numpy, v)) if isinstance(v, tuple) else to_numpy(v) for k, v in values.items()}
    return out


def _host(value):
    """A parameter as the client checks it: arrays as numpy, anything else as given."""
    return to_numpy(value) if hasattr(value, "shape") else value


def _per_problem_parameters(est, settings, B, D):
    """The parameters an estimator takes once or per problem, checked on the client against the B problems
    as the in-memory fit checks them (its errors, not a block's), each as (value, per problem?): a value
    given per problem is (B,) + the shape of one problem's value."""
    K, ct = settings.n_components, settings.covariance_type
    if _is_variational(est):
        tails = {"weight_concentration_prior": (), "mean_precision_prior": (), "mean_prior": (D,),
                 "degrees_of_freedom_prior": (), "covariance_prior": {"full": (D, D), "tied": (D, D),
                                                                       "diag": (D,), "spherical": ()}[ct]}  # fmt: skip
        values = {name: _host(getattr(est, name)) for name in tails}
        proxy = types.SimpleNamespace(**values, n_components=K, covariance_type=ct)
        _bf.priors(proxy, np, np.zeros((B, D)), lambda: np.broadcast_to(np.eye(D), (B, D, D)), batched=True)
    else:
        precision = COVARIANCE_TYPES[ct].precision_shape(K, D)
        tails = {"weights_init": (K,), "means_init": (K, D), "precisions_init": precision}
        values = {name: _host(getattr(settings, name)) for name in tails}
        user_init(np, dataclasses.replace(settings, **values), B, D, batched=True)
    return {name: (values[name], np.shape(values[name]) == (B, *tail)) for name, tail in tails.items()}


def _concatenate(parts):
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate(p) for p in zip(*parts))
    return np.concatenate(parts)


def _fit_batched(est, settings, X, sample_weight):
    """Fit the B problems of X block by block where the blocks live; stores est's attributes; returns est."""
    dask, _ = dask_modules()
    B, N, D = X.shape
    X = X.rechunk({1: -1, 2: -1})
    sizes = X.chunks[0]
    offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int)
    sw = None
    if sample_weight is not None:
        shape = tuple(getattr(sample_weight, "shape", np.shape(sample_weight)))
        if shape == (N,):
            sw = weight_as_dask(sample_weight, X, (N,), -1)
        else:
            sw = weight_as_dask(sample_weight, X, (B, N), (X.chunks[0], -1))
    rng = settings.rng(np)
    seeds = [int(s) for s in to_numpy(rng.integers(0, 2**62, size=len(sizes)))]
    per_problem = _per_problem_parameters(est, settings, B, D)
    params = {
        k: v for k, v in est.get_params().items() if k not in per_problem and k not in ("random_state", "warm_start")
    }
    names = BGMM_ATTRIBUTES if _is_variational(est) else GMM_ATTRIBUTES
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
        mine = {}
        for name, (value, given_per_problem) in per_problem.items():
            mine[name] = value[start : start + size] if given_per_problem else value  # once: as given
        fit_block = dask.delayed(_fit_problems, pure=True)
        tasks.append(fit_block(type(est), xb, wb, params, mine, seeds[i], int(start), names))
    results = compute(*tasks)

    errors = [_split_message(r["error"], r["offset"]) for r in results if r["error"] is not None]
    by_category: dict[str, list] = {}
    for r in results:
        for category, text in r["warnings"]:
            if errors and "identical components" not in text:
                continue  # as in memory: a failure raises before the fit's own warnings
            by_category.setdefault(category, []).append(_split_message(text, r["offset"]))
    for category, messages in by_category.items():
        cls = _fit.issued_convergence_warning() if category == "ConvergenceWarning" else UserWarning
        for text in _merge_messages(messages):
            warn_at_caller(text, cls)
    if errors:
        raise ValueError("\n".join(_merge_messages(errors)))

    attrs = {name: [r["attrs"][name] for r in results] for name in names}
    longest = max(h.shape[1] for h in attrs["lower_bounds_"])
    attrs["lower_bounds_"] = [
        np.pad(h, ((0, 0), (0, longest - h.shape[1])), constant_values=np.nan) for h in attrs["lower_bounds_"]
    ]
    _fit.store(est, {name: _concatenate(parts) for name, parts in attrs.items()})
    return est


# --------------------------------------------------------------------------- public entry points


def _is_variational(est):
    return hasattr(est, "weight_concentration_prior_type")  # BayesianGaussianMixture (not imported here)


def fit(gm, X, y=None, sample_weight=None):
    """:meth:`GaussianMixture.fit` or :meth:`BayesianGaussianMixture.fit` for a dask X (see the module
    docstring); returns the estimator."""
    variational = _is_variational(gm)
    settings = _bf.settings_of(gm) if variational else Settings.of(gm)
    _check_X(gm, X, fitting=True)
    B, D = X.shape[0] if X.ndim == 3 else 1, X.shape[-1]
    if variational:
        check_choice("weight_concentration_prior_type", gm.weight_concentration_prior_type, _vi.PRIOR_TYPES)
        _bf.check_n_samples(X.shape[-2], tuple(X.shape))
        warm = _bf.resumes(gm, settings, B, D)
    else:
        warm = _fit.warm_state(gm, settings, np, B, D) is not None
    if X.ndim == 3 and X.numblocks[1] == 1 and not warm:  # whole problems in each block: one fit per block
        return _fit_batched(gm, settings, X, sample_weight)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        return (_fit_variational_split if variational else _fit_split)(gm, settings, X, sample_weight)


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
        sw = weight_as_dask(sample_weight, X, shape, X.chunks[axis : axis + 1] if per_row else X.chunks[: axis + 1])
    for i, n in enumerate(X.chunks[axis]):
        if n == 0:  # an empty chunk (compute_chunk_sizes after a mask): no step
            continue
        block = X.blocks[(i,) if axis == 0 else (0, i)]
        weights = None if sw is None else sw.blocks[(i,) if per_row else (0, i)]
        x, w = compute(block, weights) if weights is not None else (*compute(block), None)
        gm.partial_fit(x, sample_weight=w)
    return gm


def fit_predict(gm, X, y=None, sample_weight=None):
    """Fit, then the labels of X as a lazy dask array (of the fitted parameters, as :meth:`predict`)."""
    fit(gm, X, sample_weight=sample_weight)
    return predict(gm, X)


def _estimate(gm, X, what):
    dask, _ = dask_modules()
    _check_X(gm, X, fitting=False)
    xp = _chunk_xp(X)
    dtype = result_dtype(X)
    X = X.rechunk({-1: -1})
    # numpy on the client (also after an in-memory cupy fit); each block moves them to its chunk type
    if _is_variational(gm):  # the variational E-step: GaussianMixture's with other weights, log-norms shifted
        fitted = _bf.fitted(gm, get_namespace(gm.means_))
        gauss, top = _vi.e_step_params(get_namespace(gm.means_), fitted, gm.weight_concentration_prior_type)
        arrays = [to_numpy(a) for a in (gauss.weights, gauss.means, gauss.precisions_cholesky, top)]
        if gm.means_.ndim == 2:
            arrays = [a[0] for a in arrays]
    else:
        arrays = [to_numpy(a) for a in (gm.weights_, gm.means_, gm.precisions_cholesky_)] + [None]
    params = dask.delayed(tuple(arrays), pure=True)
    out_dtype = np.int64 if what == "labels" else dtype
    kwargs = {"params": params, "covariance_type": gm.covariance_type, "what": what, "out_dtype": out_dtype}
    meta = xp.empty((0,) * (X.ndim - (0 if what == "proba" else 1)), dtype=out_dtype)
    if what == "proba":
        chunks = X.chunks[:-1] + ((gm.n_components,),)
        return X.map_blocks(predict_block, chunks=chunks, dtype=out_dtype, meta=meta, **kwargs)
    return X.map_blocks(predict_block, drop_axis=X.ndim - 1, dtype=out_dtype, meta=meta, **kwargs)


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
    (s,) = compute(score_samples(gm, X).mean(-1))
    return (float(s) if X.ndim == 2 else to_numpy(s)), X.shape[-2]


def score(gm, X, y=None):
    """Mean log-likelihood of a dask X, computed: a float, or a numpy array of shape (B,)."""
    return _score(gm, X)[0]


def bic(gm, X):
    """Bayesian information criterion of a dask X, computed: a float, or a numpy array of shape (B,)."""
    import math

    s, n = _score(gm, X)
    return -2 * s * n + _fit.n_parameters(gm) * math.log(n)


def aic(gm, X):
    """Akaike information criterion of a dask X, computed: a float, or a numpy array of shape (B,)."""
    s, n = _score(gm, X)
    return -2 * s * n + 2 * _fit.n_parameters(gm)
