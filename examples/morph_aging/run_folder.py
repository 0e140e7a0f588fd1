"""The run folder (``train.py --out``): what a run writes there, who may write, and its metrics log.

A run folder holds one run. :func:`open_run` is how ``train.py`` takes one:

* it refuses an ``--out`` that is a file, cannot be written, or holds a file
  name of the run as a folder (``checkpoints/last.pt/``), before any work
  is spent;
* it keeps a second ``train.py`` out while the first one runs: the run
  holds an exclusive lock (:class:`RunLock`, ``flock`` on ``OUT/.lock``),
  which the system releases when the process ends, however it ends, so a
  lock left by a killed run never blocks the next one;
* it refuses a folder that already holds a run (``config.json``,
  ``metrics.jsonl`` or ``checkpoints/last.pt``) unless the run is resumed
  (``--resume``) or explicitly started afresh (``--overwrite``, which
  removes the files a run writes -- :func:`run_files` -- and nothing else);
* it refuses, whatever the flags and before writing anything there, a
  folder where one of those files is not a run's (another program's
  ``config.json``, say, beside its ``pytorch_model.bin``): the message names
  what is there (:func:`foreign_files`);
* it removes the temporary files a killed run left behind.

:class:`MetricsLog` writes ``metrics.jsonl`` as strict JSON, one object per
line (NaN and infinity become ``null``), and :func:`truncate_metrics` drops
the lines beyond a resumed checkpoint's step, so the log of a resumed run is
the log of an uninterrupted one.

Examples
--------
>>> import json, os, tempfile
>>> from run_folder import MetricsLog, open_run, truncate_metrics
>>> out = tempfile.mkdtemp()
>>> with open_run(out, resume=False, overwrite=False):
...     log = MetricsLog(os.path.join(out, "metrics.jsonl"))
...     for step in (1, 2, 3):
...         log.write({"step": step, "loss": float("nan") if step == 2 else 0.5})
...     log.close()
>>> with open_run(out, resume=False, overwrite=False):
...     pass
Traceback (most recent call last):
...
run_folder.RunFolderError: --out ... holds a run (metrics.jsonl): add --resume to continue it, or --overwrite to start afresh (removing its files), or choose another --out
>>> truncate_metrics(os.path.join(out, "metrics.jsonl"), step=2)
1
>>> [json.loads(line) for line in open(os.path.join(out, "metrics.jsonl"))]
[{'step': 1, 'loss': 0.5}, {'step': 2, 'loss': None}]
"""

from __future__ import annotations

import errno
import json
import os
import zipfile
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Optional

import files
from files import strict_json

try:  # POSIX; elsewhere runs are not locked
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["CHECKPOINT", "CONFIG", "LOCK", "LOG", "METRICS", "SAMPLES", "SKIPPED", "MetricsLog", "RunFolderError",
           "RunLock", "foreign_files", "holds_run", "open_run", "remove_run", "run_files", "truncate_metrics"]

#: Files of a run, relative to its folder.
CONFIG, METRICS, LOG, LOCK = "config.json", "metrics.jsonl", "train.log", ".lock"
CHECKPOINT = os.path.join("checkpoints", "last.pt")
SAMPLES = "samples"
#: The TensorBoard event files of ``--report-to tensorboard`` (their prefix is TensorBoard's).
TENSORBOARD, EVENTS_PREFIX = "tensorboard", "events.out.tfevents."
#: The list of the dataset files ``--skip-bad-files`` passed over.
SKIPPED = "skipped_files.txt"
#: Files whose presence means the folder holds a run.
_RUN_MARKERS = (CONFIG, METRICS, CHECKPOINT)
#: Files the run writes whole; each must be a file (or absent), never a folder.
_WRITTEN = (CONFIG, METRICS, LOG, SKIPPED, CHECKPOINT, os.path.join(SAMPLES, "latest.png"))
#: Other entries of a foreign folder named in its refusal (then their count).
_NAMED = 5


class RunFolderError(ValueError):
    """The run folder cannot be used as asked; the message says why and what to do."""


# --------------------------------------------------------------------------- #
# What a run writes
# --------------------------------------------------------------------------- #


def holds_run(out: str) -> List[str]:
    """The files of ``out`` that show it holds a run (``config.json``, ``metrics.jsonl``, ``checkpoints/last.pt``)."""
    return [name for name in _RUN_MARKERS if os.path.lexists(os.path.join(out, name))]


