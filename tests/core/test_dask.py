"""Dask across gpuvec: detection, laziness and refusals shared by every algorithm, and the end-to-end runs.

A dask array is recognised without importing dask, never computed by the namespace check, and every public
function stays lazy on one; without dask, a dask input is a TypeError naming the extra. The end-to-end
tests run ray_max, the rotation checks and a sampler on an in-process LocalCluster and on a real
2-process LocalCluster (pickling, worker environment), each started once. Each algorithm's own dask
tests: tests/<algorithm>/test_dask.py.
"""

from __future__ import annotations

import sys
import warnings

import numpy as np
import pytest

import gpuvec
from gpuvec._core import namespace
from tests.helpers import assert_same as _same
from tests.helpers import exploding_dask_array as _exploding
from tests.helpers import rotation_stack as _stack
from tests.helpers import uniform_image as _image

da = pytest.importorskip("dask.array")
dask = pytest.importorskip("dask")


# --------------------------------------------------------------------------- detection


def test_is_dask_array_without_importing_dask():
    assert namespace.is_dask_array(da.zeros(3))
    assert not namespace.is_dask_array(np.zeros(3)) and not namespace.is_dask_array([1.0])


def test_get_namespace_refuses_a_dask_array_without_computing_it():
    x = _exploding((4, 4), 2)
    with pytest.raises(TypeError, match="never computes a dask array"):
        gpuvec.get_namespace(x)
    with pytest.raises(TypeError, match="gpuvec\\[dask\\]"):
        gpuvec.get_namespace(np.zeros(2), x)


def test_public_functions_stay_lazy_on_dask_input():
    R = _exploding((6, 3, 3), (4, 3, 3))
    assert namespace.is_dask_array(gpuvec.is_rotation(R))
    assert namespace.is_dask_array(gpuvec.nearest_rotation(R))
    assert all(namespace.is_dask_array(r) for r in gpuvec.rotation_residuals(R))
    assert all(namespace.is_dask_array(r) for r in gpuvec.ray_max(_exploding((9, 8), 4), (2.5, 3.0), 5))
    rng = gpuvec.random.default_rng(0, backend="numpy")
    assert namespace.is_dask_array(rng.normal(_exploding((5,), 2), 1.0))


@pytest.mark.parametrize("call", ["ray_max", "is_rotation", "rotation_residuals", "nearest_rotation", "normal", "mvn"])
def test_without_dask_a_dask_input_is_a_typeerror_naming_the_extra(monkeypatch, call):
    x = da.ones((4, 3, 3), chunks=2)
    mean = x[..., 0]
    monkeypatch.setitem(sys.modules, "dask.array", None)  # "import dask.array" now fails
    rng = gpuvec.random.default_rng(0, backend="numpy")
    calls = {
        "ray_max": lambda: gpuvec.ray_max(x, (1, 1, 1)),
        "is_rotation": lambda: gpuvec.is_rotation(x),
        "rotation_residuals": lambda: gpuvec.rotation_residuals(x),
        "nearest_rotation": lambda: gpuvec.nearest_rotation(x),
        "normal": lambda: rng.normal(x, 1.0),
        "mvn": lambda: rng.multivariate_normal(mean, x),
    }
    with pytest.raises(TypeError, match=r"pip install 'gpuvec\[dask\]'"):
        calls[call]()


# --------------------------------------------------------------------------- clusters


@pytest.fixture(scope="module")
def threads_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=":0") as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


@pytest.fixture(scope="module")
def process_client():
    distributed = pytest.importorskip("distributed")
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0", env={"GPUVEC_JIT": "1"}
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        yield client


def _end_to_end(client):
    img = _image((64, 48), np.float32, seed=4)
    x = da.from_array(img, chunks=(20, 17))
    R = _stack((40,))
    xR = da.from_array(R, chunks=(15, 3, 3))
    rng = gpuvec.random.default_rng(11, backend="numpy")
    mvn = rng.multivariate_normal(da.zeros((6, 3), chunks=(4, 3)), np.eye(3), size=100)
    best, arg = gpuvec.ray_max(x, (10.5, 70.0), 5, mode="constant")
    got = client.compute([best, arg, gpuvec.is_rotation(xR), gpuvec.nearest_rotation(xR), mvn], sync=True)
    want = gpuvec.ray_max(img, (10.5, 70.0), 5, mode="constant")
    _same(want[0], got[0])
    _same(want[1], got[1])
    _same(gpuvec.is_rotation(R), got[2])
    # the workers run GPUVEC_JIT=1 (Newton's iteration for 3x3), the caller not (the SVD): equal to rounding
    np.testing.assert_allclose(got[3], gpuvec.nearest_rotation(R), rtol=0, atol=1e-13)
    assert got[4].shape == (100, 6, 3) and np.isfinite(got[4]).all()


def test_end_to_end_in_process_cluster(threads_client):
    _end_to_end(threads_client)


def test_end_to_end_two_worker_processes(process_client):
    """Real worker processes: block functions pickle, numba's loop runs in the workers (GPUVEC_JIT=1 there)."""
    _end_to_end(process_client)
    ran = process_client.run(lambda: "gpuvec.rays._numba" in sys.modules)
    assert all(ran.values())


def test_sampler_warnings_reach_the_caller_from_worker_processes(process_client):
    """A worker process keeps its own warnings: multivariate_normal's validity check runs during the call."""
    cov = np.stack([np.eye(2)] * 9)
    cov[6] = [[1.0, 2.0], [2.0, 1.0]]
    rng = gpuvec.random.default_rng(5, backend="numpy")
    with pytest.warns(RuntimeWarning, match=r"cov\[2\] has a negative eigenvalue.*starting at batch index \[4\]"):
        x = rng.multivariate_normal(da.zeros((9, 2), chunks=(4, 2)), da.from_array(cov, chunks=(4, 2, 2)), size=3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # told once: computing on the workers adds nothing
        assert np.isfinite(process_client.compute(x, sync=True)).all()
    with pytest.raises(ValueError, match=r"cov\[2\].*starting at batch index \[4\]"):
        rng.multivariate_normal(
            da.zeros((9, 2), chunks=(4, 2)), da.from_array(cov, chunks=(4, 2, 2)), check_valid="raise"
        )
