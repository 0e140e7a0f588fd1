"""The example's layout: scripts are leaves, and each job has one definition."""

from __future__ import annotations

import argparse
import ast
import dataclasses
from pathlib import Path

import pytest

import config

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "morph_aging"
SCRIPTS = {"train", "evaluate", "evaluate_photos", "age", "ablation", "export", "prepare"}


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


def test_every_field_has_one_group_and_a_flag():
    fields = dataclasses.fields(config.TrainConfig)
    assert all(f.metadata["group"] in config.FIELD_GROUPS and f.metadata["help"] for f in fields)
    assert sorted(sum((config.fields_in(g) for g in config.FIELD_GROUPS), ())) == sorted(f.name for f in fields)
    assert config.MODEL_FIELDS == ("image_size", "g_channels", "g_res_blocks", "g_downsamples", "g_upsample",
                                   "g_condition", "g_padding", "d_channels", "d_max_channels", "generator_mode")
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
