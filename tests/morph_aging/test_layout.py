"""The example's layout: scripts are leaves, and each job has one definition."""

from __future__ import annotations

import argparse
import ast
import dataclasses
import io
import tokenize
from pathlib import Path

import pytest

import config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "morph_aging"
SCRIPTS = {"train", "evaluate", "evaluate_photos", "photo_seeds", "photo_compare", "age", "ablation", "export",
           "prepare"}


def _imports(path: Path) -> set:
    names = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


@pytest.mark.parametrize("path", sorted([*EXAMPLE.glob("*.py"), *(ROOT / "benchmarks").glob("*.py")]),
                         ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_module_imports_a_script(path):
    assert not _imports(path) & SCRIPTS, f"{path.name} imports the script(s) {sorted(_imports(path) & SCRIPTS)}"


def test_ablation_trains_and_evaluates_in_process():
    assert "subprocess" not in _imports(EXAMPLE / "ablation.py")


#: The most lines of code a function of the example may have.
MAX_FUNCTION_LINES = 120
_NOT_CODE = {tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT, tokenize.ENDMARKER}


def _function_lengths(source: str) -> dict:
    """Lines of code (not blank, not only a comment, not a docstring) of every function, by name."""
    code = set()
    for tok in tokenize.generate_tokens(io.StringIO(source).readline):
        if tok.type not in _NOT_CODE:
            code.update(range(tok.start[0], tok.end[0] + 1))
    tree = ast.parse(source)
    for node in ast.walk(tree):
        if (isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))
                and ast.get_docstring(node, clean=False) is not None):
            code -= set(range(node.body[0].lineno, node.body[0].end_lineno + 1))
    return {node.name: sum(node.lineno <= line <= node.end_lineno for line in code)
            for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))}


def test_function_lengths_count_code_only():
    source = ('def f(x):\n    """Doc.\n\n    More.\n    """\n    # a comment\n\n'
              '    y = (x +\n         1)\n    return y\n')
    assert _function_lengths(source) == {"f": 4}


@pytest.mark.parametrize("path", sorted(EXAMPLE.glob("*.py")), ids=lambda p: p.name)
def test_no_function_is_over_the_limit(path):
    long = {name: n for name, n in _function_lengths(path.read_text(encoding="utf-8")).items()
            if n > MAX_FUNCTION_LINES}
    assert not long, f"{path.name}: functions over {MAX_FUNCTION_LINES} lines of code: {long}"


def test_every_field_has_one_group_and_a_flag():
    fields = dataclasses.fields(config.TrainConfig)
    assert all(f.metadata["group"] in config.FIELD_GROUPS and f.metadata["help"] for f in fields)
    assert sorted(sum((config.fields_in(g) for g in config.FIELD_GROUPS), ())) == sorted(f.name for f in fields)
    assert config.MODEL_FIELDS == ("image_size", "g_channels", "g_res_blocks", "g_downsamples", "g_upsample",
                                   "g_condition", "g_color", "g_source", "g_padding", "d_channels", "d_max_channels",
                                   "d_fake_class", "generator_mode")
    assert set(config.RUN_FIELDS) == {"epochs", "max_steps", "max_minutes", "resume", "progress", "log_every",
                                      "sample_every", "checkpoint_every", "workers", "out", "compile", "device",
                                      "overwrite", "report_to"}
    parser = argparse.ArgumentParser()
    config.add_config_arguments(parser)
    flags = {a.dest: a for a in parser._actions if a.dest != "help"}
    assert set(flags) == {f.name for f in fields}
    assert flags["g_channels"].type is int and flags["lr"].type is float and flags["data"].type is str
    args = parser.parse_args(["--compile", "--no-progress", "--channels-last", "--g-channels", "8"])
    assert (args.compile, args.progress, args.channels_last, args.g_channels) == (True, False, True, 8)
    assert parser.parse_args([]).channels_last is None  # the preset decides
    assert parser.parse_args(["--no-channels-last"]).channels_last is False


def test_benchmarks_take_their_config_flags_from_the_config():
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import common
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    assert set(config.MODEL_FIELDS) <= set(common.CONFIG_FLAGS)
    parser = argparse.ArgumentParser()
    common.add_common_args(parser, batch_help="faces per call")
    args = parser.parse_args(["--d-max-channels", "64", "--g-upsample", "nearest", "--device", "cpu"])
    cfg = common.build_config(parser, args)
    assert (cfg.d_max_channels, cfg.g_upsample, cfg.data) == (64, "nearest", "random-tensors")
