"""Train AcGANs ("Look Globally, Age Locally", Zhu et al.) for face aging.

With no arguments, trains on the built-in synthetic faces with the preset that
suits the device (``cpu-demo`` on a CPU: 64x64, narrow networks, a 12-minute
budget; ``paper`` on a GPU: 224x224 and the paper's networks) and the paper's
loss weights and optimiser. It starts with a summary of what will run
(preset, device, precision, size, batch, iterations, time budget, output
folder, resume point). Every setting is a flag; see
``--help``. Several GPUs::

    torchrun --nproc_per_node=4 examples/morph_aging/train.py --data /data/morph

Outputs in ``--out``: ``config.json``, ``metrics.jsonl``,
``checkpoints/last.pt`` (atomic) and ``samples/*.png`` (input, five ages,
attention and colour masks, as the paper's Fig. 2, labelled).
With ``--report-to tensorboard`` (the ``tensorboard`` extra), also
``tensorboard/``: the numbers of every metrics line as scalars and every
sample grid as an image (``tensorboard --logdir OUT/tensorboard``; see
``tensorboard_log.py``).

``--max-minutes`` is the budget of one run of ``train.py``: a run it stops
before its last iteration ends with exit status 0 and a notice that says so,
with the command that continues it (``--resume``), which gets a fresh
budget. ``metrics.jsonl`` logs ``elapsed_s`` (this run) and
``total_elapsed_s`` (every run of this ``--out``; kept in the checkpoint).

An ``--out`` holds one run (see ``run_folder.py``): a folder that holds one
already is refused unless ``--resume`` continues it or ``--overwrite``
starts afresh, and a second ``train.py`` cannot write into it while the
first runs. Unreadable images are replaced by readable ones and reported; an
unexpected error saves a last checkpoint (when the weights are finite),
writes its traceback to ``OUT/train.log`` and ends with one line.

Exit status: 0 finished (or reached --max-minutes); 1 stopped by an error
(reported in one line, checkpoint saved where possible); 2 usage error, or
an unusable --out, checkpoint or dataset; 3 diverged (non-finite losses);
130 interrupted (SIGINT / SIGTERM; checkpoint saved).
"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

import cli
import config
import training
from config import TrainConfig


# --------------------------------------------------------------------------- #
# Command line
# --------------------------------------------------------------------------- #


def build_parser() -> argparse.ArgumentParser:
    """One flag per :class:`config.TrainConfig` field."""
    parser = argparse.ArgumentParser(
        prog="train.py", description=__doc__.split("\n\n")[0],
        formatter_class=cli.HelpFormatter,
        allow_abbrev=False,  # --generator-m must not pass for --generator-mode (ablation.py's reserved flags)
    )
    config.add_config_arguments(parser)
    return parser


def parse_config(argv: Optional[List[str]] = None) -> TrainConfig:
    parser = build_parser()
    return config.config_from_args(parser, parser.parse_args(argv))


def main(argv: Optional[List[str]] = None) -> int:
    """Train as the command line ``argv`` says (default ``sys.argv[1:]``); returns the exit status."""
    cfg = parse_config(argv)
    cli.one_line_warnings()
    return training.run(cfg, argv=sys.argv[1:] if argv is None else argv)


if __name__ == "__main__":
    sys.exit(main())
