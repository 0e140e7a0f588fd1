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
import sys
from typing import Any, Callable

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "BoolFlag", "HelpFormatter", "add_bool_flag", "fail",
           "install_hint", "int_at_least", "one_line", "positive_int"]

#: Exit statuses of the scripts: done; done, but some inputs failed (each reported);
#: usage error, unusable checkpoint or data, or a missing optional extra.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

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


def install_hint(extra: str) -> str:
    """The command that installs an optional extra, as run from the root of an attngan checkout."""
    return f'pip install -e ".[{extra}]" (in the attngan checkout)'


def int_at_least(low: int) -> Callable[[str], int]:
    """argparse type of integers ``>= low``; the message says what was expected and what came."""
    expected = "a positive integer" if low == 1 else f"an integer >= {low}"

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be {expected}, got {value}")
        return value

    parse.__name__ = "positive_int" if low == 1 else f"int_at_least_{low}"
    return parse


#: argparse type of integers >= 1.
positive_int = int_at_least(1)


def one_line(text: Any, limit: int = 500) -> str:
    """``text`` with its white space folded to single spaces, cut to ``limit`` characters."""
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def fail(prog: str, message: Any) -> int:
    """Report an error as one line ``PROG: error: MESSAGE`` on stderr; returns :data:`EXIT_USAGE`."""
    print(f"{prog}: error: {one_line(message)}", file=sys.stderr)
    return EXIT_USAGE
