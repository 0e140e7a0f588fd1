"""The documentation: the Sphinx site builds without warnings, the API page
covers the public API, and every ``>>>`` example on the pages runs.

The pages' examples are executed with the standard library's :mod:`doctest`
on the ``.rst`` sources (one test per page), so they run even where Sphinx is
not installed; only the HTML build needs Sphinx (the ``docs`` extra).
"""

from __future__ import annotations

import doctest
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

import attngan

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
EXAMPLE = ROOT / "examples" / "morph_aging"
PAGES = sorted(DOCS.glob("*.rst"))
# Pages whose examples are part of what they teach: they must keep having some.
PAGES_WITH_EXAMPLES = {"quickstart.rst", "acgan_guide.rst", "synthetic_faces.rst"}
OPTIONFLAGS = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
MAX_STATIC_BYTES = 300 * 1024
BUILD_TIMEOUT_S = 600


def run_page_examples(path: Path) -> "tuple[doctest.TestResults, str]":
    """Run the ``>>>`` examples of one page in a fresh namespace; return the
    results and the failure report."""
    text = path.read_text(encoding="utf-8")
    test = doctest.DocTestParser().get_doctest(text, {"__name__": path.stem}, path.name, str(path), 0)
    report: list = []
    runner = doctest.DocTestRunner(optionflags=OPTIONFLAGS)
    runner.run(test, out=report.append)
    return runner.summarize(verbose=False), "".join(report)


@pytest.fixture
def example_on_path(monkeypatch, tmp_path):
    """The example's modules importable by bare name; files land in tmp_path."""
    monkeypatch.syspath_prepend(str(EXAMPLE))
    monkeypatch.chdir(tmp_path)


def test_pages_exist():
    names = {p.name for p in PAGES}
    expected = {"index.rst", "quickstart.rst", "api.rst", "acgan_guide.rst", "synthetic_faces.rst",
                "example_api.rst", "results.rst", "benchmarks.rst"}
    assert expected <= names, f"missing pages: {sorted(expected - names)}"
    assert (DOCS / "conf.py").is_file()


@pytest.mark.parametrize("page", PAGES, ids=[p.name for p in PAGES])
def test_page_examples_run(page, example_on_path):
    results, report = run_page_examples(page)
    assert results.failed == 0, f"{results.failed} failing example(s) in docs/{page.name}:\n{report}"
    if page.name in PAGES_WITH_EXAMPLES:
        assert results.attempted > 0, f"docs/{page.name} lost its >>> examples"


def test_failing_example_is_reported(tmp_path):
    # The runner above must fail on a wrong example, not silently skip it.
    page = tmp_path / "bad.rst"
    page.write_text("Title\n=====\n\n>>> 1 + 1\n3\n", encoding="utf-8")
    results, report = run_page_examples(page)
    assert (results.failed, results.attempted) == (1, 1)
    assert "Expected:" in report and "3" in report


def _extras_in_pyproject() -> dict:
    try:
        import tomllib
    except ImportError:  # Python < 3.11
        tomllib = pytest.importorskip("tomli")
    with open(ROOT / "pyproject.toml", "rb") as fh:
        extras = tomllib.load(fh)["project"]["optional-dependencies"]
    return {name: {re.split(r"[<>=!~;\[ ]", spec)[0] for spec in specs} for name, specs in extras.items()}


def _names(cell: str) -> set:
    return {" ".join(name.split()) for name in cell.split(",") if name.strip()}


def test_the_extras_table_lists_the_extras_as_pyproject_declares_them():
    """docs/index.rst holds the one table of extras; the README names each
    extra and points there."""
    extras = _extras_in_pyproject()
    index = (DOCS / "index.rst").read_text(encoding="utf-8")
    in_index = {m.group(1): _names(m.group(2)) for m in
                re.finditer(r"\* - ``(\w+)``\s*\n\s*- (.*?)\n\s*- ", index, re.S)}
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/index.rst" in readme
    assert not re.search(r"^\| extra \|", readme, re.M), "the README repeats the table of extras"
    for name, packages in extras.items():
        assert in_index.get(name) == packages, f"docs/index.rst's row of the {name!r} extra"
        assert f"`{name}`" in readme, f"the README does not name the {name!r} extra"


def test_one_docs_build_command():
    pattern = r"sphinx-build [^`\n]*_build/html"
    commands = {path.name: set(re.findall(pattern, path.read_text(encoding="utf-8")))
                for path in (ROOT / "README.md", DOCS / "index.rst", DOCS / "conf.py")}
    assert all(commands.values()), commands
    assert len(set().union(*commands.values())) == 1, commands


def test_static_images_are_small():
    images = sorted((DOCS / "_static").glob("*.png"))
    assert {"method_illustration.png", "synthetic_faces.png"} <= {p.name for p in images}
    too_big = [f"{p.name}: {p.stat().st_size // 1024} KB" for p in images if p.stat().st_size > MAX_STATIC_BYTES]
    assert not too_big, f"committed doc images must stay under 300 KB: {too_big}"


@pytest.mark.slow
def test_sphinx_html_build_has_no_warnings(tmp_path):
    if importlib.util.find_spec("sphinx") is None:
        pytest.skip("Sphinx is not installed (pip install -e '.[docs]'); the HTML build is not checked")
    out = tmp_path / "html"
    cmd = [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
           "-d", str(tmp_path / "doctrees"), str(DOCS), str(out)]
    proc = subprocess.run(cmd, cwd=str(ROOT), capture_output=True, text=True, timeout=BUILD_TIMEOUT_S,
                          env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"})
    assert proc.returncode == 0, (
        f"sphinx-build -W failed with exit code {proc.returncode}:\n{proc.stderr[-6000:]}\n{proc.stdout[-2000:]}"
    )
    for page in ("index", "quickstart", "api", "acgan_guide", "synthetic_faces", "results", "benchmarks"):
        assert (out / f"{page}.html").is_file(), f"{page}.html was not built"

    api = (out / "api.html").read_text(encoding="utf-8")
    # every public name has its own entry (an anchor), not just a mention
    missing = [name for name in attngan.__all__ if f'id="attngan.{name}"' not in api]
    assert not missing, f"api.html documents no entry for {missing}"
    # equations are passed to MathJax, not left as reST
    assert ":math:" not in api and r"\odot" in api
    # ... and MathJax is part of the site (sphinx-mathjax-offline): they render without network access
    scripts = re.findall(r'<script[^>]*src="([^"]*mathjax[^"]*)"', api)
    assert scripts and not [s for s in scripts if s.startswith(("http:", "https:", "//"))], scripts
    assert all((out / s).is_file() for s in scripts), scripts
    assert (out / "_static" / "mathjax" / "output" / "chtml" / "fonts" / "woff-v2").is_dir()

    index = (out / "index.html").read_text(encoding="utf-8")
    assert "method_illustration.png" in index and "not the output of a trained model" in index
    assert re.search(r"--attention-form", (out / "acgan_guide.html").read_text(encoding="utf-8"))
