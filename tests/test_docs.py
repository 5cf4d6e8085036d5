"""The documentation's contracts, checked without building it (the build itself runs in CI).

- every public name is in the API reference (docs/api/index.rst);
- every public name's docstring passes numpydoc validation with the checks docs/conf.py sets
  (the record types, whose fields are Attributes, without PR01; see the comment there);
- every public function has an Examples section (they run as doctests).
"""

from __future__ import annotations

import ast
import inspect
import re
from pathlib import Path

import pytest

import gpuvec
import gpuvec.mixture
import gpuvec.random
import gpuvec.rotations

DOCS = Path(__file__).resolve().parents[1] / "docs"
MODULES = {
    "gpuvec": gpuvec,
    "gpuvec.mixture": gpuvec.mixture,
    "gpuvec.rotations": gpuvec.rotations,
    "gpuvec.random": gpuvec.random,
}
RECORDS = {"BackendInfo", "RotationResiduals", "MixtureParams", "SufficientStats", "EMResult"}


def _public_names():
    """(module name, name, object) for every name in the public modules' __all__."""
    for module_name, module in MODULES.items():
        for name in module.__all__:
            yield module_name, name, getattr(module, name)


def _documented_objects():
    """(fully qualified name, object, whether it is a method) for the public functions, classes and methods."""
    for module_name, name, obj in _public_names():
        if inspect.isfunction(obj) or inspect.isclass(obj):
            yield f"{module_name}.{name}", obj, False
            if inspect.isclass(obj) and name not in RECORDS:
                for attr, value in vars(obj).items():
                    if not attr.startswith("_") and (inspect.isfunction(value) or isinstance(value, property)):
                        yield f"{module_name}.{name}.{attr}", value, True


def _conf_checks() -> set[str]:
    """numpydoc_validation_checks as docs/conf.py sets it (read, not imported: conf.py sets env vars)."""
    tree = ast.parse((DOCS / "conf.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            getattr(t, "id", None) == "numpydoc_validation_checks" for t in node.targets
        ):
            return set(ast.literal_eval(node.value))
    raise AssertionError("docs/conf.py sets no numpydoc_validation_checks")


def test_every_public_name_is_in_the_api_reference():
    text = (DOCS / "api" / "index.rst").read_text()
    current, listed = "gpuvec", []
    for line in text.splitlines():
        if m := re.match(r"\.\. currentmodule:: (\S+)", line):
            current = m.group(1)
        elif m := re.match(r"(?:   |\.\. data:: )([A-Za-z_]\w*)\s*$", line):
            listed.append(getattr(MODULES[current], m.group(1)))
    # by identity: gpuvec.is_rotation listed once covers gpuvec.rotations.is_rotation too
    missing = [
        f"{mod}.{name}"
        for mod, name, obj in _public_names()
        if not inspect.ismodule(obj) and not any(obj is o for o in listed)
    ]
    assert not missing, f"add these to docs/api/index.rst: {missing}"


def test_public_docstrings_pass_numpydoc_validation():
    validate = pytest.importorskip("numpydoc.validate").validate
    checks = _conf_checks()
    assert "all" in checks
    skipped = checks - {"all"}
    failures = []
    for name, _, _ in _documented_objects():
        skip = skipped | ({"PR01"} if name.rsplit(".", 1)[-1] in RECORDS else set())
        errors = [f"{code} {msg}" for code, msg in validate(name)["errors"] if code not in skip]
        if errors:
            failures.append(f"{name}: {errors}")
    for name in RECORDS:  # the records are validated too, but for PR01
        module = next(m for m, n, _ in _public_names() if n == name)
        errors = [
            f"{code} {msg}" for code, msg in validate(f"{module}.{name}")["errors"] if code not in skipped | {"PR01"}
        ]
        if errors:
            failures.append(f"{module}.{name}: {errors}")
    assert not failures, "\n".join(failures)


def test_public_functions_have_examples():
    missing = [
        name
        for name, obj, is_method in _documented_objects()
        if inspect.isfunction(obj) and not is_method and "Examples\n" not in (inspect.getdoc(obj) or "")
    ]
    assert not missing, f"public functions without an Examples section: {missing}"
