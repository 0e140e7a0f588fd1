"""TensorBoard logging of a training run: ``train.py --report-to tensorboard``.

A run with ``--report-to tensorboard`` writes event files under
``OUT/tensorboard/`` (:data:`FOLDER`): every number of each
``metrics.jsonl`` line as a scalar, tagged by :func:`tag_of`, at the
iteration as global step, and every sample grid as the image ``samples``.
Watch it with ``tensorboard --logdir OUT/tensorboard``.

A resumed run purges what an earlier process logged after the checkpoint it
continues from (``SummaryWriter(purge_step=...)``), as ``metrics.jsonl`` drops
those lines, so no step appears twice; a fresh run purges every older event
in the folder. Needs the optional ``tensorboard`` extra; :func:`require`
says how to install it in one line.

Examples
--------
>>> tag_of("d_adv"), tag_of("attention_mean"), tag_of("images_per_second")
('loss/d_adv', 'mask/mean', 'perf/images_per_s')
>>> sorted(scalars_of({"step": 3, "g_loss": 1.5, "lr": 1e-4, "note": "text"}).items())
[('loss/g_loss', 1.5), ('optim/lr', 0.0001)]
"""

from __future__ import annotations

import importlib
import os
import time
from typing import Any, Dict, Optional

import numpy as np

import cli
import run_folder

__all__ = ["FOLDER", "IMAGE_TAG", "INSTALL", "REPORT_TO", "TAGS", "TensorBoardLog", "TensorBoardMissing",
           "open_log", "require", "scalars_of", "tag_of"]

#: The values of ``--report-to``: ``none`` (metrics.jsonl only) or ``tensorboard``.
REPORT_TO = ("none", "tensorboard")
#: Where a run's event files go, inside its ``--out``.
FOLDER = run_folder.TENSORBOARD
#: The tag of the sample grids.
IMAGE_TAG = "samples"
#: The command that installs what ``--report-to tensorboard`` needs.
INSTALL = 'pip install "attngan[tensorboard]"'

#: The tags of the logged numbers that are not loss terms. A loss term (a key
#: ``d_*``, ``g_*`` or ``gp``) is ``loss/<key>``; any other number ``misc/<key>``.
TAGS: Dict[str, str] = {
    "attention_mean": "mask/mean",
    "attention_near_zero": "mask/near_zero",
    "attention_near_one": "mask/near_one",
    "attention_spread": "mask/spread",
    "d_skipped": "skipped/critic",  # fraction of the logged iterations whose critic update was skipped
    "g_skipped": "skipped/generator",
    "skipped_steps": "skipped/steps",  # running total of skipped iterations
    "images_per_second": "perf/images_per_s",
    "elapsed_s": "perf/elapsed_s",
    "total_elapsed_s": "perf/total_elapsed_s",
    "lr": "optim/lr",
    "epoch": "progress/epoch",
}


class TensorBoardMissing(ImportError):
    """``--report-to tensorboard`` was asked for without the ``tensorboard`` package."""


def require() -> Any:
    """The ``SummaryWriter`` class; raises :class:`TensorBoardMissing` with the install line when it is missing.

    Returns
    -------
    type
        :class:`torch.utils.tensorboard.SummaryWriter`.

    Raises
    ------
    TensorBoardMissing
        When ``tensorboard`` (the ``tensorboard`` extra) does not import.
    """
    try:
        module = importlib.import_module("torch.utils.tensorboard")
    except ImportError:
        raise TensorBoardMissing(f"--report-to tensorboard needs the tensorboard package: {INSTALL} "
                                 f"(from a checkout: {cli.install_hint('tensorboard')})") from None
    return module.SummaryWriter


def tag_of(key: str) -> str:
    """The TensorBoard tag of a ``metrics.jsonl`` key.

    Parameters
    ----------
    key : str
        A key of a metrics record (``d_adv``, ``attention_mean``, ...).

    Returns
    -------
    str
        ``loss/<key>`` for a loss term (``d_*``, ``g_*``, ``gp``), the entry of
        :data:`TAGS` for the others it names, ``misc/<key>`` for the rest.
    """
    if key in TAGS:
        return TAGS[key]
    if key == "gp" or key.startswith(("d_", "g_")):
        return f"loss/{key}"
    return f"misc/{key}"


