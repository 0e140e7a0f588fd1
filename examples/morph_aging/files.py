"""Atomic file writes: a file is either its old self or completely new, never torn.

Every file the example writes as a whole (checkpoints, pictures, reports,
JSON, exported generators, the cached age classifier) goes through
:func:`atomic_file`: the content is written to a uniquely named temporary
file in the target's folder, flushed to disk, then renamed over the target
(``os.replace``, atomic on POSIX and Windows). A failure or an interrupt
removes the temporary file; a process killed mid-write leaves at most a
``.tmp-*`` file beside the untouched target.

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

import os
import tempfile
from contextlib import contextmanager
from typing import Iterator, Union

__all__ = ["atomic_file", "write_text"]

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
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=os.path.splitext(path)[1], dir=folder)
    os.close(fd)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def write_text(path: PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_file(path) as tmp:
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
