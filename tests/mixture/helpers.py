"""Data makers shared by test_cpu.py and test_implementations.py (the numba loops' tests)."""

from __future__ import annotations

import warnings

import numpy as np

from gpuvec import mixture


def blobs(rng, B=2, n=400, D=3, K=3, dtype=np.float64):
    centres = rng.normal(0, 4, (B, K, D))
    X = centres[np.arange(B)[:, None], rng.integers(0, K, (B, n))] + rng.normal(size=(B, n, D))
    return X.astype(dtype)


def start_params(rng, X, K, ct):
    return mixture.m_step(X, np.log(rng.dirichlet(np.ones(K), size=X.shape[:2])), 1e-6, ct)


def quiet_fit(gm, X, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return gm.fit(X, **kw)
