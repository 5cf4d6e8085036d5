"""Seeded random generators on numpy or cupy, with batched normal and multivariate-normal samplers.

Same seed, same backend, same shapes: the same numbers. Across backends the
streams differ (numpy's PCG64 and cupy's generator are different algorithms);
what is the same is the distribution.

Every sampler checks its arguments before it draws (so a bad call leaves the
generator's state as it was), never changes its inputs, and returns arrays of
the generator's namespace in the requested dtype.
"""

from __future__ import annotations

import math
import operator
import types
from typing import Any, Literal

import numpy as np

from gpuvec._core.backend import default_name, use_backend
from gpuvec._core.checks import check_choice, check_mvn_shapes, check_normal_shapes, check_real
from gpuvec._core.dlpack import dlpack_io
from gpuvec._core.namespace import is_cupy_array, is_cupy_namespace, is_dask_array, is_numpy_array
from gpuvec.random import _xp

__all__ = ["Generator", "default_rng"]

MvnMethod = Literal["cholesky", "eigh", "svd"]
CheckValid = Literal["warn", "raise", "ignore"]

_FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
_MVN_METHODS = ("cholesky", "eigh", "svd")
_CHECK_VALID = ("warn", "raise", "ignore")
_SEEDS = (
    "None, a non-negative int, a sequence of non-negative ints, a numpy.random.SeedSequence, "
    "a numpy Generator, BitGenerator or RandomState, or a gpuvec Generator"
)


def default_rng(seed: Any = None, *, backend: Literal["numpy", "cupy"] | None = None) -> Generator:
    """A seeded generator on the default backend, or on ``backend``.

    Parameters
    ----------
    seed : None, int, array_like of int, numpy.random.SeedSequence or Generator
        As numpy's ``default_rng`` takes it (ints must be non-negative). A
        gpuvec :class:`Generator` is returned as it is (its backend must match
        ``backend`` if given). A numpy Generator, BitGenerator or RandomState
        is used as numpy uses it on the numpy backend; on cupy, a 63-bit seed
        is drawn from it.
    backend : {'numpy', 'cupy'}, optional
        Default: the default backend (see :func:`gpuvec.backend_info`).

    Returns
    -------
    rng : Generator
        A generator whose draws are arrays of ``backend``.

    Raises
    ------
    TypeError
        For a seed of a kind not listed above (a float, a string, ...).
    ValueError
        For a negative seed, or a backend other than 'numpy' and 'cupy'.

    Examples
    --------
    >>> import gpuvec
    >>> rng = gpuvec.random.default_rng(0, backend="numpy")
    >>> rng.normal([[0, 0, 0], [1, 1, 1]], [[1, 1, 1], [2, 2, 2]], size=(1000, 2, 3)).shape
    (1000, 2, 3)
    """
    if isinstance(seed, Generator):
        if backend is not None and backend != seed.backend:
            msg = f"seed is a gpuvec Generator on {seed.backend!r}, but backend={backend!r} was asked for"
            raise ValueError(msg)
        return seed
    return Generator(seed, backend)


