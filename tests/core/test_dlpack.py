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


# --------------------------------------------------------------------------- the caller's device (#23)

DEVICE1 = aas.Device("device1")


def _rng():
    return gpuvec.random.default_rng(3, backend="numpy")


def _gm_predict(X):
    pytest.importorskip("sklearn")
    return gpuvec.GaussianMixture(2, random_state=0).fit(X).predict(X)


_RNG = np.random.default_rng(7)
_IMAGE = _RNG.random((6, 5))
_ROTATIONS = np.stack([np.eye(3), np.diag([1.0, -1.0, -1.0]), np.eye(3) * 1.1])
_POINTS = np.concatenate([_RNG.normal(0, 1, (40, 2)), _RNG.normal(6, 1, (40, 2))])
# (name, call on the library's arrays, its input): every public function decorated with dlpack_io, one call each
DEVICE_CALLS = [
    ("ray_max", lambda x: gpuvec.ray_max(x, (1, 3), 4, return_coords=True), _IMAGE),
    ("ray_max dense", lambda x: gpuvec.ray_max(x, (2, 2), None, order=0), _IMAGE),
    ("is_rotation", gpuvec.is_rotation, _ROTATIONS),
    ("rotation_residuals", gpuvec.rotation_residuals, _ROTATIONS),
    ("nearest_rotation", gpuvec.nearest_rotation, _ROTATIONS),
    ("normal", lambda x: _rng().normal(x, 2.0, size=(4, 6, 5)), _IMAGE),
    ("normal scale", lambda x: _rng().normal(1.0, x), _IMAGE),
    ("multivariate_normal", lambda x: _rng().multivariate_normal(x[:, :2], _eye_like(x, 2), size=3), _IMAGE),
    ("GaussianMixture.predict", _gm_predict, _POINTS),
]


def _eye_like(x, n):
    """An identity matrix of ``x``'s library on ``x``'s device."""
    return x.__array_namespace__().eye(n, device=x.device)


def _arrays(result):
    return list(result) if isinstance(result, tuple) else [result]


@needs_numpy2
@pytest.mark.parametrize(("name", "call", "data"), DEVICE_CALLS, ids=[c[0] for c in DEVICE_CALLS])
def test_results_come_back_on_the_device_of_the_callers_arrays(name, call, data):
    x = aas.asarray(data, device=DEVICE1)
    got, want = _arrays(call(x)), _arrays(call(data))
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert type(g) is type(x) and g.device == DEVICE1, name
        np.testing.assert_array_equal(np.from_dlpack(g), w)
        aas.stack([g, aas.asarray(w, device=DEVICE1)])  # array-api-strict refuses arrays of two devices


@needs_numpy2
def test_results_on_the_default_device_stay_there():
    best, _ = gpuvec.ray_max(aas.asarray(_IMAGE), (1, 1), 3)
    assert best.device == aas.Device("CPU_DEVICE")


@needs_numpy2
def test_gaussian_mixture_fit_then_methods_on_the_callers_device():
    pytest.importorskip("sklearn")
    X = aas.asarray(_POINTS, device=DEVICE1)
    gm = gpuvec.GaussianMixture(2, random_state=0).fit(X)
    for result in (gm.predict(X), gm.predict_proba(X), gm.fit_predict(X)):
        assert result.device == DEVICE1


def test_one_librarys_arrays_on_two_devices_are_refused():
    on1, on_cpu = aas.asarray(np.zeros(3), device=DEVICE1), aas.asarray(np.ones(3))
    with pytest.raises(TypeError, match=r"on two devices.*device1.*CPU_DEVICE"):
        _rng().normal(on1, on_cpu)


def test_a_result_without_a_device_is_left_as_its_library_gave_it(tinylib):
    assert type(_dlpack.back(np.zeros(2), "tinylib", DEVICE1)) is Producer  # Producer has no .device


# --------------------------------------------------------------------------- 0-d arrays are scalars (#23)

ZERO_D = {
    "numpy": np.asarray,
    "array_api_strict": aas.asarray,
    "array_api_strict device1": lambda v: aas.asarray(v, device=DEVICE1),
    "dlpack producer": lambda v: Producer(np.asarray(v)),
}
# (name, call with every scalar argument made by `s`): the result must equal the call with Python numbers
SCALAR_CALLS = [
    ("ray_max origin", lambda s, img: gpuvec.ray_max(img, (s(1.5), s(2)), 4)),
    ("ray_max cval", lambda s, img: gpuvec.ray_max(img, (-2, 7), 4, mode="constant", cval=s(0.25))),
    ("ray_max num order", lambda s, img: gpuvec.ray_max(img, (1, 1), s(4), order=s(0))),
    ("ray_max return_coords", lambda s, img: gpuvec.ray_max(img, (1, 1), 3, return_coords=s(True))[:2]),
    ("normal scale beside array loc", lambda s, img: _rng().normal(img, s(0.5))),
    ("is_rotation atol", lambda s, img: gpuvec.is_rotation(img[:3, :3], atol=s(2.0))),
    ("multivariate_normal tol", lambda s, img: _rng().multivariate_normal(img[0, :2], np.eye(2), tol=s(1e-6))),
]


def _plain(v):
    return v


@needs_numpy2
@pytest.mark.parametrize(("name", "call"), SCALAR_CALLS, ids=[c[0] for c in SCALAR_CALLS])
@pytest.mark.parametrize("maker", list(ZERO_D), ids=list(ZERO_D))
def test_zero_d_arrays_are_taken_as_scalars(name, call, maker, tinylib):
    want = _arrays(call(_plain, _IMAGE))
    got = _arrays(call(ZERO_D[maker], _IMAGE))
    for g, w in zip(got, want, strict=True):
        assert type(g) is type(w), name  # numpy data in, numpy out, whatever kind the scalars were
        np.testing.assert_array_equal(g, w)


