"""Atomic, owner-only file writes.

Every file pitrdiff writes holds table data or describes it, so it is created
readable by its owner only (``0o600``; directories ``0o700``), and it appears
under its final name only once complete: written to a temporary file in the
same directory, flushed to disk, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from pitrdiff.errors import StorageError

FILE_MODE = 0o600
DIR_MODE = 0o700


def storage_error(exc: OSError, path: str | os.PathLike[str], doing: str) -> StorageError:
    """Describe an ``OSError`` as a one-line :class:`StorageError`."""
    reason = {
        errno.ENOSPC: "no space left on the device",
        errno.EDQUOT: "disk quota exceeded",
        errno.EROFS: "the file system is read-only",
        errno.EACCES: "permission denied",
        errno.EPERM: "operation not permitted",
        errno.ENOENT: "no such file or directory",
        errno.ENOTDIR: "a part of the path is not a directory",
        errno.EISDIR: "it is a directory",
    }.get(exc.errno or 0, exc.strerror or type(exc).__name__)
    return StorageError(f"cannot {doing} {os.fspath(path)}: {reason}")


def make_dir(path: str | os.PathLike[str]) -> Path:
    """Create a directory (and parents) readable by its owner only; return it."""
    target = Path(path)
    try:
        target.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, target, "create directory") from exc
    return target


@contextlib.contextmanager
def atomic_writer(path: str | os.PathLike[str], mode: str = "wb") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it over ``path`` on success.

    On an exception the temporary file is removed and ``path`` is untouched.
    """
    target = Path(path)
    make_dir(target.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise storage_error(exc, target, "write") from exc
    try:
        os.fchmod(fd, FILE_MODE)
        with os.fdopen(fd, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _remove_quietly(tmp)
        raise storage_error(exc, target, "write") from exc
    except BaseException:
        _remove_quietly(tmp)
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, owner-only."""
    with atomic_writer(path, "wb") as handle:
        handle.write(data)


def write_json(path: str | os.PathLike[str], document: Any) -> None:
    """Write a JSON document (indented, UTF-8) to ``path`` atomically, owner-only."""
    write_bytes(path, orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