class Generator:
    """A random generator on numpy (PCG64) or cupy, made by :func:`default_rng`.

    Parameters
    ----------
    seed : None, int, array_like of int, numpy.random.SeedSequence or Generator
        See :func:`default_rng`, which also accepts a gpuvec Generator.
    backend : {'numpy', 'cupy'}, optional
        Default: the default backend.

    Attributes
    ----------
    backend : {'numpy', 'cupy'}
    xp : module
        numpy or cupy: the namespace of the arrays this generator returns.
    """

    def __init__(self, seed: Any = None, backend: Literal["numpy", "cupy"] | None = None) -> None:
        if backend is None:
            backend = default_name()
        if backend not in ("numpy", "cupy"):
            msg = f"backend must be 'numpy' or 'cupy'; got {backend!r}"
            raise ValueError(msg)
        seed = _checked_seed(seed, backend)
        with use_backend(backend) as xp:
            self.xp: types.ModuleType = xp
        self.backend = backend
        self._rng = xp.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"gpuvec.random.Generator(backend={self.backend!r})"

    def __getstate__(self) -> dict[str, Any]:
        """Pickle and deepcopy the state without the namespace module (numpy's Generator pickles its stream)."""
        return {"backend": self.backend, "_rng": self._rng}

    def __setstate__(self, state: dict[str, Any]) -> None:
        with use_backend(state["backend"]) as xp:
            self.xp = xp
        self.backend, self._rng = state["backend"], state["_rng"]

    # ------------------------------------------------------------------ basic draws

    @dlpack_io
    def standard_normal(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        """Standard normal samples, as numpy's ``Generator.standard_normal``.

        Parameters
        ----------
        size : int or tuple of int, optional
            Output shape; must equal ``out.shape`` when both are given.
        dtype : {float64, float32}
        out : array, optional
            Filled in place: the generator's namespace, dtype ``dtype``. A
            non-contiguous ``out`` gets the numbers a fresh array would.

        Returns
        -------
        samples : array, shape size (or out.shape)
            Draws from N(0, 1) in ``dtype`` (``out`` itself when given).

        Raises
        ------
        TypeError
            For a dtype other than float32/float64, or an ``out`` of another
            dtype or namespace.
        ValueError
            When ``size`` and ``out.shape`` differ.

        Examples
        --------
        >>> import gpuvec
        >>> gpuvec.random.default_rng(1, backend="numpy").standard_normal(3).shape
        (3,)
        """
        dtype = _float_dtype(dtype, "standard_normal")
        size = self._check_out(out, dtype, _shape(size))
        return self._draw(self._rng.standard_normal, size, dtype, out)

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        """Uniform samples in [0, 1), as numpy's ``Generator.random``.

        Parameters
        ----------
        size : int or tuple of int, optional
            Output shape; must equal ``out.shape`` when both are given.
        dtype : {float64, float32}
        out : array, optional
            Filled in place: the generator's namespace, dtype ``dtype``.

        Returns
        -------
        samples : array, shape size (or out.shape)
            Draws from U[0, 1) in ``dtype`` (``out`` itself when given).

        Examples
        --------
        >>> import gpuvec
        >>> x = gpuvec.random.default_rng(1, backend="numpy").random((2, 2))
        >>> bool(((0 <= x) & (x < 1)).all())
        True
        """
        dtype = _float_dtype(dtype, "random")
        size = self._check_out(out, dtype, _shape(size))
        return self._draw(self._rng.random, size, dtype, out)

    def integers(
        self, low: int, high: int | None = None, size: Any = None, dtype: Any = np.int64, endpoint: bool = False
    ) -> Any:
        """Random integers in [low, high), as numpy's ``Generator.integers``.

        Parameters
        ----------
        low, high : int
            ``integers(high)`` draws from [0, high).
        size : int or tuple of int, optional
            Output shape; default: one number.
        dtype : int dtype
            Default int64.
        endpoint : bool
            Draw from [low, high] instead.

        Returns
        -------
        samples : array of dtype, shape size
            The drawn integers.

        Examples
        --------
        >>> import gpuvec
        >>> int(gpuvec.random.default_rng(1, backend="numpy").integers(5, 6))
        5
        """
        try:
            kind = np.dtype(dtype).kind
        except TypeError:
            kind = None
        if kind not in ("i", "u", "b"):
            msg = f"dtype must be an integer dtype for integers (int8 ... uint64, bool); got {_dtype_name(dtype)}"
            raise TypeError(msg)
        return self._rng.integers(low, high, size=_shape(size), dtype=dtype, endpoint=endpoint)

    # ------------------------------------------------------------------ batched samplers

    @dlpack_io
    def normal(
        self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None, *, dtype: Any = np.float64, out: Any = None
    ) -> Any:
        """Normal samples with numpy's broadcasting rules, without a Python loop.

        On numpy this gives bit for bit the numbers of
        ``numpy.random.Generator.normal`` with the same seed. Python-number
        ``loc`` and ``scale`` in float64 on numpy go to numpy's own sampler (the same speed for large
        sizes; about 2.4 us a call against numpy's 0.8 us at size 10, measured on
        the 2-core machine of benchmarks/RESULTS.md); array ``loc``/``scale``
        fill with ``standard_normal`` then scale and shift in place (1.4 times as
        fast as numpy at 1e6 samples there, half as fast at size 10).

        Parameters
        ----------
        loc, scale : float or array_like of float
            Means and standard deviations; they broadcast with each other and
            with ``size``. Real only (complex is a TypeError, as in numpy). As in
            numpy, a scale with its sign bit set is a ValueError (-0.0 included)
            and NaN passes through to the samples.
        size : int or tuple of int, optional
            Output shape; default: the broadcast shape of loc and scale (or
            ``out.shape``). Must equal ``out.shape`` when both are given.
        dtype : {float64, float32}
        out : array, optional
            Filled in place; the generator's namespace, dtype ``dtype``. It may
            share memory with loc or scale (``rng.normal(x, 1.0, out=x)``): they
            are read before out is written, so the numbers are those of a call
            without aliasing.

        Returns
        -------
        samples : array, shape size (or broadcast(loc, scale))
            Draws from N(loc, scale**2) in ``dtype`` (``out`` itself when given).

        Raises
        ------
        TypeError
            For complex loc/scale, a dtype other than float32/float64, or an
            ``out`` of another dtype or namespace.
        ValueError
            For a negative scale, loc and scale that do not broadcast (to
            ``size``), or ``size`` and ``out.shape`` that differ.

        Notes
        -----
        With a dask ``loc`` or ``scale`` (``pip install 'gpuvec[dask]'``) the
        result is a lazy dask array of the generator's chunk type (the dask
        arrays' chunks must be of that backend), chunked like loc/scale along
        their axes and with dask's "auto" chunks along the axes only ``size``
        has; ``out`` is refused. Block ``i`` draws from a generator seeded with
        child ``i`` of a ``SeedSequence`` drawn from this generator (as
        ``dask.array.random`` spawns them), so the numbers are reproducible for
        the same seed *and the same chunks*, but depend on the chunking and
        differ from the in-memory call's. A negative scale raises its ValueError
        when the block holding it is computed.

        Examples
        --------
        1000 sample sets of 2 x 3 coordinates, each with its own means and standard deviations, in one call:

        >>> import numpy as np, gpuvec
        >>> means = np.array([[0.0, 0, 0], [1, 1, 1]])
        >>> stds = np.array([[1.0, 1, 1], [2, 2, 2]])
        >>> rng = gpuvec.random.default_rng(0, backend="numpy")
        >>> rng.normal(means, stds, size=(1000, *means.shape)).shape
        (1000, 2, 3)
        """
        if out is None and _plain_number(loc) and _plain_number(scale):  # the common call: no arrays to make
            dtype = _float_dtype(dtype, "normal")
            _check_scale(float(scale))
            if dtype == np.float64 and self.backend == "numpy":  # numpy's own normal: the same numbers, in C
                return self._rng.normal(loc, scale, size=_shape(size) or ())
            samples = self._rng.standard_normal(size=_shape(size) or (), dtype=dtype)
            with np.errstate(over="ignore"):  # a loc or scale beyond float32's range is inf, as the cast says
                samples *= dtype.type(scale)
                samples += dtype.type(loc)
            return samples
        xp = self.xp
        self._check_arrays(loc=loc, scale=scale)
        dtype = _float_dtype(dtype, "normal")
        size = self._check_out(out, dtype, _shape(size))
        if is_dask_array(loc) or is_dask_array(scale):  # lazy: dask is imported only for dask inputs
            from gpuvec.random import _dask

            return _dask.normal(self, loc, scale, size, dtype=dtype, out=out)
        loc = _real_array(xp, "loc", loc, dtype, out)
        scale = _real_array(xp, "scale", scale, dtype, out)
        negative = xp.signbit(scale) & ~xp.isnan(scale)  # numpy's rule: -0.0 is negative, NaN is not
        if bool(negative.any()):
            where = _xp.first_index(xp, negative)
            _check_scale(float(scale[where]), where)
        shape = check_normal_shapes(loc.shape, scale.shape, size, "size" if out is None else "out.shape")
        samples = self._draw(
            self._rng.standard_normal, shape, dtype, None if out is None or not out.flags.c_contiguous else out
        )
        samples *= scale
        samples += loc
        if out is not None and samples is not out:
            out[...] = samples
            return out
        return samples

    @dlpack_io
    def multivariate_normal(
        self,
        mean: Any,
        cov: Any,
        size: Any = None,
        check_valid: CheckValid = "warn",
        tol: float = 1e-8,
        *,
        method: MvnMethod | None = None,
        dtype: Any = np.float64,
    ) -> Any:
        """Multivariate normal samples for a batch of distributions.

        numpy's ``Generator.multivariate_normal`` arguments, with a batch:
        the leading axes of mean and cov broadcast into one batch shape.

        Parameters
        ----------
        mean : array_like, shape (..., d)
            The distributions' means; the leading axes are batch axes.
        cov : array_like, shape (..., d, d)
            Symmetric positive (semi-)definite, finite; the leading axes
            broadcast with mean's into the batch shape. Real only.
        size : int or tuple of int, optional
            Number of draws per distribution.
        check_valid : {'warn', 'raise', 'ignore'}
            What a covariance that fails the check (see ``tol``) does: numpy's
            default 'warn' warns RuntimeWarning "covariance is not symmetric
            positive-semidefinite." (and names the batch index) and still
            samples; 'raise' makes it a ValueError; 'ignore' skips the check.
            The default is numpy's, so that gpuvec's defaults do what numpy's
            do; pass 'raise' to make a bad covariance an error. Non-finite
            mean or cov is a ValueError whatever this says.
        tol : float
            numpy's tolerance, 1e-8, applied as numpy applies it: 'svd' checks
            that ``vh.T * s @ vh`` reproduces cov within ``rtol=atol=tol``
            (``np.allclose``); 'eigh' that no eigenvalue is below ``-tol``,
            and also symmetry, ``allclose(cov, cov.T, rtol=tol, atol=tol)``.
            The default method judges a covariance that is asymmetric by that
            test, or that Cholesky cannot factor, by the 'svd' check: so with
            the defaults gpuvec warns exactly where numpy's defaults do.
        method : {None, 'cholesky', 'eigh', 'svd'}
            How cov is factored. None (gpuvec's default, the fast one) factors
            each symmetric positive-definite covariance by Cholesky (on numpy,
            blocks of the stack over the worker threads) and the others
            (semi-definite, or invalid ones let through by check_valid) by a
            symmetric eigendecomposition, after the check above. 'cholesky',
            'eigh' and 'svd' are numpy's: 'cholesky' factors the lower
            triangle, checks nothing else and raises ``numpy.linalg.LinAlgError``
            (naming the batch index) for a covariance that is not positive
            definite, semi-definite ones included. numpy's default is 'svd'.
        dtype : {float64, float32}
            The result's dtype (the arithmetic is float64).

        Returns
        -------
        samples : array, shape size + batch + (d,)
            ``samples[i]`` holds draw i of every distribution of the batch.

        Raises
        ------
        TypeError
            For complex mean or cov (as numpy), or a dtype other than
            float32/float64.
        ValueError
            For shapes that do not fit or broadcast, non-finite entries (naming
            the batch index), a bad method/check_valid/tol, or (with
            ``check_valid='raise'``) a covariance that is not symmetric positive
            semi-definite within tol, naming its batch index.
        numpy.linalg.LinAlgError
            With ``method='cholesky'``, for a covariance that is not positive
            definite (as numpy).

        Notes
        -----
        Where numpy and gpuvec differ: numpy takes one distribution (1-D mean),
        gpuvec a batch; numpy's 'eigh' reads only the lower triangle of cov,
        so an asymmetric cov passes silently, while gpuvec's 'eigh' and default
        check symmetry and factor the symmetric part ``(cov + cov.T) / 2``
        ('svd' factors cov as it is, as numpy does). An invalid covariance let
        through by 'warn' or 'ignore' is sampled with the absolute value of its
        eigenvalues (what numpy's 'svd' and 'eigh' do for a symmetric one).
        For one symmetric covariance on numpy, each method gives numpy's
        numbers for the same seed and method, to rounding.

        With a dask ``mean`` or ``cov`` (``pip install 'gpuvec[dask]'``) the
        result is a lazy dask array of the generator's chunk type, chunked like
        the batch axes of mean/cov (the ``d`` axes are made one chunk; the
        ``size`` axes get dask's "auto" chunks). Block ``i`` draws from a
        generator seeded with child ``i`` of a ``SeedSequence`` drawn from this
        generator (``dask.array.random``'s convention): reproducible for the same
        seed and the same chunks, but the numbers depend on the chunking and
        differ from the in-memory call's. With ``check_valid`` 'warn' or 'raise'
        (and a method other than 'cholesky'), the validity check runs during the
        call, on the active scheduler (one read of cov), so that its warning or
        error reaches the caller wherever the tasks run; 'ignore' keeps the call
        fully lazy. Non-finite entries raise when the block is computed. The
        messages name the index within the block and the block's first batch
        index.

        Examples
        --------
        >>> import numpy as np, gpuvec
        >>> rng = gpuvec.random.default_rng(0, backend="numpy")
        >>> mean = np.array([[0.0, 0.0], [5.0, 5.0]])
        >>> cov = np.stack([np.eye(2), [[2.0, 0.5], [0.5, 1.0]]])
        >>> rng.multivariate_normal(mean, cov, size=200000).shape
        (200000, 2, 2)
        >>> rng.multivariate_normal([0.0, 0.0], [[1.0, 1.0], [1.0, 1.0]], size=3, method="svd").shape
        (3, 2)
        """
        xp = self.xp
        self._check_arrays(mean=mean, cov=cov)
        check_choice("method", method, (None, *_MVN_METHODS))
        check_choice("check_valid", check_valid, _CHECK_VALID)
        tol = check_real("tol", tol)
        if tol < 0:
            msg = f"tol must be non-negative; got {tol}"
            raise ValueError(msg)
        dtype = _float_dtype(dtype, "multivariate_normal")
        size = _shape(size) or ()
        if is_dask_array(mean) or is_dask_array(cov):  # lazy: dask is imported only for dask inputs
            from gpuvec.random import _dask

            return _dask.multivariate_normal(self, mean, cov, size, check_valid, tol, method=method, dtype=dtype)
        complex_msg = "mean and cov must not be complex"  # numpy's words
        mean = _real_array(xp, "mean", mean, np.float64, complex_msg=complex_msg)
        cov = _real_array(xp, "cov", cov, np.float64, complex_msg=complex_msg)
        d, batch = check_mvn_shapes(tuple(mean.shape), tuple(cov.shape))
        _check_finite(xp, "mean", mean, 1)
        # the factors on cov's own batch (matmul broadcasts them); the default's common case first
        factor = _xp.clean_cholesky(xp, cov) if method is None and cov.size else None
        if factor is None:
            _check_finite(xp, "cov", cov, 2)
            if method == "cholesky":
                factor = _xp.strict_cholesky(xp, cov) if cov.size else cov
            else:
                factor = _xp.cov_factor(xp, cov, method or "auto", check_valid, tol)
        if factor.ndim == 2:  # one covariance: the draws times its factor, one GEMM (the same normals, in order)
            samples = xp.matmul(self._rng.standard_normal(size=size + batch + (d,)), factor.T)
        else:  # a factor per covariance: a batched product
            samples = xp.matmul(factor, self._rng.standard_normal(size=size + batch + (d, 1)))[..., 0]
        samples += mean
        return samples.astype(dtype, copy=False)

    # ------------------------------------------------------------------ helpers

    def _draw(self, method: Any, size: Any, dtype: Any, out: Any) -> Any:
        """``method(size, dtype, out)``, through a fresh array where out is not C-contiguous."""
        if out is None:
            return method(size=size, dtype=dtype)
        if out.flags.c_contiguous:
            return method(size=size, dtype=dtype, out=out)
        out[...] = method(size=size, dtype=dtype)  # same numbers as a fresh array, in out's layout
        return out

    def _check_out(self, out: Any, dtype: np.dtype, size: tuple[int, ...] | None) -> tuple[int, ...] | None:
        """Check ``out`` against the generator, dtype and size; return the output shape."""
        if out is None:
            return size
        xp_name = "cupy" if is_cupy_namespace(self.xp) else "numpy"
        on_gpu = is_cupy_array(out)
        if not (on_gpu or (is_numpy_array(out) and not isinstance(out, np.generic))) or on_gpu != (xp_name == "cupy"):
            got = f"{type(out).__module__}.{type(out).__name__}"
            msg = f"out must be a {xp_name}.ndarray (this generator is on {self.backend}); got {got}"
            raise TypeError(msg)
        if out.dtype != dtype:
            msg = f"out has dtype {out.dtype} but dtype={dtype.name} was asked for; they must be the same"
            raise TypeError(msg)
        if not getattr(out.flags, "writeable", True):
            msg = "out is read-only; pass a writeable array"
            raise ValueError(msg)
        if size is not None and size != out.shape:
            msg = f"size {size} and out.shape {out.shape} must agree when both are given"
            raise ValueError(msg)
        return out.shape

    def _check_arrays(self, **arrays: Any) -> None:
        """Inputs must live where the generator does: no silent copies."""
        for name, a in arrays.items():
            on_gpu = is_cupy_array(a)
            if (on_gpu and self.backend == "numpy") or (is_numpy_array(a) and a.ndim and self.backend == "cupy"):
                msg = (
                    f"{name} is a {type(a).__module__}.{type(a).__name__} but this generator is on "
                    f"{self.backend}; make the generator with default_rng(..., backend="
                    f"{'cupy' if on_gpu else 'numpy'!r}) or move {name} with gpuvec.asarray(x, like=...)"
                )
                raise TypeError(msg)


# --------------------------------------------------------------------------- argument helpers


def _checked_seed(seed: Any, backend: str) -> Any:
    """``seed`` as the backend's ``default_rng`` takes it, or a TypeError/ValueError naming seed."""
    if isinstance(seed, Generator):  # Generator(gpuvec_generator): share its stream, as default_rng would
        if seed.backend != backend:
            msg = f"seed is a gpuvec Generator on {seed.backend!r}, but backend={backend!r} was asked for"
            raise ValueError(msg)
        return seed._rng
    if isinstance(seed, np.random.SeedSequence):
        return int(seed.generate_state(1, np.uint64)[0]) if backend == "cupy" else seed
    if isinstance(seed, np.random.RandomState):  # numpy < 1.25's default_rng does not take one: its bit generator
        seed = seed._bit_generator
    if isinstance(seed, (np.random.Generator, np.random.BitGenerator)):
        return seed if backend == "numpy" else int(np.random.default_rng(seed).integers(2**63))
    if type(seed).__module__.split(".")[0] == "cupy" and not is_cupy_array(seed):  # a cupy Generator/BitGenerator
        if backend == "cupy":
            return seed
        kind = f"{type(seed).__module__}.{type(seed).__name__}"
        msg = f"seed is a {kind}, which cannot seed a numpy generator; pass {_SEEDS}"
        raise TypeError(msg)
    if is_cupy_array(seed):
        seed = seed.get()
    if isinstance(seed, np.ndarray) and seed.ndim == 0 and seed.dtype.kind in "iu":  # numpy takes a 0-d int
        seed = int(seed)
    if seed is not None:
        try:
            np.random.SeedSequence(seed)
        except (TypeError, ValueError) as exc:
            shown = repr(seed)
            shown = shown if len(shown) <= 60 else shown[:57] + "..."
            msg = f"seed must be {_SEEDS}; got {type(seed).__name__} {shown}"
            raise type(exc)(msg) from None
    return seed


def _float_dtype(dtype: Any, where: str) -> np.dtype:
    if dtype is np.float64:  # the default, without a dtype lookup
        return _FLOAT_DTYPES[1]
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt not in _FLOAT_DTYPES:  # (None == float64 in numpy's eyes)
        msg = f"dtype must be float32 or float64 (native byte order) for {where}; got {_dtype_name(dtype)}"
        raise TypeError(msg)
    return dt


def _dtype_name(dtype: Any) -> str:
    try:
        return str(np.dtype(dtype))
    except TypeError:
        return repr(dtype)


def _shape(size: Any) -> tuple[int, ...] | None:
    """``size`` as a tuple of non-negative ints (None stays None)."""
    if size is None:
        return None
    if type(size) is int and size >= 0:  # the common call
        return (size,)
    if isinstance(size, (bool, np.bool_)):  # numpy: TypeError
        raise TypeError(f"size must be None, an int or a tuple of ints; got {size!r}")
    shape: tuple[int, ...]
    try:
        shape = (operator.index(size),)
    except TypeError:
        try:
            shape = tuple(operator.index(n) for n in size)
        except TypeError:
            msg = f"size must be None, an int or a tuple of ints; got {size!r}"
            raise TypeError(msg) from None
    if any(n < 0 for n in shape):
        msg = f"size must not have negative entries; got {shape}"
        raise ValueError(msg)
    return shape


def _real_array(xp: Any, name: str, value: Any, dtype: Any, out: Any = None, complex_msg: str | None = None) -> Any:
    """``value`` as a real ``xp`` array of ``dtype``, never a view of ``out``."""
    try:
        a = xp.asarray(value)
    except (TypeError, ValueError) as exc:
        msg = f"{name} must be a real number or an array_like of real numbers; got {type(value).__name__} ({exc})"
        raise type(exc)(msg) from None
    if a.dtype.kind == "c":
        msg = complex_msg or f"{name} must not be complex"
        msg += f"; got {name} of dtype {a.dtype}. Pass {name}.real if the imaginary part is meant to be dropped"
        raise TypeError(msg)
    if a.dtype.kind not in "biuf":
        msg = f"{name} must be real numbers; got an array of dtype {a.dtype}"
        raise TypeError(msg)
    with np.errstate(over="ignore"):  # values beyond float32's range are inf, as the documented cast says
        if out is not None and xp.may_share_memory(a, out):
            return a.astype(dtype, copy=True)  # out is written before a would be read
        return a.astype(dtype, copy=False)


def _plain_number(v: Any) -> bool:
    """A Python float, or an int that float64 holds exactly: taken as loc or scale without making an array."""
    return type(v) is float or (type(v) is int and -(2**53) <= v <= 2**53)


def _check_scale(scale: float, where: tuple[int, ...] = ()) -> None:
    """numpy's rule for a scale: any value with its sign bit set is refused (-0.0 too), NaN is not."""
    if scale == scale and math.copysign(1.0, scale) < 0:
        msg = (
            f"scale must be non-negative everywhere; got scale{list(where) if where else ''} = "
            f"{scale!r} (as in numpy, any value with its sign bit set counts, -0.0 too)"
        )
        raise ValueError(msg)


def _check_finite(xp: Any, name: str, a: Any, core_ndim: int) -> None:
    """ValueError naming the first batch index of ``a`` whose core holds NaN or inf."""
    with np.errstate(over="ignore", invalid="ignore"):
        if bool(xp.isfinite(a.sum())):  # one pass, no mask: NaN and inf reach the sum (finite values may overflow it)
            return
    bad = ~xp.isfinite(a)
    bad = bad.any(axis=tuple(range(-core_ndim, 0))) if a.size else xp.zeros(a.shape[:-core_ndim], dtype=bool)
    if bool(bad.any()):
        where = _xp.batch_name(name, _xp.first_index(xp, bad))
        msg = f"{name} must be finite; {where} holds NaN or inf (samples from it would be NaN)"
        raise ValueError(msg)