@needs_numpy2
@pytest.mark.parametrize("maker", ["numpy", "array_api_strict"])
def test_zero_d_scalars_beside_a_dlpack_array_keep_its_kind_and_device(maker):
    s = ZERO_D[maker]
    best, arg = gpuvec.ray_max(aas.asarray(_IMAGE, device=DEVICE1), (s(1.5), s(2)), s(4), cval=s(0.0))
    want = gpuvec.ray_max(_IMAGE, (1.5, 2), 4)
    assert best.device == DEVICE1 and arg.device == DEVICE1
    assert np.array_equal(np.from_dlpack(best), want[0]) and np.array_equal(np.from_dlpack(arg), want[1])


@needs_numpy2
def test_only_zero_d_dlpack_arguments_decide_the_kind(tinylib):
    got = _rng().normal(aas.asarray(1.0, device=DEVICE1), aas.asarray(2.0, device=DEVICE1), size=3)
    assert type(got) is type(aas.asarray(1.0)) and got.device == DEVICE1
    assert np.array_equal(np.from_dlpack(got), _rng().normal(1.0, 2.0, size=3))
    numpy_0d = _rng().normal(np.asarray(1.0), aas.asarray(2.0), size=3)  # a numpy 0-d never decides, as before
    assert type(numpy_0d) is type(got) and np.array_equal(np.from_dlpack(numpy_0d), np.from_dlpack(got))
    with pytest.raises(TypeError, match="never converts between array libraries"):
        _rng().normal(aas.asarray(1.0), Producer(np.asarray(2.0)), size=3)
    with pytest.raises(TypeError, match="on two devices"):
        _rng().normal(aas.asarray(1.0, device=DEVICE1), aas.asarray(2.0), size=3)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"cval": np.asarray(1 + 2j)}, TypeError, r"cval must be a real number; got array\(1\.\+2\.j\)"),
        ({"cval": aas.asarray([0.0])}, TypeError, "got both a array_api_strict"),  # not a scalar: an array
        ({"cval": np.asarray([0.0])}, TypeError, r"cval must be a real number; got array\(\[0\.\]\)"),
        ({"num": np.asarray(4.0)}, TypeError, r"num must be an integer; got array\(4\.\) of type ndarray"),
        ({"order": aas.asarray(True)}, TypeError, "order must be an integer"),
        ({"return_coords": np.asarray(1)}, TypeError, "return_coords must be True or False"),
        ({"origin": (aas.asarray(np.nan), 1)}, ValueError, r"origin\[0\] must be finite"),
    ],
)
def test_zero_d_arrays_that_are_not_the_scalar_asked_for_are_named(kwargs, error, match):
    call = {"origin": (1, 1), "num": 3, **kwargs}
    with pytest.raises(error, match=match):
        gpuvec.ray_max(_IMAGE, **call)


@pytest.mark.parametrize("maker", ["numpy", "array_api_strict"])
def test_a_zero_d_mean_is_named(maker):
    with pytest.raises(ValueError, match=r"matching mean \(\.\.\., d\); got mean \(\)"):
        _rng().multivariate_normal(ZERO_D[maker](1.0), np.eye(1))


def test_scalar_value_reads_zero_d_arrays_and_leaves_the_rest():
    from gpuvec._core.checks import scalar_value

    assert scalar_value(np.asarray(2.5)) == 2.5 and type(scalar_value(np.asarray(2.5))) is float
    assert type(scalar_value(aas.asarray(3))) is int and scalar_value(aas.asarray(True)) is True
    assert type(scalar_value(np.asarray(1j))) is complex
    for v in (1.5, np.float32(1.5), "1.5", [1.0], np.zeros(1)):
        assert scalar_value(v) is v


def test_a_zero_d_dask_array_is_never_computed_for_a_scalar():
    pytest.importorskip("dask.array")
    from tests.helpers import exploding_dask_array

    with pytest.raises(TypeError, match="cval must be a real number"):
        gpuvec.ray_max(_IMAGE, (1, 1), 3, cval=exploding_dask_array((), ()))


# --------------------------------------------------------------------------- DLPack beside dask (#23)

MIXED_WITH_DASK = [
    ("normal", lambda f, d: _rng().normal(f, d)),
    ("normal scale", lambda f, d: _rng().normal(d, scale=f)),
    ("multivariate_normal", lambda f, d: _rng().multivariate_normal(f[0, :2], d[:2, :2] * 0 + np.eye(2))),
    ("ray_max cval", lambda f, d: gpuvec.ray_max(f, (1, 1), 3, cval=d[0, 0])),
    ("GaussianMixture.fit", lambda f, d: gpuvec.GaussianMixture(2).fit(d, sample_weight=f[:, 0])),
]


@pytest.mark.parametrize(("name", "call"), MIXED_WITH_DASK, ids=[c[0] for c in MIXED_WITH_DASK])
def test_a_dlpack_array_beside_a_dask_array_names_both(name, call):
    da = pytest.importorskip("dask.array")
    foreign, lazy = aas.asarray(_IMAGE), da.from_array(_IMAGE, chunks=3)
    with pytest.raises(TypeError, match=r"got both a array_api_strict\.\S*Array and a dask\.array\.core\.Array") as e:
        call(foreign, lazy)
    assert "numpy" not in str(e.value).split(":")[0], name  # a type the caller never passed is not named
