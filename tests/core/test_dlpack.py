"""Arrays from other libraries through DLPack: in without a copy, out as the caller's kind, kinds never mixed."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

import gpuvec
from gpuvec._core import dlpack as _dlpack

aas = pytest.importorskip("array_api_strict")
# numpy < 2 marks what from_dlpack gives as read-only and cannot export it again, so these tests
# cannot read array-api-strict results back there (gpuvec's own conversions work; see the Producer tests).
needs_numpy2 = pytest.mark.skipif(
    np.__version__.startswith("1."), reason="numpy < 2 cannot re-export read-only arrays through DLPack"
)


class Producer:
    """The smallest DLPack producer: a numpy array behind the two protocol methods, in a module with from_dlpack."""

    __module__ = "tinylib"

    def __init__(self, a):
        self.a = np.asarray(a)

    def __dlpack__(self, **kwargs):
        return self.a.__dlpack__(**kwargs)

    def __dlpack_device__(self):
        return self.a.__dlpack_device__()


@pytest.fixture
def tinylib(monkeypatch):
    mod = types.ModuleType("tinylib")
    mod.from_dlpack = lambda x: Producer(np.from_dlpack(x))
    monkeypatch.setitem(sys.modules, "tinylib", mod)
    return mod


def test_ray_max_takes_a_producer_without_copying_and_returns_its_kind(tinylib):
    img = np.random.default_rng(0).random((6, 7))
    best, arg = gpuvec.ray_max(Producer(img), (2, 3), 5)
    assert type(best) is Producer and type(arg) is Producer
    want = gpuvec.ray_max(img, (2, 3), 5)
    assert np.array_equal(best.a, want[0]) and np.array_equal(arg.a, want[1])


@needs_numpy2
def test_array_api_strict_in_array_api_strict_out():
    img = np.random.default_rng(1).random((5, 5)).astype(np.float32)
    best, arg, coords = gpuvec.ray_max(aas.asarray(img), (1, 4), 4, return_coords=True)
    assert all(type(r) is type(aas.asarray(1.0)) for r in (best, arg, coords))
    assert np.array_equal(np.from_dlpack(best), gpuvec.ray_max(img, (1, 4), 4)[0])


@needs_numpy2
def test_named_tuple_results_keep_their_type():
    res = gpuvec.rotation_residuals(aas.asarray(np.stack([np.eye(3), -np.eye(3)])))
    assert isinstance(res, gpuvec.rotations.RotationResiduals)
    assert np.from_dlpack(res.det).tolist() == [1.0, -1.0]
    assert np.from_dlpack(gpuvec.is_rotation(aas.asarray(np.eye(3)))).item() is True


@needs_numpy2
def test_sampling_with_dlpack_parameters_matches_numpy_parameters():
    loc = np.arange(6.0).reshape(2, 3)
    got = gpuvec.random.default_rng(4, backend="numpy").normal(aas.asarray(loc), 2.0, size=(10, 2, 3))
    want = gpuvec.random.default_rng(4, backend="numpy").normal(loc, 2.0, size=(10, 2, 3))
    assert np.array_equal(np.from_dlpack(got), want)


def test_mixing_kinds_is_a_type_error(tinylib):
    with pytest.raises(TypeError, match="got both a tinylib.Producer and a numpy.ndarray"):
        gpuvec.random.default_rng(0, backend="numpy").normal(Producer(np.zeros(3)), np.ones(3))
    with pytest.raises(TypeError, match="never converts between array libraries"):
        gpuvec.random.default_rng(0, backend="numpy").normal(Producer(np.zeros(3)), aas.asarray(np.ones(3)))


@needs_numpy2
def test_numpy_scalars_beside_a_dlpack_array_are_fine():
    best, _ = gpuvec.ray_max(aas.asarray(np.ones((3, 3))), (np.float64(1), np.int64(1)), 3, cval=np.float32(0))
    assert np.from_dlpack(best).sum() == 9


def test_asarray_and_to_numpy_take_dlpack_arrays():
    x = aas.asarray(np.arange(4.0))
    assert type(gpuvec.asarray(x, like=np.zeros(1))) is np.ndarray
    assert gpuvec.to_numpy(x).tolist() == [0.0, 1.0, 2.0, 3.0]


def test_numpy_and_cupy_calls_take_no_detour(monkeypatch):
    monkeypatch.setattr(_dlpack, "to_native", lambda x: pytest.fail("a numpy call went through DLPack"))
    assert gpuvec.is_rotation(np.eye(3))


def test_a_device_gpuvec_cannot_use_is_named():
    class OnTPU(Producer):
        def __dlpack_device__(self):
            return (12, 0)  # kDLOneAPI

    with pytest.raises(TypeError, match="DLPack device type 12"):
        gpuvec.is_rotation(OnTPU(np.eye(3)))


@needs_numpy2
def test_gaussian_mixture_methods_take_and_give_dlpack_arrays():
    pytest.importorskip("sklearn")
    X = np.concatenate(
        [np.random.default_rng(0).normal(0, 1, (100, 2)), np.random.default_rng(1).normal(6, 1, (100, 2))]
    )
    gm = gpuvec.GaussianMixture(2, random_state=0).fit(aas.asarray(X))
    ref = gpuvec.GaussianMixture(2, random_state=0).fit(X)
    assert type(gm.means_) is np.ndarray and np.array_equal(gm.means_, ref.means_)  # fitted parameters: numpy
    labels = gm.predict(aas.asarray(X))
    assert type(labels) is type(aas.asarray(1)) and np.array_equal(np.from_dlpack(labels), ref.predict(X))
    assert float(gm.score(aas.asarray(X))) == ref.score(X)


@pytest.mark.parametrize("lib", ["torch", "jax"])
def test_torch_and_jax_in_their_own_kind_out(lib):
    """Where torch or JAX is installed (the GPU check's machine, a laptop); CUDA tensors where cupy has a GPU."""
    mod = pytest.importorskip(lib)
    img = np.random.default_rng(5).random((7, 8))
    want = gpuvec.ray_max(img, (3, 2), 5)
    if lib == "torch":
        devices = ["cpu"] + (["cuda"] if mod.cuda.is_available() else [])
        for device in devices:
            best, arg = gpuvec.ray_max(mod.from_numpy(img).to(device), (3, 2), 5)
            assert isinstance(best, mod.Tensor) and best.device.type == device
            assert np.array_equal(best.cpu().numpy(), want[0]) and np.array_equal(arg.cpu().numpy(), want[1])
    else:
        import jax.numpy as jnp

        mod.config.update("jax_enable_x64", True)
        best, _ = gpuvec.ray_max(jnp.asarray(img), (3, 2), 5)
        assert isinstance(best, mod.Array) and np.array_equal(np.asarray(best), want[0])
