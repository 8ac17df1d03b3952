"""Sphinx configuration of the mbct-bayes documentation site.

Build: ``python -m sphinx -W --keep-going docs docs/_build/html`` (``tests/test_docs.py`` builds it
into a temporary folder with the same settings). The build is offline: no intersphinx, no
downloads, no notebook execution.

Choices, and why
----------------
* Theme and extensions follow PyMC, ArviZ and bambi: pydata-sphinx-theme, autodoc + numpydoc for
  the numpy-style docstrings, myst-nb for Markdown pages and notebooks.
* Notebooks are rendered **without execution** (``nb_execution_mode = "off"``). They are stored
  without outputs (diffs stay readable) and running the four takes minutes of sampling, which
  ``tests/test_notebooks.py`` already spends in the suite; the docs test must stay well under two
  minutes. So that a page is not mistaken for a run, each notebook page opens with a note saying
  it shows code and text without outputs and how to run it (``_ext/mbct_docs.py``).
* ``nitpicky = True``: every cross-reference must resolve, so a renamed function, class or CLI
  option that a page or docstring still names fails the ``-W`` build. The only references let
  through are to other projects' objects (numpy, pandas, xarray, PyMC, ...), which would need
  intersphinx and so the network; ``nitpick_ignore_regex`` below lists them by package, nothing
  of ``mbct_bayes``.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
sys.path.insert(0, str(DOCS / "_ext"))
sys.path.insert(0, str(DOCS.parent))  # document this tree, not whatever copy is installed

import mbct_bayes  # noqa: E402

project = "mbct-bayes"
author = "mbct-bayes contributors"
copyright = "mbct-bayes contributors (MIT licence)"
release = mbct_bayes.__version__
version = release

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.mathjax",
    "numpydoc",
    "myst_nb",
    "mbct_docs",
]

exclude_patterns = ["_build", "README.md", "**.ipynb_checkpoints"]
source_suffix = {".rst": "restructuredtext", ".md": "myst-nb", ".ipynb": "myst-nb"}
root_doc = "index"
# Quotes and ellipses, not dashes: "--codebook" in a help text or a guide must stay two hyphens.
smartquotes_action = "qe"

# --- cross-references ---------------------------------------------------------------------------
nitpicky = True
# Other projects' names in signatures and docstrings: resolvable only with intersphinx (network).
_EXTERNAL = (
    "numpy", "np", "pandas", "pd", "xarray", "xr", "scipy", "pymc", "pm", "pytensor", "arviz", "az",
    "arviz_base", "arviz_stats", "matplotlib", "dask", "distributed", "nutpie", "argparse", "pathlib",
    "collections", "typing", "os", "concurrent", "npt", "datetime", "enum", "threading",
)
nitpick_ignore_regex = [(r"py:.*", rf"{re.escape(name)}\..*") for name in _EXTERNAL]
# Annotations imported under TYPE_CHECKING, seen by autodoc as bare names: numpy.typing's NDArray and
# ArrayLike, matplotlib's Figure, and mbct_bayes.forecast.rules.FloatArray (= NDArray[np.float64]).
nitpick_ignore = [("py:class", name) for name in ("NDArray", "ArrayLike", "Figure", "FloatArray")]
# Private classes (``_Problem``, ``power._results.Curve``) may appear in signatures; they are not
# documented by design. Only as annotations (py:class): a docstring must not link to private names.
nitpick_ignore_regex.append((r"py:class", r"mbct_bayes(\.\w+)*\._\w+(\.\w+)*"))

# --- autodoc / numpydoc -------------------------------------------------------------------------
autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "signature"
# "short" writes `~typing.Any` inside `dict[str, ...]`, which the signature parser splits into a
# bogus `dict[str` class; fully qualified names parse, and display short where they resolve.
autodoc_typehints_format = "fully-qualified"
python_use_unqualified_type_names = True
autodoc_preserve_defaults = True
numpydoc_show_class_members = False  # members are documented by autodoc below the class
numpydoc_xref_param_type = False
# Section names and order (GL06 unknown section, GL07 wrong order) are checked: a misspelt
# "Paramters" would otherwise render as plain text. The style checks (summary length, every
# parameter listed, ...) are not enforced on this code base.
numpydoc_validation_checks = {"GL06", "GL07"}

# --- MyST / notebooks ---------------------------------------------------------------------------
nb_execution_mode = "off"  # see the module docstring: stored without outputs, run by the tests
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

# --- HTML ---------------------------------------------------------------------------------------
html_theme = "pydata_sphinx_theme"
html_title = f"mbct-bayes {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_static_path: list[str] = []
html_show_sourcelink = False
