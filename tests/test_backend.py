"""The backend shim's rules: how the default is chosen, per-call dispatch, helpers."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gpuvec
from gpuvec import _backend


def run_python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if not k.startswith("GPUVEC_")}
    environ.update(env)
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, env=environ)


def test_numpy_backend_never_imports_cupy():
    r = run_python(
        """
        import sys, gpuvec, numpy as np
        gpuvec.ray_max(np.ones((3, 3)), (1, 1)); gpuvec.is_rotation(np.eye(3))
        gpuvec.random.default_rng(0).normal(size=3); gpuvec.backend_info(); gpuvec.sync()
        print(gpuvec.backend_info().name, 'cupy' in sys.modules)
        """,
        GPUVEC_BACKEND="numpy",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["numpy", "False"]


def test_unknown_backend_is_a_value_error_listing_choices():
    r = run_python("import gpuvec", GPUVEC_BACKEND="tpu")
    assert r.returncode != 0
    assert "ValueError" in r.stderr and "'auto', 'numpy', 'cupy'" in r.stderr and "'tpu'" in r.stderr


@pytest.mark.parametrize("value", ["", "auto", "AUTO"])
def test_auto_picks_a_backend_and_says_why(value):
    r = run_python("import gpuvec; i = gpuvec.backend_info(); print(i.name); print(i.reason)", GPUVEC_BACKEND=value)
    assert r.returncode == 0, r.stderr
    name, reason = r.stdout.strip().split("\n", 1)
    probe = _backend._probe_cupy()
    assert name == ("cupy" if probe.usable else "numpy")
    if not probe.usable:  # the reason is the probe's sentence: not installed, or the real CUDA error
        assert probe.reason in reason and "cupy" in reason


def test_explicit_cupy_never_falls_back():
    probe = _backend._probe_cupy()
    r = run_python("import gpuvec; print(gpuvec.backend_info().name)", GPUVEC_BACKEND="cupy")
    if probe.usable:
        assert r.stdout.strip() == "cupy"
    else:
        assert r.returncode != 0
        assert "BackendUnavailableError" in r.stderr and "cupy" in r.stderr and probe.reason in r.stderr


def test_require_gpu_turns_fallback_into_error():
    probe = _backend._probe_cupy()
    r = run_python("import gpuvec; print(gpuvec.backend_info().name)", GPUVEC_REQUIRE_GPU="1")
    if probe.usable:
        assert r.stdout.strip() == "cupy"
    else:
        assert r.returncode != 0 and "GPUVEC_REQUIRE_GPU" in r.stderr


def test_probe_reason_without_gpu_is_a_sentence():
    probe = _backend._probe_cupy()
    if probe.usable:
        pytest.skip("a GPU is present")
    try:
        import cupy  # noqa: F401
    except ImportError:
        assert probe.reason == "cupy is not installed"
    else:  # cupy installed, no usable device: the real CUDA error is kept
        assert probe.reason.startswith("cupy imported but no CUDA device: ")
        assert "Error" in probe.reason


def test_backend_unavailable_is_an_import_error():
    assert issubclass(gpuvec.BackendUnavailableError, ImportError)


def test_use_backend_switches_default_and_restores():
    before = gpuvec.backend_info().name
    with gpuvec.use_backend("numpy") as xp:
        assert xp is np and gpuvec.xp is np
        assert gpuvec.ndimage.__name__ == "scipy.ndimage"
        assert gpuvec.backend_info().name == "numpy"
        assert gpuvec.get_namespace([1, 2], 3.0) is np
    assert gpuvec.backend_info().name == before
    with pytest.raises(ValueError, match="'auto', 'numpy', 'cupy'"):
        with gpuvec.use_backend("tpu"):
            pass


def test_get_namespace_follows_inputs(xp):
    a = xp.zeros(3)
    assert gpuvec.get_namespace(a) is xp
    assert gpuvec.get_namespace(a, 1.0, None, [1]) is xp


def test_mixing_numpy_and_cupy_is_a_type_error(cp):
    with pytest.raises(TypeError, match=r"numpy\.ndarray.*cupy.*gpuvec\.asarray\(x, like=other\)"):
        gpuvec.get_namespace(np.zeros(2), cp.zeros(2))


def test_cupy_like_object_is_recognised_without_importing_cupy():
    fake_type = type("ndarray", (), {"__module__": "cupy._core.core"})
    assert _backend._is_cupy_array(fake_type())
    assert not _backend._is_cupy_array(np.zeros(1))


def test_asarray_to_numpy_roundtrip(xp):
    x = gpuvec.asarray([1.0, 2.0], like=xp.zeros(1))
    assert type(x).__module__.split(".")[0] == xp.__name__
    back = gpuvec.to_numpy(x)
    assert isinstance(back, np.ndarray) and back.tolist() == [1.0, 2.0]
    assert gpuvec.asarray([1, 2], dtype=np.float32, like=xp.zeros(1)).dtype == np.float32
    gpuvec.sync()


def test_backend_info_fields():
    info = gpuvec.backend_info()
    assert info.name in ("numpy", "cupy") and info.reason
    assert {"gpuvec", "numpy", "scipy"} <= set(info.versions)
    if info.name == "cupy":
        assert info.device and info.device_memory > 0
    text = str(info)
    assert f"backend: {info.name}" in text and info.reason in text


def test_public_names_sorted_and_present():
    assert gpuvec.__all__ == sorted(gpuvec.__all__)
    for name in gpuvec.__all__:
        assert getattr(gpuvec, name) is not None


def test_cupy_imports_only_in_backend_and_kernels():
    import pathlib
    import re

    pkg = pathlib.Path(gpuvec.__file__).parent
    strays = [
        p.name
        for p in pkg.glob("*.py")
        if p.name not in {"_backend.py", "_kernels.py"}
        and re.search(r"^\s*(import cupy|from cupy|import cupyx|from cupyx)", p.read_text(), re.M)
    ]
    assert strays == []
