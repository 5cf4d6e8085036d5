"""gpuvec.random's backend matrix: one implementation per backend, numpy's Generator the reference.

There is no dispatcher: a Generator draws with its backend's own generator (numpy's PCG64, or cupy's), and
the multivariate normal's covariance factors are written once against the namespace (gpuvec/random/_xp.py,
methods 'cholesky', 'eigh', 'svd'; compared with each other in test_numpy_suite.py).

- numpy: bit for bit numpy's Generator for the same seed and arguments (the two numpy tests below; the
  seeds and numpy's scale rule in test_generator.py; numpy's own tests in test_numpy_suite.py); every test
  taking the ``xp`` fixture, on numpy.
- cupy: another stream, the same distributions: the ``xp=cupy`` cell of those tests (moments,
  Kolmogorov-Smirnov); the two cupy tests below (a numpy seed for a cupy generator; arrays of the other
  backend refused).
- dask: tests/random/test_dask.py (one spawned generator per block).

The cupy cells skip without a GPU (GPUVEC_REQUIRE_GPU=1 makes that a failure).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gpuvec
from tests.helpers import to_np


def test_normal_is_bitwise_numpys_generator_normal():
    means = np.random.default_rng(1).random((50, 3))
    stds = np.random.default_rng(2).random((50, 3))
    ours = gpuvec.random.default_rng(7, backend="numpy").normal(means, stds, size=(1000, 50, 3))
    theirs = np.random.default_rng(7).normal(means, stds, size=(1000, 50, 3))
    assert np.array_equal(ours, theirs)


@settings(max_examples=40, deadline=None)
@given(
    shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=4),
    extra=st.lists(st.integers(0, 3), max_size=2),
    seed=st.integers(0, 2**32),
    use_size=st.booleans(),
)
def test_normal_bitwise_numpy_for_any_broadcast(shapes, extra, seed, use_size):
    (loc_shape, scale_shape), result = shapes.input_shapes, shapes.result_shape
    rs = np.random.default_rng(seed)
    loc, scale = rs.standard_normal(loc_shape), rs.random(scale_shape) * 3
    size = tuple(extra) + result if use_size else None
    ours = gpuvec.random.default_rng(seed, backend="numpy").normal(loc, scale, size=size)
    theirs = np.random.default_rng(seed).normal(loc, scale, size=size)
    assert np.asarray(ours).shape == np.shape(theirs)
    assert np.array_equal(ours, theirs)


def test_wrong_device_is_type_error(cp):
    rng = gpuvec.random.default_rng(0, backend="numpy")
    with pytest.raises(TypeError, match="loc is a cupy"):
        rng.normal(cp.zeros(3), 1.0)
    with pytest.raises(TypeError, match="generator is on cupy"):
        gpuvec.random.default_rng(0, backend="cupy").normal(np.zeros(3), 1.0)


def test_numpy_generator_seeds_a_cupy_generator(cp):
    a = gpuvec.random.default_rng(np.random.default_rng(3), backend="cupy").random(3)
    b = gpuvec.random.default_rng(np.random.default_rng(3), backend="cupy").random(3)
    assert np.array_equal(to_np(a), to_np(b))
