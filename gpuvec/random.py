"""Seeded random generators on numpy or cupy, with batched normal and multivariate-normal samplers.

Same seed, same backend, same shapes: the same numbers. Across backends the
streams differ (numpy's PCG64 and cupy's generator are different algorithms);
what is the same is the distribution.
"""

from __future__ import annotations

import types
from typing import Any, Literal

import numpy as np

from gpuvec._backend import _is_cupy_array, _is_numpy_array, default_name, is_cupy_namespace, use_backend
from gpuvec._linalg import batched_cholesky

__all__ = ["Generator", "default_rng"]


def default_rng(seed: Any = None, *, backend: Literal["numpy", "cupy"] | None = None) -> Generator:
    """A seeded generator on the default backend, or on ``backend``.

    Parameters
    ----------
    seed : None, int, array_like of int, numpy.random.SeedSequence or Generator
        As numpy's ``default_rng`` takes it; a gpuvec :class:`Generator` is
        returned as it is (its backend must match ``backend`` if given).
    backend : {'numpy', 'cupy'}, optional
        Default: the default backend (see :func:`gpuvec.backend_info`).

    Returns
    -------
    rng : Generator

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

    Attributes
    ----------
    backend : {'numpy', 'cupy'}
    xp : module
        numpy or cupy: the namespace of the arrays this generator returns.
    """

    def __init__(self, seed: Any = None, backend: str | None = None) -> None:
        if backend is None:
            backend = default_name()
        if backend not in ("numpy", "cupy"):
            msg = f"backend must be 'numpy' or 'cupy'; got {backend!r}"
            raise ValueError(msg)
        with use_backend(backend) as xp:
            self.xp: types.ModuleType = xp
        self.backend = backend
        if is_cupy_namespace(xp) and isinstance(seed, np.random.SeedSequence):
            seed = int(seed.generate_state(1, np.uint64)[0])
        self._rng = xp.random.default_rng(seed)

    def __repr__(self) -> str:
        return f"gpuvec.random.Generator(backend={self.backend!r})"

    # ------------------------------------------------------------------ basic draws

    def standard_normal(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        """Standard normal samples, as numpy's ``Generator.standard_normal``.

        Parameters
        ----------
        size : int or tuple of int, optional
        dtype : {float64, float32}
        out : array, optional
            Filled in place (same namespace as the generator).

        Examples
        --------
        >>> import gpuvec
        >>> gpuvec.random.default_rng(1, backend="numpy").standard_normal(3).shape
        (3,)
        """
        self._check_arrays(out=out)
        return self._rng.standard_normal(size=size, dtype=dtype, out=out)

    def random(self, size: Any = None, dtype: Any = np.float64, out: Any = None) -> Any:
        """Uniform samples in [0, 1), as numpy's ``Generator.random``.

        Examples
        --------
        >>> import gpuvec
        >>> x = gpuvec.random.default_rng(1, backend="numpy").random((2, 2))
        >>> bool(((0 <= x) & (x < 1)).all())
        True
        """
        self._check_arrays(out=out)
        return self._rng.random(size=size, dtype=dtype, out=out)

    def integers(self, low: int, high: int | None = None, size: Any = None, dtype: Any = np.int64, endpoint: bool = False) -> Any:
        """Random integers in [low, high), as numpy's ``Generator.integers``.

        Examples
        --------
        >>> import gpuvec
        >>> int(gpuvec.random.default_rng(1, backend="numpy").integers(5, 6))
        5
        """
        return self._rng.integers(low, high, size=size, dtype=dtype, endpoint=endpoint)

    # ------------------------------------------------------------------ batched samplers

    def normal(self, loc: Any = 0.0, scale: Any = 1.0, size: Any = None, *, dtype: Any = np.float64, out: Any = None) -> Any:
        """Normal samples with numpy's broadcasting rules, without a Python loop.

        Fills with ``standard_normal`` then scales and shifts in place: on numpy
        this gives bit for bit the numbers of ``numpy.random.Generator.normal``
        with the same seed, 2-3 times faster.

        Parameters
        ----------
        loc, scale : float or array_like
            Means and standard deviations; they broadcast with each other and
            with ``size``. A negative scale is a ValueError.
        size : int or tuple of int, optional
            Output shape; default: the broadcast shape of loc and scale.
        dtype : {float64, float32}
        out : array, optional
            Filled in place; its shape is the output shape.

        Returns
        -------
        samples : array, shape size (or broadcast(loc, scale))

        Examples
        --------
        The seed's question: 1000 sample sets of N x 3 coordinates in one call.

        >>> import numpy as np, gpuvec
        >>> means = np.array([[0.0, 0, 0], [1, 1, 1]])
        >>> stds = np.array([[1.0, 1, 1], [2, 2, 2]])
        >>> rng = gpuvec.random.default_rng(0, backend="numpy")
        >>> rng.normal(means, stds, size=(1000, *means.shape)).shape
        (1000, 2, 3)
        """
        xp = self.xp
        self._check_arrays(loc=loc, scale=scale, out=out)
        loc = xp.asarray(loc, dtype=dtype)
        scale = xp.asarray(scale, dtype=dtype)
        if bool((scale < 0).any()):  # the one value check, up front
            msg = "scale must be non-negative everywhere; got a negative standard deviation"
            raise ValueError(msg)
        shape = np.broadcast_shapes(loc.shape, scale.shape)
        if out is not None:
            size = out.shape
        if size is not None:
            size = (size,) if np.ndim(size) == 0 else tuple(size)
            try:
                fits = np.broadcast_shapes(size, shape) == size
            except ValueError:
                fits = False
            if not fits:
                msg = f"size {size} does not broadcast with loc {loc.shape} and scale {scale.shape}"
                raise ValueError(msg)
            shape = size
        samples = self._rng.standard_normal(size=shape, dtype=dtype, out=out)
        samples *= scale
        samples += loc
        return samples

    def multivariate_normal(self, mean: Any, cov: Any, size: Any = None, *, dtype: Any = np.float64) -> Any:
        """Multivariate normal samples for a batch of distributions.

        Parameters
        ----------
        mean : array_like, shape (..., d)
        cov : array_like, shape (..., d, d)
            Symmetric positive (semi-)definite; the leading axes broadcast with
            mean's into the batch shape.
        size : int or tuple of int, optional
            Number of draws per distribution.
        dtype : {float64, float32}

        Returns
        -------
        samples : array, shape size + batch + (d,)

        Raises
        ------
        ValueError
            For a covariance that is not symmetric positive semi-definite,
            naming its batch index.

        Notes
        -----
        Cholesky factors where every covariance is positive definite; otherwise
        a symmetric eigendecomposition, which also handles semi-definite ones.

        Examples
        --------
        >>> import numpy as np, gpuvec
        >>> rng = gpuvec.random.default_rng(0, backend="numpy")
        >>> mean = np.array([[0.0, 0.0], [5.0, 5.0]])
        >>> cov = np.stack([np.eye(2), [[2.0, 0.5], [0.5, 1.0]]])
        >>> rng.multivariate_normal(mean, cov, size=200000).shape
        (200000, 2, 2)
        """
        xp = self.xp
        self._check_arrays(mean=mean, cov=cov)
        mean = xp.asarray(mean, dtype=xp.float64)
        cov = xp.asarray(cov, dtype=xp.float64)
        if mean.ndim < 1 or cov.ndim < 2 or cov.shape[-2:] != (mean.shape[-1],) * 2:
            msg = f"cov must have shape (..., d, d) matching mean (..., d); got mean {mean.shape} and cov {cov.shape}"
            raise ValueError(msg)
        d = mean.shape[-1]
        batch = np.broadcast_shapes(mean.shape[:-1], cov.shape[:-2])
        size = () if size is None else (size,) if np.ndim(size) == 0 else tuple(size)
        factor = self._cov_factor(xp.broadcast_to(cov, batch + (d, d)))
        z = self._rng.standard_normal(size=size + batch + (d, 1))
        samples = xp.matmul(factor, z)[..., 0]
        samples += mean
        return samples.astype(dtype, copy=False)

    def _cov_factor(self, cov: Any) -> Any:
        xp = self.xp
        d = cov.shape[-1]
        scale = xp.abs(cov).max(axis=(-1, -2), keepdims=True) if cov.size else cov
        tol = 10 * d * np.finfo(np.float64).eps
        asym = xp.abs(cov - xp.swapaxes(cov, -1, -2)) > tol * scale
        if bool(asym.any()):
            bad = tuple(int(i) for i in xp.argwhere(asym.any(axis=(-1, -2)))[0])
            msg = f"cov must be symmetric; {_batch_name(bad)} is not"
            raise ValueError(msg)
        factor, ok = batched_cholesky(xp, cov)
        if bool(ok.all()):
            return factor
        w, V = xp.linalg.eigh(cov)
        negative = w < -tol * scale[..., 0]
        if bool(negative.any()):
            bad = tuple(int(i) for i in xp.argwhere(negative.any(axis=-1))[0])
            msg = f"cov must be positive semi-definite; {_batch_name(bad)} has a negative eigenvalue"
            raise ValueError(msg)
        return V * xp.sqrt(xp.clip(w, 0, None))[..., None, :]

    def _check_arrays(self, **arrays: Any) -> None:
        """Inputs must live where the generator does: no silent copies."""
        for name, a in arrays.items():
            on_gpu = _is_cupy_array(a)
            if (on_gpu and self.backend == "numpy") or (_is_numpy_array(a) and a.ndim and self.backend == "cupy"):
                msg = (
                    f"{name} is a {type(a).__module__}.{type(a).__name__} but this generator is on "
                    f"{self.backend}; make the generator with default_rng(..., backend="
                    f"{'cupy' if on_gpu else 'numpy'!r}) or move {name} with gpuvec.asarray(x, like=...)"
                )
                raise TypeError(msg)


def _batch_name(index: tuple[int, ...]) -> str:
    return f"cov{list(index)}" if index else "cov"
