"""What the scripts say: --help text, the one boolean-flag style, install hints."""

from __future__ import annotations

import argparse
import re
import sys

import pytest

import age
import cli
import config
import evaluate
import train

# appended, not put first: benchmarks/ has scripts named like the example's modules
# (synthetic_faces.py), and the example's must win for the test modules collected later
sys.path.append(str(__import__("pathlib").Path(train.__file__).resolve().parents[2] / "benchmarks"))
import common  # noqa: E402


def help_text(parser: argparse.ArgumentParser) -> str:
    formatter = parser.formatter_class
    parser.formatter_class = lambda prog: formatter(prog, width=100)
    return parser.format_help()


def options(text: str) -> dict:
    """``--flag`` -> its help paragraph (white space folded)."""
    out, current = {}, None
    for line in text.splitlines():
        m = re.match(r"  (--[a-z0-9-]+)", line)
        if m:
            current = m.group(1)
            out[current] = line
        elif current and line.startswith("    "):
            out[current] += " " + line.strip()
        else:
            current = None
    return {k: " ".join(v.split()) for k, v in out.items()}


def test_train_help_shows_preset_values_and_each_default_once():
    text = help_text(train.build_parser())
    assert "(default: None)" not in text
    flags = options(text)
    for flag, paragraph in flags.items():
        assert paragraph.count("(default") <= 1, paragraph
    # every flag whose default comes from the preset says what each preset gives
    for name in {k for values in config.PRESET_VALUES.values() for k in values}:
        flag = "--" + name.replace("_", "-")
        assert flag in flags, flag
        assert "(default: " in flags[flag] and ("cpu-demo" in flags[flag] or "every preset" in flags[flag]), \
            flags[flag]
    # lines never break inside a hyphenated word ("cpu-" / "photo")
    assert not re.search(r"\w-$", text, re.MULTILINE), text
    assert "(default: paper 224, cpu-demo 64, cpu-photo 64)" in flags["--image-size"]
    assert "(default: on in every preset)" in flags["--channels-last"]
    assert "--no-progress" in flags["--progress"] and "show a progress bar (default: on)" in flags["--progress"]
    assert "(default: paper 0.0001, cpu-demo 0.0001, cpu-photo 0.0002)" in flags["--lr"]
    assert "(default: 0.5)" in flags["--beta1"]


def test_max_minutes_is_documented_per_invocation():
    paragraph = " ".join(help_text(train.build_parser()).split())
    assert "each run of train.py" in paragraph


@pytest.mark.parametrize("parser", [train.build_parser, age.build_parser, evaluate.build_parser],
                         ids=["train", "age", "evaluate"])
def test_no_doubled_defaults_anywhere(parser):
    text = help_text(parser())
    assert "(default: None)" not in text
    for paragraph in options(text).values():
        assert paragraph.count("(default") <= 1, paragraph


def test_benchmark_help_has_no_doubled_defaults():
    parser = argparse.ArgumentParser(formatter_class=cli.HelpFormatter)
    common.add_common_args(parser, batch_help="images per iteration (default: the preset's)")
    text = help_text(parser)
    assert "(default: None)" not in text
    for paragraph in options(text).values():
        assert paragraph.count("(default") <= 1, paragraph


def test_a_bare_boolean_flag_never_swallows_the_next_argument():
    args = age.build_parser().parse_args(["--checkpoint", "c.pt", "--out", "o", "--masks", "photo.jpg"])
    assert args.masks is True and args.images == ["photo.jpg"]
    args = age.build_parser().parse_args(["--checkpoint", "c.pt", "--masks", "false", "--out", "o"])
    assert args.masks is True and args.images == ["false"]  # a photo named "false"
    args = age.build_parser().parse_args(["--checkpoint", "c.pt", "--no-masks", "a.png", "--out", "o"])
    assert args.masks is False


def test_a_value_attached_to_a_boolean_flag_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        train.build_parser().parse_args(["--progress=false"])
    assert exc.value.code == 2
    assert "--progress" in capsys.readouterr().err


def test_install_hint_works_from_a_checkout():
    assert cli.install_hint("face") == 'pip install -e ".[face]" in the root of the attngan checkout'
    text = " ".join(help_text(age.build_parser()).split())
    assert 'pip install -e ".[face]"' in text and "attngan[face]" not in text