def _not_a_run_file(out: str, name: str) -> Optional[str]:
    """Why the file ``name`` of ``out`` is not one a run wrote, or None when it is (or is absent).

    A run's ``config.json`` is a JSON object with ``image_size`` and
    ``resolved``; its ``metrics.jsonl`` starts with an object with a
    ``step`` (or is empty: a run killed before its first log line); its
    ``checkpoints/last.pt`` is a torch archive of this example's format.
    """
    path = os.path.join(out, name)
    if not os.path.isfile(path):
        return None  # absent, or a folder: check_output names that
    try:
        if name == CHECKPOINT:
            from checkpoints import CHECKPOINT_FORMAT

            with zipfile.ZipFile(path) as archive:
                pickles = [n for n in archive.namelist() if n.endswith("/data.pkl")]
                ours = len(pickles) == 1 and CHECKPOINT_FORMAT.encode() in archive.read(pickles[0])
            return None if ours else "not a checkpoint of train.py"
        with open(path, encoding="utf-8") as fh:
            text = fh.read() if name == CONFIG else fh.readline()
        if name == METRICS and not text.strip():
            return None
        record = json.loads(text)
    except (OSError, ValueError, zipfile.BadZipFile):
        return "not a file train.py writes"
    if not isinstance(record, dict):
        return f"not a JSON object but a {type(record).__name__}"
    if name == METRICS:
        return None if "step" in record else "a log without train.py's steps"
    if "image_size" in record and isinstance(record.get("resolved"), dict):
        return None
    keys = ", ".join(list(record)[:3]) + (", ..." if len(record) > 3 else "")
    return f"not a train.py config: its keys are {keys}" if record else "an empty JSON object"


def foreign_files(out: str) -> List[str]:
    """The files of ``out`` where a run writes its own that hold something else, each with why
    (``config.json (not a train.py config: its keys are model_type)``); empty when there are none."""
    return [f"{name} ({why})" for name in _RUN_MARKERS for why in [_not_a_run_file(out, name)] if why]


def _refuse_foreign(out: str) -> None:
    """Raise :class:`RunFolderError` naming what ``out`` holds when one of its run files is not a run's."""
    foreign = foreign_files(out)
    if not foreign:
        return
    markers = {name.split(os.sep)[0] for name in _RUN_MARKERS}
    others = sorted(n for n in os.listdir(out) if n not in markers and n != LOCK)
    beside = ""
    if others:
        more = f" and {len(others) - _NAMED} more" if len(others) > _NAMED else ""
        beside = f"; beside them: {', '.join(others[:_NAMED])}{more}"
    raise RunFolderError(f"--out {out} holds files of something other than a train.py run: {'; '.join(foreign)}"
                         f"{beside}. It is refused whatever the flags (--resume cannot continue it, --overwrite "
                         "would replace them): choose another --out")


def run_files(out: str) -> List[str]:
    """Every file a run wrote into ``out`` (paths), as ``--overwrite`` removes them: the config,
    metrics, log, list of skipped dataset files, checkpoint, sample grids (``samples/step_*.png``,
    ``samples/latest.png``), TensorBoard event files (``tensorboard/events.out.tfevents.*``) and
    leftover temporaries; nothing else the folder holds."""
    found = [os.path.join(out, name) for name in (CONFIG, METRICS, LOG, SKIPPED, CHECKPOINT)]
    samples, events = os.path.join(out, SAMPLES), os.path.join(out, TENSORBOARD)
    if os.path.isdir(samples):
        found += [os.path.join(samples, n) for n in sorted(os.listdir(samples))
                  if n == "latest.png" or (n.startswith("step_") and n.endswith(".png"))]
    if os.path.isdir(events):
        found += [os.path.join(events, n) for n in sorted(os.listdir(events)) if n.startswith(EVENTS_PREFIX)]
    for folder in (out, os.path.join(out, "checkpoints"), samples):
        if os.path.isdir(folder):
            found += [os.path.join(folder, n) for n in sorted(os.listdir(folder)) if n.startswith(files.TEMP_PREFIX)]
    return [p for p in found if os.path.lexists(p) and not os.path.isdir(p)]


def remove_run(out: str) -> int:
    """Remove the files of the run in ``out`` (:func:`run_files`) and its emptied sub-folders; returns the count."""
    removed = 0
    for path in run_files(out):
        try:
            os.unlink(path)
            removed += 1
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise RunFolderError(f"--overwrite: cannot remove {path}: {exc.strerror or exc}") from None
    for sub in ("checkpoints", SAMPLES, TENSORBOARD):
        try:
            os.rmdir(os.path.join(out, sub))  # only when empty: other files stay
        except OSError:
            pass
    return removed


# --------------------------------------------------------------------------- #
# The lock
# --------------------------------------------------------------------------- #


