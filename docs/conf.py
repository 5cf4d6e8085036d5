"""Sphinx configuration for gpuvec's documentation.

Build (from the repository root)::

    python -m sphinx -W --keep-going -b html docs docs/_build/html

The API reference is generated from the docstrings (autosummary + numpydoc,
with numpydoc's validation on, so a docstring that lacks a required section
fails the build); the gallery scripts in ``examples/gallery`` run on the CPU
at build time (sphinx-gallery).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # document the checkout, also without an editable install

# The gallery and the doctest-like examples run on the CPU, whatever the build machine has:
# the docs show numpy results and build the same in CI with or without a GPU.
os.environ["GPUVEC_BACKEND"] = "numpy"
os.environ.pop("GPUVEC_REQUIRE_GPU", None)

import gpuvec  # noqa: E402

project = "gpuvec"
author = "the gpuvec developers"
copyright = "2026, the gpuvec developers"  # noqa: A001 (Sphinx's name)
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
exclude_patterns = ["_build", "**.ipynb_checkpoints", "auto_examples/*.ipynb", "auto_examples/*.py", "auto_examples/*.zip"]
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


def setup(app):
    app.connect("autodoc-skip-member", _skip_record_fields)
