"""Sphinx configuration of the attngan documentation.

Build with ``sphinx-build -W --keep-going -b html docs docs/_build/html``
(``pip install -e ".[docs]"``). The pages' ``>>>`` examples are executed by
``tests/test_docs.py``.
"""

from __future__ import annotations

import importlib
import os
import sys

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective

DOCS = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(DOCS)
EXAMPLE = os.path.join(ROOT, "examples", "morph_aging")

# The library from this checkout (also when it is not pip-installed), and the
# AcGAN example's modules (``config``, ``models``, ``step``, ``checkpoints``, ...),
# which import each other by their bare names.
for path in (EXAMPLE, ROOT):
    if path not in sys.path:
        sys.path.insert(0, path)

import attngan  # noqa: E402

# -- project -----------------------------------------------------------------

project = "attngan"
author = "the attngan authors"
copyright = "the attngan authors"
version = release = attngan.__version__

# -- general -----------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    # MathJax itself, copied into _static/mathjax: the equations render without network access
    # (the PyPI package sphinx-mathjax-offline, in the docs and test extras)
    "sphinx-mathjax-offline",
    "sphinx.ext.viewcode",
]
exclude_patterns = ["_build"]
templates_path: list = []
root_doc = "index"
language = "en"
pygments_style = "sphinx"

# -- autodoc / napoleon ------------------------------------------------------

autodoc_typehints = "description"
autodoc_typehints_description_target = "documented"
autodoc_member_order = "bysource"
# torch's own modules have long docstrings that say nothing about ours.
autodoc_inherit_docstrings = False

napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = True
napoleon_use_ivar = False
# The library documents tensor layouts in a "Shape" section (kornia style).
napoleon_custom_sections = ["Shape"]

# -- HTML --------------------------------------------------------------------

html_theme = "alabaster"
html_static_path = ["_static"]
html_title = f"attngan {release}"
html_theme_options = {
    "description": "Composable attention-GAN building blocks for PyTorch",
    "page_width": "1100px",
    "sidebar_width": "220px",
    "fixed_sidebar": False,
}
html_show_sourcelink = False


# -- ``.. program-help::``: a script's --help, rendered at build time --------


class ProgramHelp(SphinxDirective):
    """Insert the ``--help`` text of an example script's argparse parser.

    The argument names a module importable from the example folder that has
    a ``build_parser()`` function; the text is formatted 80 columns wide,
    whatever the terminal, so the page is the same on every machine.
    """

    required_arguments = 1
    has_content = False

    def run(self) -> list:
        module = importlib.import_module(self.arguments[0])
        parser = module.build_parser()
        formatter = parser.formatter_class
        parser.formatter_class = lambda prog: formatter(prog, width=80)
        text = parser.format_help()
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


class PresetTable(SphinxDirective):
    """A table of the values each ``train.py`` preset gives, from ``config.PRESET_VALUES``."""

    has_content = False

    def run(self) -> list:
        import config

        presets = config.PRESET_VALUES
        names = list(presets)
        keys = []
        for values in presets.values():
            keys += [k for k in values if k not in keys]
        lines = [".. list-table::", "   :header-rows: 1", ""]
        lines.append("   * - flag")
        lines += [f"     - ``{name}``" for name in names]
        for key in keys:
            lines.append(f"   * - ``--{key.replace('_', '-')}``")
            for name in names:
                value = presets[name].get(key)
                lines.append(f"     - {'not set' if value is None else value}")
        container = nodes.container()
        self.state.nested_parse(StringList(lines, source="config.PRESET_VALUES"), self.content_offset, container)
        return container.children


_DATA_DOCSTRINGS: dict = {}


def _stash_data_docstring(app, what, name, obj, options, lines) -> None:
    """Before napoleon: remember the docstring of module data and attributes."""
    if what in ("data", "attribute"):
        _DATA_DOCSTRINGS[name] = list(lines)


def _restore_data_docstring(app, what, name, obj, options, lines) -> None:
    """After napoleon: put the remembered docstring back.

    For data and attributes napoleon reads everything before the first colon
    of the first line as a type; the examples' ``#: Label: text`` comments use
    that colon as prose, which would render as "Type: Label". Such short
    docstrings are plain reST, so they are shown as written.
    """
    if what in ("data", "attribute") and name in _DATA_DOCSTRINGS:
        lines[:] = _DATA_DOCSTRINGS.pop(name)


def setup(app) -> dict:
    app.add_directive("program-help", ProgramHelp)
    app.add_directive("acgan-presets", PresetTable)
    # around sphinx.ext.napoleon's handler (priority 500)
    app.connect("autodoc-process-docstring", _stash_data_docstring, priority=400)
    app.connect("autodoc-process-docstring", _restore_data_docstring, priority=600)
    return {"parallel_read_safe": True}
