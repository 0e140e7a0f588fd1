"""Command-line pieces every script of the example shares: the boolean and
positive-integer flag types, exit statuses and the one-line error report.

Boolean flags have one style everywhere: ``--flag`` alone means true, and
``--flag BOOL`` sets it explicitly (``true/false``, ``1/0``, ``yes/no``,
``on/off``), so ``--progress false`` and ``--resume`` both read naturally.

Examples
--------
>>> import argparse
>>> from cli import add_bool_flag, positive_int
>>> parser = argparse.ArgumentParser()
>>> add_bool_flag(parser, "--progress", default=True, help="show progress bars")
>>> _ = parser.add_argument("--repeats", type=positive_int, default=5)
>>> parser.parse_args(["--progress", "off", "--repeats", "3"])
Namespace(progress=False, repeats=3)
>>> parser.parse_args(["--progress"]).progress
True
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, Callable

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "add_bool_flag", "fail", "int_at_least", "one_line",
           "parse_bool", "positive_int"]

#: Exit statuses of the scripts: done; done, but some inputs failed (each reported);
#: usage error, unusable checkpoint or data, or a missing optional extra.
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2

_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


def parse_bool(text: str) -> bool:
    """argparse type of boolean flags: ``1/0``, ``true/false``, ``yes/no``, ``on/off`` (any case)."""
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def add_bool_flag(parser: argparse.ArgumentParser, flag: str, *, default: Any, help: str) -> None:
    """Add a boolean flag in the example's one style: ``--flag`` or ``--flag BOOL``."""
    parser.add_argument(flag, type=parse_bool, nargs="?", const=True, default=default, metavar="BOOL", help=help)


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
