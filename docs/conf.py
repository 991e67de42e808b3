"""Sphinx configuration of refq's documentation site.

Sphinx with the PyData theme, as NumPy and SciPy build theirs, and MyST so the pages stay
Markdown that reads well on GitHub too. Build (warnings are errors, as in CI):

    python -m pip install -e ".[docs]"
    python -m sphinx -W --keep-going -b html docs docs/_build/html
"""

from __future__ import annotations

project = "refq"
author = "the refq authors"
copyright = "2026, the refq authors"  # noqa: A001  (Sphinx's name)

extensions = ["myst_parser"]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "README.md"]
myst_enable_extensions = ["dollarmath", "colon_fence"]
myst_heading_anchors = 3
# links to repository files (tools/, tests/, golden/) from the pages are plain links on
# GitHub; the site shows them as text
suppress_warnings: list[str] = []

html_theme = "pydata_sphinx_theme"
html_title = "refq"
html_theme_options = {
    "navigation_depth": 3,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_static_path: list[str] = []
