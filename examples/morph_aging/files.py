"""Atomic file writes: a file is either its old self or completely new, never torn.

Every file the example writes as a whole (checkpoints, pictures, reports,
JSON, exported generators, the cached age classifier) goes through
:func:`atomic_file`: the content is written to a uniquely named temporary
file in the target's folder, flushed to disk, then renamed over the target
(``os.replace``, atomic on POSIX and Windows). A failure or an interrupt
removes the temporary file; a process killed mid-write leaves at most a
``.tmp-*`` file beside the untouched target. The new file gets the mode any
newly created file gets (``0o666`` less the umask, usually 0644), so
checkpoints and exported generators can be shared.

A write that fails (a full disk, a read-only or vanished folder, a quota)
raises :class:`WriteError`, one line naming the file and the cause: ``cannot
write PATH: no space left on device``. Writers that do not report an errno
(``torch.save`` says only ``unexpected pos``) are recognised and, when the
folder has no space left, reported as such (:func:`write_failure`).
:func:`check_writable_folder` finds an unusable output folder before any
work is spent.

Examples
--------
>>> import os, tempfile
>>> from files import atomic_file, write_text
>>> folder = tempfile.mkdtemp()
>>> path = os.path.join(folder, "results.json")
>>> write_text(path, '{"ok": true}\\n')
>>> with atomic_file(path) as tmp:       # a path, for writers that want one
...     with open(tmp, "w") as fh:
...         _ = fh.write("{}\\n")
>>> open(path).read(), os.listdir(folder)
('{}\\n', ['results.json'])
"""

from __future__ import annotations

import errno
import os
import tempfile
from contextlib import contextmanager
from typing import Iterator, Optional, Union

__all__ = ["TEMP_PREFIX", "WriteError", "atomic_file", "check_writable_folder", "remove_stale_temporaries",
           "write_failure", "write_text"]

#: Prefix of the temporary files :func:`atomic_file` writes next to their targets.
TEMP_PREFIX = ".tmp-"
#: Messages of writers that fail without an errno (torch's zip writer, C++ streams).
_UNEXPLAINED_WRITE_FAILURES = ("unexpected pos", "iostream error", "PytorchStreamWriter failed", "file write failed")
#: Below this many free bytes an unexplained write failure is taken for a full disk.
_NEARLY_FULL_BYTES = 1 << 20


class WriteError(OSError):
    """A file could not be written; ``str()`` is one line ``cannot write PATH: REASON``."""

    def __init__(self, path: str, reason: str, errno_: Optional[int] = None) -> None:
        super().__init__(errno_, reason)
        self.path, self.reason = path, reason

    def __str__(self) -> str:
        return f"cannot write {self.path}: {self.reason}"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        yield exc
        exc = exc.__cause__ or exc.__context__


def write_failure(exc: BaseException, folder: Optional[str] = None) -> Optional[str]:
    """Why a write failed, as a lower-case reason (``"no space left on device"``), or None
    when ``exc`` is not a write failure.

    Looks through the exception's causes for an :class:`OSError` with an
    errno, then for a message naming the cause (``No space left on device``),
    then for a writer's errno-less failure (``torch.save``: ``unexpected
    pos``), which is reported as a full disk when ``folder`` has less than
    1 MiB free.

    >>> import errno
    >>> write_failure(OSError(errno.ENOSPC, "No space left on device"))
    'no space left on device'
    >>> wrapped = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")
    >>> wrapped.__context__ = OSError(errno.ENOSPC, "No space left on device")
    >>> write_failure(wrapped)
    'no space left on device'
    >>> write_failure(ValueError("not a write")) is None
    True
    """
    chain = list(_chain(exc))
    for e in chain:
        if isinstance(e, WriteError):
            return e.reason
        if isinstance(e, OSError) and e.errno:
            return os.strerror(e.errno).lower()
    for e in chain:
        if isinstance(e, OSError):
            return str(e) or type(e).__name__
    for e in chain:
        for code in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EROFS, errno.EIO):
            if os.strerror(code).lower() in str(e).lower():
                return os.strerror(code).lower()
    if any(isinstance(e, RuntimeError) and any(m in str(e) for m in _UNEXPLAINED_WRITE_FAILURES) for e in chain):
        if folder is not None:
            try:
                st = os.statvfs(folder)
                if st.f_bavail * st.f_frsize < _NEARLY_FULL_BYTES:
                    return os.strerror(errno.ENOSPC).lower()
            except (OSError, AttributeError):
                pass
        return f"the writer failed ({' '.join(str(chain[0]).split())})"
    return None

PathLike = Union[str, "os.PathLike[str]"]


@contextmanager
def atomic_file(path: PathLike) -> Iterator[str]:
    """Yield a temporary path to write ``path``'s new content to; on success
    it is fsynced and renamed to ``path``, on any exception removed.

    The temporary file is created (empty) in ``path``'s folder, which is
    created if missing, with a unique name ``.tmp-XXXX<suffix>`` that keeps
    ``path``'s suffix (so writers that pick a format by the suffix, such as
    :func:`numpy.savez_compressed`, write the right one).
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, f"{path} is a folder")
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=os.path.splitext(path)[1], dir=folder)
        os.close(fd)
    except OSError as exc:
        raise WriteError(path, write_failure(exc) or str(exc), exc.errno) from exc
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        _give_new_file_mode(tmp)  # after the writer: some (safetensors) replace the file with their own 0600 one
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        reason = write_failure(exc, folder) if isinstance(exc, (OSError, RuntimeError)) else None
        if reason is None or isinstance(exc, WriteError):
            raise
        raise WriteError(path, reason, getattr(exc, "errno", None)) from exc


def _give_new_file_mode(path: str) -> None:
    """The mode a file created with :func:`open` would have: ``0o666`` less the umask
    (mkstemp creates its files 0600, readable by their owner only)."""
    mask = os.umask(0o022)  # reading the umask means setting it; put it back at once
    os.umask(mask)
    try:
        os.chmod(path, 0o666 & ~mask)
    except OSError:  # a file system without permissions (FAT, some network shares): keep what it gives
        pass


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)


def check_writable_folder(folder: PathLike, what: str = "output folder") -> None:
    """Create ``folder`` if missing and prove that files can be created in it.

    Raises :class:`WriteError` (one line naming the folder) for a path that
    is a file, a folder that cannot be created, or one where a file cannot be
    created (read-only, no permission, no space): before any work is spent.
    """
    folder = os.fspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise WriteError(folder, f"the {what} is a file, not a folder", errno.ENOTDIR)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise WriteError(folder, f"the {what} is not writable ({write_failure(exc) or exc})", exc.errno) from exc


def remove_stale_temporaries(folder: PathLike) -> int:
    """Remove the :func:`atomic_file` temporaries a killed process left in ``folder``; returns their count.

    Only call it while no other process writes into ``folder`` (``train.py``
    holds the run folder's lock).
    """
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        if entry.name.startswith(TEMP_PREFIX) and entry.is_file(follow_symlinks=False):
            try:
                os.unlink(entry.path)
                removed += 1
            except OSError:
                pass
    return removed
