"""The backend shim's rules: how the default is chosen, use_backend, GPUVEC_REQUIRE_GPU, backend_info.

Which namespace an input belongs to: test_namespace.py."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import gpuvec
from gpuvec._core import backend


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


def test_unknown_backend_is_a_value_error_at_first_use_not_at_import():
    r = run_python(
        """
        import gpuvec
        uses = (gpuvec.backend_info, lambda: gpuvec.xp, lambda: gpuvec.asarray([1.0]),
                lambda: gpuvec.is_rotation([[1.0]]))
        for use in uses:
            try:
                use()
            except ValueError as exc:
                print(exc)
        """,
        GPUVEC_BACKEND="tpu",
    )
    assert r.returncode == 0, r.stderr  # import gpuvec itself succeeds
    lines = r.stdout.strip().splitlines()
    assert len(lines) == 4  # every use of the default raises again: the error is not cached
    for line in lines:
        assert (
            "GPUVEC_BACKEND must be one of 'auto', 'numpy', 'cupy'" in line and "'tpu'" in line and "unset it" in line
        )


def test_bad_backend_setting_does_not_block_an_explicit_use_backend():
    r = run_python(
        """
        import gpuvec
        with gpuvec.use_backend("numpy") as xp:
            print(xp.__name__, gpuvec.backend_info().name, type(gpuvec.asarray([1.0])).__module__)
        """,
        GPUVEC_BACKEND="tpu",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["numpy", "numpy", "numpy"]


def test_default_is_read_at_first_use_and_errors_are_not_cached(monkeypatch):
    default = backend._DefaultBackend()
    monkeypatch.setenv("GPUVEC_BACKEND", "tpu")
    with pytest.raises(ValueError, match="GPUVEC_BACKEND must be one of"):
        default.get()
    monkeypatch.setenv("GPUVEC_BACKEND", " NumPy ")  # blanks and case do not matter
    assert default.get().name == "numpy"
    assert default.get().reason == "GPUVEC_BACKEND=' NumPy ' asks for numpy"
    monkeypatch.setenv("GPUVEC_BACKEND", "tpu")  # resolved once: later changes do not switch it
    assert default.get().name == "numpy"


def test_explicit_cupy_never_falls_back():
    probe = backend._probe_cupy()
    code = """
        import gpuvec, numpy as np
        print(gpuvec.is_rotation(np.eye(3)))  # arrays never need the default: they run where they live
        print(gpuvec.backend_info().name)
        """
    r = run_python(code, GPUVEC_BACKEND="cupy")
    if probe.usable:
        assert r.stdout.split() == ["True", "cupy"]
    else:
        assert r.returncode != 0 and r.stdout.split() == ["True"]
        assert "BackendUnavailableError" in r.stderr and "cupy" in r.stderr and probe.reason in r.stderr
        assert "unset GPUVEC_BACKEND" in r.stderr


@pytest.mark.parametrize("value", ["1", "true", "YES", "on"])
def test_require_gpu_turns_fallback_into_error(value):
    probe = backend._probe_cupy()
    r = run_python("import gpuvec; print(gpuvec.backend_info().name)", GPUVEC_REQUIRE_GPU=value)
    if probe.usable:
        assert r.stdout.strip() == "cupy"
    else:
        assert r.returncode != 0 and "GPUVEC_REQUIRE_GPU=1 forbids falling back" in r.stderr
        assert "BackendUnavailableError" in r.stderr and probe.reason in r.stderr


@pytest.mark.parametrize("value", ["", "0", "false", "No", "off"])
def test_require_gpu_off_values(monkeypatch, value):
    monkeypatch.setenv("GPUVEC_REQUIRE_GPU", value)
    assert backend._require_gpu() is False


@pytest.mark.parametrize("value", ["2", "maybe", "required"])
def test_require_gpu_unknown_value_is_a_value_error(monkeypatch, value):
    monkeypatch.setenv("GPUVEC_REQUIRE_GPU", value)
    with pytest.raises(ValueError, match=rf"GPUVEC_REQUIRE_GPU must be one of 1, true, yes, on .*got '{value}'"):
        backend._require_gpu()
    with pytest.raises(ValueError, match="GPUVEC_REQUIRE_GPU"):
        gpuvec.use_backend("auto")


def test_require_gpu_does_not_stop_an_explicit_numpy(monkeypatch):
    monkeypatch.setenv("GPUVEC_REQUIRE_GPU", "1")
    with gpuvec.use_backend("numpy") as xp:
        assert xp is np


def test_probe_reason_without_gpu_is_a_sentence():
    probe = backend._probe_cupy()
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
        assert gpuvec.backend_info().reason == "use_backend('numpy') asks for numpy"
        assert gpuvec.get_namespace([1, 2], 3.0) is np
    assert gpuvec.backend_info().name == before


def test_use_backend_restores_after_an_error_in_the_block():
    before = gpuvec.backend_info()
    with pytest.raises(KeyError), gpuvec.use_backend("numpy"):
        raise KeyError("inside")
    assert gpuvec.backend_info() == before


@pytest.mark.parametrize("name", [" NumPy", "NUMPY", "numpy "])
def test_use_backend_name_ignores_case_and_blanks(name):
    with gpuvec.use_backend(name) as xp:
        assert xp is np


@pytest.mark.parametrize("name", ["tpu", "numpy,cupy", "np", "cuda"])
def test_use_backend_unknown_name_is_a_value_error(name):
    with pytest.raises(ValueError, match=rf"name must be one of 'auto', 'numpy', 'cupy' .*got '{name}'"):
        gpuvec.use_backend(name)  # raised by the call itself, before any with


@pytest.mark.parametrize("name", [None, 0, 1.5, b"numpy", ["numpy"], np])
def test_use_backend_non_str_name_is_a_type_error(name):
    with pytest.raises(TypeError, match=r"name must be a str, one of 'auto', 'numpy', 'cupy'; got .* of type"):
        gpuvec.use_backend(name)
    with pytest.raises(TypeError, match="name must be a str"), gpuvec.use_backend(name):
        pass


def test_use_backend_cupy_without_gpu_raises_at_the_call():
    probe = backend._probe_cupy()
    if probe.usable:
        pytest.skip("a GPU is present")
    with pytest.raises(
        gpuvec.BackendUnavailableError, match=r"use_backend\('cupy'\) asks for cupy, but .*use 'auto' or 'numpy'"
    ):
        gpuvec.use_backend("cupy")


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


def test_cupy_imports_only_in_backend_and_cuda_kernel_modules():
    """cupy is imported by _core/backend.py and by each algorithm's CUDA kernels (``_cuda.py``, on the cupy path)."""
    import pathlib
    import re

    pkg = pathlib.Path(gpuvec.__file__).parent
    modules = sorted(pkg.rglob("*.py"))
    assert len(modules) > 20 and pkg / "rays" / "_cuda.py" in modules  # the search sees every subpackage
    strays = [
        str(p.relative_to(pkg))
        for p in modules
        if p != pkg / "_core" / "backend.py"
        and p.name != "_cuda.py"
        and re.search(r"^\s*(import cupy|from cupy|import cupyx|from cupyx)", p.read_text(), re.M)
    ]
    assert strays == []
