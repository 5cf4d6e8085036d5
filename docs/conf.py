"""Sphinx configuration for gpuvec's documentation.

Build (from the repository root)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The API reference is generated from the docstrings (autosummary + numpydoc,
with numpydoc's validation on, so a docstring that lacks a required section
fails the build); the gallery scripts in ``examples/gallery`` run on the CPU
at build time (sphinx-gallery).
"""

from __future__ import annotations

import importlib
import inspect
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document the checkout, also without an editable install

# The gallery and the doctest-like examples run on the CPU, whatever the build machine has:
# the docs show numpy results and build the same in CI with or without a GPU.
os.environ["GPUVEC_BACKEND"] = "numpy"
os.environ.pop("GPUVEC_REQUIRE_GPU", None)
# The numpy reference loops instead of numba's: bit-identical results, and no numba compilation in
# a fresh CI checkout (cold, the ray picture took 13 s compiling against 3 s without; warm caches
# make no difference). GPUVEC_JIT=auto python -m sphinx ... builds with them.
os.environ.setdefault("GPUVEC_JIT", "0")

import gpuvec  # noqa: E402 (after the environment above)

project = "gpuvec"
author = "the gpuvec developers"
copyright = "2026, the gpuvec developers"
release = gpuvec.__version__
version = ".".join(release.split(".")[:2])

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

templates_path = ["_templates"]
exclude_patterns = [
    "_build",
    "**.ipynb_checkpoints",
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
]
default_role = "py:obj"  # `name` in a docstring links to the object
nitpicky = False

# --------------------------------------------------------------------------- autodoc / autosummary

autosummary_generate = True
autosummary_imported_members = False
autodoc_typehints = "none"  # the numpydoc type lines say it (shapes and choices); signatures stay short
autodoc_member_order = "bysource"


def _skip_record_fields(app, what, name, obj, skip, options):
    """Skip the per-field accessors of NamedTuples and dataclasses.

    The class docstring's Attributes section documents those fields; their
    generated docstrings ("Alias for field number 0") are not numpydoc.
    """
    doc = getattr(obj, "__doc__", None) or ""
    if what == "class" and doc.startswith("Alias for field number"):
        return True
    if what == "class" and name in ("count", "index"):  # tuple's own methods on NamedTuples
        return True
    return skip


# --------------------------------------------------------------------------- numpydoc

numpydoc_show_class_members = False  # the class template lists the members (autosummary)
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False
# Validation: every check, minus the ones that are about prose style rather than a missing or
# wrong section. A docstring without its Parameters / Returns / Raises entries, with parameters
# out of step with the signature, sections out of order, or no summary fails the build (-W).
numpydoc_validation_checks = {
    "all",
    "GL01",  # the summary on the line of the opening quotes (PEP 257) is fine; numpydoc < 1.8 flags it
    "ES01",  # an extended summary is optional: many one-purpose functions need only the summary
    "SA01",  # "See Also" is optional; the user guide links related functions
    "EX01",  # Examples: required on every public *function* by tests/test_docs.py (and run as
    #          doctests by pytest); methods, result records and constants are shown in their class's
    #          example, the user guide and the gallery (as scikit-learn's own method docstrings)
    "RT02",  # numpydoc's format guide allows naming a single return value (`best : array`), as
    #          numpy and scipy do; naming it is how these docstrings refer to outputs in the Notes
    "PR08",  # descriptions may start with a library name in lower case ("numpy or cupy array ...")
    "PR09",  # punctuation at the end of a description is style
    "RT04",  # (as PR08, for Returns)
    "RT05",  # (as PR09, for Returns)
}
# Result records (NamedTuple / dataclass) are returned by gpuvec, not built by users: their
# fields are documented under "Attributes", and numpydoc would ask for them again as Parameters.
# tests/test_docs.py validates them with every other check of this set.
numpydoc_validation_exclude = {r"\.(BackendInfo|RotationResiduals|MixtureParams|SufficientStats|EMResult)$"}

# --------------------------------------------------------------------------- sphinx-gallery

