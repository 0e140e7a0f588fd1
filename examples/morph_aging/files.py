"""Atomic file writes: a file is either its old self or completely new, never torn.

Every file the example writes as a whole (checkpoints, pictures, reports,
JSON, exported generators, the cached age classifier) goes through
:func:`atomic_file`: the content is written to a uniquely named temporary
file in the target's folder, flushed to disk, then renamed over the target
(``os.replace``, atomic on POSIX and Windows). A failure or an interrupt
removes the temporary file; a process killed mid-write leaves at most a
``.tmp-*`` file beside the untouched target. The new file gets the mode any
newly created file gets (``0o666`` less the umask, usually 0644), so
checkpoints and exported generators can be shared. :func:`write_together`
writes several files as one (``age.py``'s results of a photo): all of them
or none, an interrupt held back while they are renamed into place.

A write that fails (a full disk, a read-only or vanished folder, a quota)
raises :class:`WriteError`, one line naming the file and the cause: ``cannot
write PATH: no space left on device``. Writers that do not report an errno
(``torch.save`` says only ``unexpected pos``) are recognised and, when the
folder has no space left, reported as such (:func:`write_failure`).
:func:`check_writable_folder` finds an unusable output folder (a file, a
link to nothing, read-only) before any work is spent, and
:func:`check_replaceable` a read-only file that a new one would replace.

JSON files hold ``null`` where a value is not a finite number
(:func:`strict_json`): strict JSON has no NaN or infinity.

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
import math
import os
import signal
import stat
import tempfile
import threading
from contextlib import contextmanager
from typing import Any, Dict, Iterator, List, Mapping, Optional, Union

__all__ = ["TEMP_PREFIX", "WriteError", "atomic_file", "broken_link", "check_replaceable", "check_writable_folder",
           "interrupts_held", "remove_if_empty", "remove_stale_temporaries", "strict_json", "write_bytes",
           "write_failure", "write_text", "write_together"]

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


def _temporary(path: str) -> str:
    """A new empty temporary file beside ``path`` (its folder created if missing), named
    ``.tmp-XXXX<suffix>`` with ``path``'s suffix; a failure is a :class:`WriteError` naming ``path``."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        if os.path.isdir(path):
            raise IsADirectoryError(errno.EISDIR, f"{path} is a folder")
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=TEMP_PREFIX, suffix=os.path.splitext(path)[1], dir=folder)
        os.close(fd)
    except OSError as exc:
        raise _write_error(path, exc) from exc
    return tmp


def _write_error(path: str, exc: OSError) -> WriteError:
    """The :class:`WriteError` of an :class:`OSError` met writing ``path``."""
    return exc if isinstance(exc, WriteError) else WriteError(path, write_failure(exc) or str(exc), exc.errno)


def _finish(tmp: str) -> None:
    """Flush a written temporary file to disk and give it a new file's mode."""
    with open(tmp, "rb+") as fh:
        os.fsync(fh.fileno())
    _give_new_file_mode(tmp)  # after the writer: some (safetensors) replace the file with their own 0600 one


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _as_write_error(exc: BaseException, path: str) -> Optional[WriteError]:
    """``exc`` as a :class:`WriteError` naming ``path`` when it is a write failure not yet
    reported as one; None otherwise (the exception is to be raised as it is)."""
    if isinstance(exc, WriteError) or not isinstance(exc, (OSError, RuntimeError)):
        return None
    reason = write_failure(exc, os.path.dirname(os.path.abspath(path)))
    return None if reason is None else WriteError(path, reason, getattr(exc, "errno", None))


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
    tmp = _temporary(path)
    try:
        yield tmp
        _finish(tmp)
        os.replace(tmp, path)
    except BaseException as exc:
        _unlink_quietly(tmp)
        error = _as_write_error(exc, path)
        if error is None:
            raise
        raise error from exc


#: The Ctrl-Cs that came while :func:`interrupts_held` held them back.
_HELD: List[int] = []


def _hold(signum: int, frame: Any) -> None:
    _HELD.append(signum)


@contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold back Ctrl-C (SIGINT) until the block ends, then raise the KeyboardInterrupt it asked for.

    For work that must not be cut in two: files renamed into place together,
    and the count of what is written. The KeyboardInterrupt replaces an
    exception the block raised (the user asked to stop). Blocks nest (the
    outermost one raises). Nothing is held where Ctrl-C would not raise
    KeyboardInterrupt anyway: outside the main thread, or where a handler of
    its own (``train.py``'s graceful stop) or SIG_IGN is installed.
    """
    if (threading.current_thread() is not threading.main_thread()
            or signal.getsignal(signal.SIGINT) is not signal.default_int_handler):
        yield
        return
    signal.signal(signal.SIGINT, _hold)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        interrupted = bool(_HELD)
        _HELD.clear()
        if interrupted:
            raise KeyboardInterrupt


def write_together(contents: Mapping[PathLike, bytes]) -> None:
    """Write several files as one: either every one gets its new content, or none changes.

    Each content goes to a temporary file beside its target (as
    :func:`atomic_file`), flushed to disk; only when all are written are
    they renamed to their targets, one after the other, with Ctrl-C held
    back until the last rename (:func:`interrupts_held`; hold it around the
    call as well to count what was written). A failure or an interrupt before then
    removes the temporaries and leaves every target as it was. A failure
    raises :class:`WriteError` naming the file (only a rename failing
    midway, a folder vanishing, can leave the first files renamed).

    >>> import os, tempfile
    >>> folder = tempfile.mkdtemp()
    >>> write_together({os.path.join(folder, "a.txt"): b"a", os.path.join(folder, "b.txt"): b"b"})
    >>> sorted(os.listdir(folder))
    ['a.txt', 'b.txt']
    """
    temporaries: Dict[str, str] = {}
    try:
        for target, data in contents.items():
            path = os.fspath(target)
            tmp = temporaries[path] = _temporary(path)
            try:
                with open(tmp, "wb") as fh:
                    fh.write(data)
                _finish(tmp)
            except OSError as exc:
                raise _write_error(path, exc) from exc
        with interrupts_held():
            for path, tmp in list(temporaries.items()):
                try:
                    os.replace(tmp, path)
                except OSError as exc:
                    raise _write_error(path, exc) from exc
                del temporaries[path]
    finally:
        for tmp in temporaries.values():
            _unlink_quietly(tmp)


def write_bytes(path: PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    write_together({path: data})


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
    write_bytes(path, text.encode("utf-8"))


def strict_json(value: Any) -> Any:
    """``value`` with every non-finite float (NaN, infinity) replaced by None, for strict JSON.

    ``json.dumps`` writes NaN and infinity as ``NaN`` and ``Infinity``,
    which strict JSON readers refuse; the example's JSON files
    (``metrics.jsonl``, the evaluation's results) hold ``null`` there
    instead.

    Parameters
    ----------
    value : Any
        A float, or dicts, lists and tuples of values (nested); anything
        else is kept as it is.

    Returns
    -------
    Any
        ``value`` with its non-finite floats replaced by None; tuples
        become lists, as JSON writes them.

    Examples
    --------
    >>> strict_json({"a": float("nan"), "b": [1.0, float("-inf")], "c": "x"})
    {'a': None, 'b': [1.0, None], 'c': 'x'}
    """
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    return value


def broken_link(path: PathLike) -> Optional[str]:
    """``"a link to TARGET, which does not exist"`` when ``path`` is a symbolic link to nothing, else None."""
    if not os.path.islink(path) or os.path.exists(path):
        return None
    try:
        target = os.readlink(path)
    except OSError:
        target = "a missing path"
    return f"a link to {target}, which does not exist"


def check_writable_folder(folder: PathLike, what: str = "output folder") -> None:
    """Create ``folder`` if missing and prove that files can be created in it.

    Raises :class:`WriteError` (one line naming the folder) for a path that
    is a file or a link to nothing, a folder that cannot be created, or one
    where a file cannot be created (read-only, no permission, no space):
    before any work is spent.
    """
    folder = os.fspath(folder)
    link = broken_link(folder)
    if link is not None:
        raise WriteError(folder, f"the {what} is {link}: create that folder or remove the link", errno.ENOENT)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise WriteError(folder, f"the {what} is a file, not a folder", errno.ENOTDIR)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(prefix=TEMP_PREFIX, dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise WriteError(folder, f"the {what} is not writable ({write_failure(exc) or exc})", exc.errno) from exc


def check_replaceable(path: PathLike) -> None:
    """Refuse to replace a read-only file: :class:`WriteError` when ``path`` is a file without write permission.

    :func:`atomic_file` renames a new file over the old one, which the
    folder's permissions allow whatever the file's own; a file made
    read-only is protected by its owner, so writers call this first. The
    file's mode bits are read (the superuser may write anything, yet a
    read-only file is still refused).
    """
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return  # absent (or unreadable: the write reports it)
    if stat.S_ISREG(mode) and (not mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH) or not os.access(path, os.W_OK)):
        raise WriteError(os.fspath(path), f"the file is read-only (mode {stat.S_IMODE(mode):04o}): make it writable "
                                          "to replace it, or write elsewhere", errno.EACCES)


def remove_if_empty(folder: PathLike) -> bool:
    """Remove ``folder`` if nothing is in it (a folder a script created and wrote nothing into); returns whether."""
    try:
        if not os.listdir(folder):
            os.rmdir(folder)
            return True
    except OSError:
        pass
    return False


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