class RunLock:
    """An exclusive lock on a run folder: ``flock`` on ``OUT/.lock``, which holds the owner's pid.

    :meth:`acquire` fails at once (:class:`RunFolderError`) while another
    process holds the lock. The system releases the lock when its holder
    ends, however it ends, so a lock file left by a killed run does not block.
    The file itself stays (removing it could let two runs lock two files).
    """

    def __init__(self, out: str) -> None:
        self.out, self.path = out, os.path.join(out, LOCK)
        self._fd: Optional[int] = None

    def acquire(self) -> "RunLock":
        if fcntl is None:  # pragma: no cover - Windows
            return self
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise files.WriteError(self.path, files.write_failure(exc) or str(exc), exc.errno) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                who = f"another run (pid {holder})" if holder else "another run"
                raise RunFolderError(f"{who} is writing into {self.out}: wait for it to end, or choose another "
                                     "--out") from None
            raise files.WriteError(self.path, f"cannot lock it ({exc.strerror or exc})", exc.errno) from None
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is a courtesy; the lock is what counts
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            try:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            finally:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _read_pid(fd: int) -> Optional[int]:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError, AttributeError):
        return None


# --------------------------------------------------------------------------- #
# Taking the folder
# --------------------------------------------------------------------------- #


def check_output(out: str) -> None:
    """Refuse, before any work, an ``--out`` that is a file (or a link to nothing), cannot be written,
    or has a folder where the run writes a file (``checkpoints/last.pt/``)."""
    if os.path.lexists(out) and not os.path.isdir(out) and files.broken_link(out) is None:
        raise RunFolderError(f"--out {out} is a file, not a folder")
    for sub in ("", "checkpoints", SAMPLES):
        folder = os.path.join(out, sub) if sub else out
        files.check_writable_folder(folder, "output folder" if not sub else f"{sub} folder of --out")
    for name in _WRITTEN:
        path = os.path.join(out, name)
        if os.path.lexists(path) and not os.path.isfile(path):
            raise RunFolderError(f"{path} is a folder or another non-file, where the run writes a file: move it "
                                 "away or choose another --out")


@contextmanager
def open_run(out: str, *, resume: bool, overwrite: bool) -> Iterator[RunLock]:
    """Take the run folder ``out`` for a run, holding its lock until the block ends.

    Refuses a folder where something other than a run is (:func:`foreign_files`),
    checks the folder (:func:`check_output`), locks it (:class:`RunLock`),
    refuses a folder that holds a run unless ``resume`` or ``overwrite``,
    removes the previous run's files with ``overwrite`` (:func:`remove_run`)
    and the temporaries a killed run left. Raises :class:`RunFolderError` or
    :class:`files.WriteError`, one line each.
    """
    _refuse_foreign(out)  # before anything is written there
    check_output(out)
    with RunLock(out) as lock:
        held = holds_run(out)
        if held and not resume and not overwrite:
            raise RunFolderError(f"--out {out} holds a run ({', '.join(held)}): add --resume to continue it, or "
                                 "--overwrite to start afresh (removing its files), or choose another --out")
        if overwrite:
            remove_run(out)
            check_output(out)  # the emptied sub-folders again
        for folder in (out, os.path.join(out, "checkpoints"), os.path.join(out, SAMPLES)):
            files.remove_stale_temporaries(folder)  # safe: nobody else writes here while we hold the lock
        yield lock


# --------------------------------------------------------------------------- #
# metrics.jsonl
# --------------------------------------------------------------------------- #


class MetricsLog:
    """``metrics.jsonl``: one strict-JSON object per line, appended and flushed line by line.

    A failed write raises :class:`files.WriteError` naming the file
    (``cannot write OUT/metrics.jsonl: no space left on device``).
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._fh = open(path, "a", encoding="utf-8")
        except OSError as exc:
            raise files.WriteError(path, files.write_failure(exc) or str(exc), exc.errno) from None

    def write(self, record: Dict[str, Any]) -> None:
        line = json.dumps(strict_json(record), allow_nan=False)
        try:
            self._fh.write(line + "\n")
            self._fh.flush()
        except OSError as exc:
            raise files.WriteError(self.path, files.write_failure(exc) or str(exc), exc.errno) from None

    def close(self) -> None:
        try:
            self._fh.close()
        except OSError:
            pass


def truncate_metrics(path: str, step: int) -> int:
    """Keep the lines of ``path`` up to ``step`` (a resumed checkpoint's); returns how many were dropped.

    Lines beyond ``step`` (logged after the checkpoint, before the run was
    killed) and unreadable lines (one torn by the kill) are dropped; the
    others are rewritten as strict JSON (an older version wrote ``NaN``).
    The file is replaced atomically, and only when something changes.
    """
    if not os.path.isfile(path):
        return 0
    with open(path, encoding="utf-8", errors="replace") as fh:
        lines = fh.read().splitlines()
    kept: List[str] = []
    dropped = 0
    for line in lines:
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except ValueError:
            dropped += 1
            continue
        at = record.get("step") if isinstance(record, dict) else None
        if isinstance(at, bool) or not isinstance(at, int) or at > step:
            dropped += 1
            continue
        kept.append(json.dumps(strict_json(record), allow_nan=False))
    if dropped or kept != [line for line in lines if line.strip()]:
        files.write_text(path, "".join(k + "\n" for k in kept))
    return dropped