sphinx_gallery_conf = {
    "examples_dirs": [str(ROOT / "examples" / "gallery")],
    "gallery_dirs": ["auto_examples"],
    "filename_pattern": r"/plot_",  # every plot_*.py runs at build time (on the CPU)
    "download_all_examples": False,
    "remove_config_comments": True,
    "matplotlib_animations": False,
    "within_subsection_order": "FileNameSortKey",
    "min_reported_time": 1,
    "show_memory": False,
    "plot_gallery": "True",
    "abort_on_example_error": True,
}

# --------------------------------------------------------------------------- html

html_theme = "pydata_sphinx_theme"
html_title = f"gpuvec {release}"
html_static_path: list[str] = []
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_context = {"default_mode": "light"}
html_show_sourcelink = False

# intersphinx is off by default (CI may have no network): GPUVEC_DOCS_INTERSPHINX=1 turns it on.
intersphinx_mapping = (
    {
        "python": ("https://docs.python.org/3", None),
        "numpy": ("https://numpy.org/doc/stable", None),
        "scipy": ("https://docs.scipy.org/doc/scipy", None),
        "sklearn": ("https://scikit-learn.org/stable", None),
        "cupy": ("https://docs.cupy.dev/en/stable", None),
        "dask": ("https://docs.dask.org/en/stable", None),
    }
    if os.environ.get("GPUVEC_DOCS_INTERSPHINX") == "1"
    else {}
)


# Each algorithm's implementation table lives in one place, the docstring of its dispatcher (the
# function or module that chooses), and the user guide includes it from there, generated at build
# time (``user_guide/<name>``, ignored by git), so the two cannot drift apart.
IMPL_TABLES = {
    "rays_impl_table.inc": ("gpuvec.rays._dispatch", "select"),
    "rotations_impl_table.inc": ("gpuvec.rotations._dispatch", None),
    "rotations_nearest_impl_table.inc": ("gpuvec.rotations._dispatch", "nearest"),
    "mixture_impl_table.inc": ("gpuvec.mixture._dispatch", None),
}


def impl_table(doc: str, where: str) -> list[str]:
    """The one simple reST table of a dispatcher's docstring, as the lines of a ``list-table``.

    A line whose first column is empty continues the row above (reST's rule), and so does a line
    whose later columns are empty (the first column running over two lines).
    """
    lines = inspect.cleandoc(doc).splitlines()
    rules = [i for i, line in enumerate(lines) if line.startswith("====")]
    if len(rules) != 3:
        msg = f"{where}'s docstring no longer holds one simple table: update IMPL_TABLES in docs/conf.py"
        raise RuntimeError(msg)
    border = lines[rules[0]]
    spans, start = [], 0
    for i, ch in enumerate(border + " "):
        if ch == " " and (i == 0 or border[i - 1] == "="):
            spans.append((start, i))
        elif ch == "=" and (i == 0 or border[i - 1] == " "):
            start = i

    def cells(line):
        starts = [a for a, _ in spans] + [None]  # up to the next column (text may run into the gap)
        return [line[starts[k] : starts[k + 1]].strip() for k in range(len(spans))]

    header = cells(lines[rules[0] + 1])
    rows: list[list[str]] = []
    for line in lines[rules[1] + 1 : rules[2]]:
        row = cells(line)
        if rows and (not row[0] or not any(row[1:])):
            rows[-1] = [f"{a} {b}".strip() for a, b in zip(rows[-1], row)]
        else:
            rows.append(row)
    widths = " ".join(str(b - a) for a, b in spans)
    out = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        out += [f"   * - {row[0]}"] + [f"     - {c}" for c in row[1:]]
    return out


def _write_impl_tables(app):
    """Write every table of :data:`IMPL_TABLES` next to the user guide page that includes it."""
    for name, (module, attr) in IMPL_TABLES.items():
        obj = importlib.import_module(module)
        obj = getattr(obj, attr) if attr else obj
        where = f"{module}.{attr}" if attr else module
        lines = impl_table(obj.__doc__ or "", where)
        Path(app.srcdir, "user_guide", name).write_text("\n".join(lines) + "\n")


def setup(app):
    app.connect("autodoc-skip-member", _skip_record_fields)
    app.connect("builder-inited", _write_impl_tables)
