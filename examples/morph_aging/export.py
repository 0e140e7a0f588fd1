"""Export the generator of a training checkpoint as safetensors.

::

    python examples/morph_aging/export.py --checkpoint runs/acgan/checkpoints/last.pt \\
        --out generator.safetensors

The file holds the generator weights only (no critic, no optimiser state),
with the training config as metadata, so ``age.py --checkpoint
generator.safetensors`` rebuilds the same network. Reading and writing it
needs the ``export`` extra: ``pip install -e ".[export]"``.

An existing ``--out`` is replaced, unless it is read-only: then it is left
as it is and the export refused, as for a folder that cannot be written.

Exit status: 0 on success, 2 for a usage error, a missing extra, an
unusable checkpoint or an ``--out`` that cannot be written.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import List, Optional

import checkpoints
import cli
from cli import EXIT_OK
from files import atomic_file, check_replaceable

PROG, SUFFIX = "export.py", ".safetensors"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", required=True, metavar="CKPT", help="training checkpoint (.pt)")
    parser.add_argument("--out", metavar="FILE",
                        help=f"output file ending in {SUFFIX} (default: the checkpoint's name with {SUFFIX})")
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    cli.one_line_warnings()
    ckpt = args.checkpoint
    if ckpt.endswith(SUFFIX):
        return cli.fail(PROG, f"{ckpt} is already an exported {SUFFIX} generator")
    out = args.out or os.path.splitext(ckpt)[0] + SUFFIX
    if not out.endswith(SUFFIX):
        # age.py and checkpoints.generator_from_checkpoint recognise the format by its suffix
        return cli.fail(PROG, f"--out must end in {SUFFIX}, got {out}")
    try:
        import safetensors.torch  # noqa: F401
    except ImportError:
        return cli.fail(PROG, "exporting needs the 'export' extra (safetensors is missing): "
                              + cli.install_hint("export"))
    try:
        check_replaceable(out)  # a read-only file stays as it is
        with atomic_file(out) as tmp:
            checkpoints.export_safetensors(ckpt, tmp)
    except checkpoints.CheckpointError as exc:
        return cli.fail(PROG, exc)
    except OSError as exc:
        return cli.fail(PROG, f"cannot write {out}: {exc.strerror or exc}")
    except Exception as exc:  # noqa: BLE001 - a malformed checkpoint can fail in many ways
        return cli.fail(PROG, f"cannot export {ckpt}: {type(exc).__name__}: {exc}")
    print(f"wrote {out} ({os.path.getsize(out) / 1e6:.1f} MB)")
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
