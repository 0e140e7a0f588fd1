"""Command-line pieces every script of the example shares: the boolean and
positive-integer flag types, the help formatter, exit statuses, install
hints and the one-line error report.

Boolean flags have one style everywhere: ``--flag`` turns it on and
``--no-flag`` off; neither takes a value, so a bare flag never swallows the
argument after it (``age.py --masks photo.jpg`` ages ``photo.jpg``).

Examples
--------
>>> import argparse
>>> from cli import add_bool_flag, positive_int
>>> parser = argparse.ArgumentParser()
>>> add_bool_flag(parser, "--progress", default=True, help="show progress bars")
>>> _ = parser.add_argument("--repeats", type=positive_int, default=5)
>>> parser.parse_args(["--no-progress", "--repeats", "3"])
Namespace(progress=False, repeats=3)
>>> parser.parse_args(["--progress"]).progress
True
"""

from __future__ import annotations

import argparse
import math
import os
import subprocess
import sys
import textwrap
import warnings
from typing import Any, Callable, Optional

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_OK", "EXIT_USAGE", "BoolFlag", "HelpFormatter", "add_bool_flag",
           "fail", "INT_LIMIT", "finite_float", "install_hint", "int_at_least", "one_line", "one_line_warnings",
           "positive_int"]

#: Exit statuses of the scripts: done; done, but some inputs failed (each reported);
#: usage error, unusable checkpoint or data, or a missing optional extra;
#: interrupted (Ctrl-C: 128 + SIGINT, as a shell reports it).
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class BoolFlag(argparse.Action):
    """A boolean flag ``--flag`` / ``--no-flag`` that takes no value.

    As :class:`argparse.BooleanOptionalAction`, but the same on every Python
    version (3.9 appends its own default to the help).
    """

    def __init__(self, option_strings, dest, default=None, required=False, help=None) -> None:
        names = [s for o in option_strings for s in ((o, "--no-" + o[2:]) if o.startswith("--") else (o,))]
        super().__init__(names, dest, nargs=0, default=default, required=required, help=help)

    def __call__(self, parser, namespace, values, option_string=None) -> None:
        setattr(namespace, self.dest, not option_string.startswith("--no-"))

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


def add_bool_flag(parser: argparse.ArgumentParser, flag: str, *, default: Any, help: str) -> None:
    """Add a boolean flag in the example's one style: ``--flag`` / ``--no-flag``."""
    parser.add_argument(flag, action=BoolFlag, default=default, help=help)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each flag's default said once.

    Adds ``(default: X)`` to an option's help unless the help already says
    its default (``(default``) or the default is None (a flag whose default depends on
    something else says so in its own help); boolean flags show ``on`` /
    ``off``.
    """

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (not action.option_strings or action.default is None or action.default is argparse.SUPPRESS
                or "(default" in text or "%(default)" in text):
            return text
        if isinstance(action, BoolFlag):
            return f"{text} (default: {'on' if action.default else 'off'})"
        return text + " (default: %(default)s)"

    def _split_lines(self, text: str, width: int) -> list:
        # argparse wraps at hyphens too, which splits "cpu-demo" or "--max-steps" across lines
        return textwrap.wrap(" ".join(text.split()), width, break_on_hyphens=False)


def install_hint(extra: str) -> str:
    """The command that installs an optional extra, as run from the root of an attngan checkout."""
    return f'pip install -e ".[{extra}]" in the root of the attngan checkout'


#: The largest integer any integer flag takes unless it says otherwise (a C int):
#: larger values overflow in torch and the OS before they mean anything.
INT_LIMIT = 2**31 - 1


def int_at_least(low: int, high: int = INT_LIMIT) -> Callable[[str], int]:
    """argparse type of integers in ``[low, high]``; the message says what was expected and what came
    (argparse puts the flag in front of it)."""
    expected = "a positive integer" if low == 1 else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {value}")
        if value > high:
            raise argparse.ArgumentTypeError(f"must be at most {high}, got {value}")
        return value

    parse.__name__ = "positive_int" if low == 1 else f"int_at_least_{low}"
    return parse


def finite_float(low: Optional[float] = None, high: Optional[float] = None, *,
                 low_open: bool = False) -> Callable[[str], float]:
    """argparse type of finite numbers (no nan / inf) in ``[low, high]`` (``(low, high]`` with ``low_open``).

    >>> parse = finite_float(0.0, low_open=True)
    >>> parse("2.5")
    2.5
    >>> parse("nan")
    Traceback (most recent call last):
    ...
    argparse.ArgumentTypeError: must be a finite number > 0, got 'nan'
    """
    bounds = []
    if low is not None:
        bounds.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        bounds.append(f"<= {high:g}")
    expected = "a finite number" + (" " + " and ".join(bounds) if bounds else "")

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        if (not math.isfinite(value) or (low is not None and (value <= low if low_open else value < low))
                or (high is not None and value > high)):
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}")
        return value

    parse.__name__ = "finite_float"
    return parse


#: argparse type of integers >= 1.
positive_int = int_at_least(1)


def one_line(text: Any, limit: int = 500) -> str:
    """``text`` with its white space folded to single spaces, cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def one_line_warnings() -> None:
    """Show Python warnings (a dataset's skipped files, a checkpoint without a digest) as one line
    ``warning: MESSAGE`` instead of two with the source line; the scripts call it first."""
    def formatwarning(message: Any, category: Any, filename: str, lineno: int, line: Optional[str] = None) -> str:
        return f"warning: {one_line(message)}\n"

    warnings.formatwarning = formatwarning


def fail(prog: str, message: Any) -> int:
    """Report an error as one line ``PROG: error: MESSAGE`` on stderr; returns :data:`EXIT_USAGE`."""
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return EXIT_USAGE


def probability(text: str) -> float:
    """argparse type: a number in (0, 1], for rates such as a false-accept rate."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}") from None
    if not (math.isfinite(value) and 0 < value <= 1):
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1], got {text!r}")
    return value


def git_commit() -> Optional[str]:
    """The commit of the checkout holding the example (``+dirty`` when tracked files differ), None outside git.

    Recorded beside results so that every figure names the code that made it.
    """
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10)
        if head.returncode != 0:
            return None
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head.stdout.strip() + ("+dirty" if dirty else "")