def scalars_of(record: Dict[str, Any]) -> Dict[str, float]:
    """The scalars of one metrics record, by tag: every number but ``step`` (the global step).

    Parameters
    ----------
    record : dict
        A line of ``metrics.jsonl`` as ``train.py`` builds it.

    Returns
    -------
    dict
        ``{tag: value}``; booleans, strings and other non-numbers are left out.
    """
    return {tag_of(key): float(value) for key, value in record.items()
            if key != "step" and isinstance(value, (int, float)) and not isinstance(value, bool)}


class TensorBoardLog:
    """The event files of one run of ``train.py``: scalars and sample grids.

    Parameters
    ----------
    out : str
        The run's ``--out``; events go to ``out/tensorboard``.
    first_step : int
        The first step this process logs. Events of this step and later ones
        already in the folder (an earlier process's, logged after the
        checkpoint this one resumes from) are purged; 0 for a fresh run.
        Earlier steps are the earlier process's: what this one would write
        at them (a finished run's samples, drawn again on ``--resume``) is
        left out, so that no step appears twice.

    Raises
    ------
    TensorBoardMissing
        When the ``tensorboard`` package is not installed.
    """

    def __init__(self, out: str, *, first_step: int) -> None:
        writer_class = require()
        self.folder = os.path.join(out, FOLDER)
        self.first_step = int(first_step)
        _after_the_newest_file(self.folder)
        self._writer = writer_class(self.folder, purge_step=self.first_step)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.folder!r}, first_step={self.first_step})"

    def scalars(self, record: Dict[str, Any]) -> None:
        """Write the numbers of one metrics record (:func:`scalars_of`) at its ``step``."""
        step = int(record["step"])
        if step < self.first_step:
            return
        for tag, value in scalars_of(record).items():
            self._writer.add_scalar(tag, value, global_step=step)

    def image(self, grid: np.ndarray, step: int) -> None:
        """Write a sample grid, ``(H, W, 3)`` uint8 as :func:`pictures.aging_figure` draws it, at ``step``."""
        if grid.ndim != 3 or grid.shape[-1] != 3:
            raise ValueError(f"grid: expected an (H, W, 3) image, got shape {tuple(grid.shape)}")
        if step < self.first_step:
            return
        self._writer.add_image(IMAGE_TAG, grid, global_step=int(step), dataformats="HWC")

    def flush(self) -> None:
        """Write the pending events to disk."""
        self._writer.flush()

    def close(self) -> None:
        """Flush and close the event file (closing twice is harmless)."""
        self._writer.close()


def _after_the_newest_file(folder: str) -> None:
    """Wait, when an event file in ``folder`` was opened in this very second, for the next one.

    TensorBoard reads a folder's event files in the order of their names,
    which begin with the second the file was opened; a resumed run's purge
    must come after the events it purges, so its file must sort after theirs
    (within one second the names sort by process id, in no useful order).
    """
    if not os.path.isdir(folder):
        return
    opened = [name.split(".")[3] for name in os.listdir(folder) if name.startswith(run_folder.EVENTS_PREFIX)]
    newest = max((int(t) for t in opened if t.isdigit()), default=None)
    now = time.time()
    if newest is not None and int(now) == newest:
        time.sleep(newest + 1 - now)


def open_log(report_to: str, out: str, *, start_step: int, resume: bool) -> Optional[TensorBoardLog]:
    """The log ``--report-to`` asks for: a :class:`TensorBoardLog`, or None for ``none``.

    Parameters
    ----------
    report_to : str
        A value of :data:`REPORT_TO`.
    out : str
        The run's ``--out``.
    start_step : int
        The step training starts from (the checkpoint's when resuming).
    resume : bool
        Whether the run continues a checkpoint: the earlier events up to
        ``start_step`` are kept, later ones purged. A fresh run purges all.
    """
    if report_to not in REPORT_TO:
        raise ValueError(f"--report-to must be one of {', '.join(REPORT_TO)}, got {report_to!r}")
    if report_to == "none":
        return None
    return TensorBoardLog(out, first_step=start_step + 1 if resume else 0)
