"""The typed API (PEP 561): ``py.typed`` ships, every public callable is fully annotated, and ``mypy`` with
the project's configuration (pyproject.toml's [tool.mypy]) finds nothing."""

from __future__ import annotations

import importlib.util
import inspect
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import gpuvec
from gpuvec.mixture import GaussianMixture
from gpuvec.random import Generator

PKG = pathlib.Path(gpuvec.__file__).parent
ROOT = PKG.parent


def test_py_typed_marker_ships():
    assert (PKG / "py.typed").is_file()


def _methods(cls: type) -> Iterator[tuple[str, Callable[..., Any]]]:
    """``__init__`` and the public methods a class defines itself (properties' getters too)."""
    for name, member in vars(cls).items():
        if name != "__init__" and name.startswith("_"):
            continue
        if isinstance(member, (classmethod, staticmethod)):
            member = member.__func__
        elif isinstance(member, property):
            member = member.fget
        if callable(member):
            yield f"{cls.__name__}.{name}", member


def _public_callables() -> Iterator[tuple[str, Callable[..., Any]]]:
    for name in gpuvec.__all__:
        obj = getattr(gpuvec, name)
        if inspect.isclass(obj):
            if issubclass(obj, BaseException):
                continue  # takes the builtin exception's constructor
            yield from _methods(obj)
        elif callable(obj):
            yield name, obj
    yield from _methods(Generator)
    yield from _methods(GaussianMixture)


CALLABLES = dict(_public_callables())


def test_the_api_is_collected():
    for name in ("ray_max", "use_backend", "Generator.multivariate_normal", "GaussianMixture.fit"):
        assert name in CALLABLES
    assert "GaussianMixture.__init__" in CALLABLES and "Generator.__init__" in CALLABLES


@pytest.mark.parametrize("name", sorted(CALLABLES))
def test_public_callable_is_fully_annotated(name):
    signature = inspect.signature(CALLABLES[name])
    missing = [
        p.name
        for i, p in enumerate(signature.parameters.values())
        if p.annotation is inspect.Parameter.empty and not (i == 0 and p.name in ("self", "cls"))
    ]
    assert not missing, f"{name}: parameters without an annotation: {missing}"
    assert signature.return_annotation is not inspect.Signature.empty, f"{name}: no return annotation"


def test_mypy_passes():
    if importlib.util.find_spec("mypy") is None:
        pytest.skip("mypy is not installed (pip install 'gpuvec[test]')")
    # the configuration is pyproject.toml's: the whole package, strict for the public modules
    result = subprocess.run(
        [sys.executable, "-m", "mypy"], cwd=ROOT, capture_output=True, text=True, timeout=900, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
