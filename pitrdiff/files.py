"""Atomic, owner-only file writes, and temporary files that never outlive a run.

Every file pitrdiff writes holds table data or describes it, so it is created
readable by its owner only (``0o600``; directories ``0o700``), and it appears
under its final name only once complete: written to a temporary file in the
same directory, flushed to disk, then renamed over the target.

Temporary files and directories are named so they can be recognised and
swept: ``.NAME.pitrdiff-tmp-HOST-PID-RANDOM`` beside the target NAME
(:func:`temp_path`), ``pitrdiff-KIND-HOST-PID-RANDOM`` for working directories
(:func:`private_temp_dir`). An interrupted run (Ctrl-C, SIGTERM) removes its
own on the way out; a run killed outright (``kill -9``) cannot, so the next
write of the same target, or the next working directory of the same kind,
removes those whose process on this host is gone (:func:`sweep_stale_temps`).
A temporary file of another host (a shared file system) is left alone unless
it is older than :data:`FOREIGN_TEMP_AGE_S`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import orjson

from pitrdiff.errors import StorageError

FILE_MODE = 0o600
DIR_MODE = 0o700

TEMP_MARK = ".pitrdiff-tmp-"
# A temporary file of another host is swept only when older than this (seconds).
FOREIGN_TEMP_AGE_S = 24 * 3600


def _host_tag() -> str:
    return hashlib.sha1(socket.gethostname().encode("utf-8")).hexdigest()[:8]


def _owner_tag() -> str:
    """``HOST-PID-``: who made a temporary file, so a later run can tell if it is stale."""
    return f"{_host_tag()}-{os.getpid()}-"


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def _stale(path: Path, tag: str) -> bool:
    """Whether a temporary file or directory whose owner tag is ``tag`` was left by a dead run."""
    host, _, rest = tag.partition("-")
    pid_text = rest.partition("-")[0]
    if host == _host_tag() and pid_text.isdigit():
        return int(pid_text) != os.getpid() and not _process_alive(int(pid_text))
    try:
        return time.time() - path.lstat().st_mtime > FOREIGN_TEMP_AGE_S
    except OSError:
        return False


def _remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


_swept: set[Path] = set()
# Every directory this process made a temporary file or directory in: what
# remove_own_temps() looks through when a signal cut a write short.
_temp_parents: set[Path] = set()


def temp_path(target: str | os.PathLike[str]) -> Path:
    """A new, empty, owner-only temporary file beside ``target``, named to be recognised.

    Stale temporary files of the same target (left by a killed run) are removed
    first. The caller renames the file over ``target`` or removes it; prefer
    :func:`atomic_path` or :func:`atomic_writer`, which do.

    Raises
    ------
    StorageError
        When the directory cannot be written.
    """
    target = Path(target)
    make_dir(target.parent)
    if target not in _swept:  # once per target and process: checkpoints are rewritten often
        sweep_stale_temps(target)
        _swept.add(target)
    _temp_parents.add(target.parent)  # before the file exists: a signal may come right after
    try:
        fd, name = tempfile.mkstemp(
            prefix=f".{target.name}{TEMP_MARK}{_owner_tag()}", dir=target.parent
        )
        os.fchmod(fd, FILE_MODE)
        os.close(fd)
    except OSError as exc:
        raise storage_error(exc, target, "write") from exc
    return Path(name)


def sweep_stale_temps(target: str | os.PathLike[str]) -> list[Path]:
    """Remove the temporary files of ``target`` that a killed run left; return them.

    Only files named by :func:`temp_path` for this very target are considered,
    and only those whose process is gone (see the module's docstring).
    """
    target = Path(target)
    prefix = f".{target.name}{TEMP_MARK}"
    removed = []
    with contextlib.suppress(OSError):
        for entry in target.parent.iterdir():
            if entry.name.startswith(prefix) and _stale(entry, entry.name[len(prefix) :]):
                _remove_tree(entry)
                removed.append(entry)
    return removed


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike[str]) -> Iterator[Path]:
    """A temporary path for a writer that opens files by name (pyarrow, DuckDB's COPY).

    On success the file is flushed to disk and renamed over ``target``; on any
    exception, Ctrl-C and SIGTERM included, it is removed and ``target`` is untouched.
    """
    tmp = temp_path(target)
    try:
        yield tmp
        os.chmod(tmp, FILE_MODE)
        with open(tmp, "rb+") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _remove_quietly(str(tmp))
        raise storage_error(exc, target, "write") from exc
    except BaseException:
        _remove_quietly(str(tmp))
        raise


@contextlib.contextmanager
def private_temp_dir(kind: str, parent: str | os.PathLike[str] | None = None) -> Iterator[Path]:
    """An owner-only working directory ``pitrdiff-KIND-…``, removed on the way out.

    Directories of the same kind in ``parent`` (default: the system temp
    directory) whose run was killed are removed first. On any exit, Ctrl-C and
    SIGTERM included, this one is removed with its contents (DuckDB spill files).
    """
    base = Path(parent) if parent is not None else Path(tempfile.gettempdir())
    prefix = f"pitrdiff-{kind}-"
    with contextlib.suppress(OSError):
        for entry in base.iterdir():
            tag = entry.name[len(prefix) :]
            if entry.name.startswith(prefix) and entry.is_dir() and _stale(entry, tag):
                _remove_tree(entry)
    _temp_parents.add(base)
    try:
        path = Path(tempfile.mkdtemp(prefix=prefix + _owner_tag(), dir=base))  # mode 0700
    except OSError as exc:
        raise storage_error(exc, base, "create a temporary directory in") from exc
    try:
        yield path
    finally:
        _remove_tree(path)


def remove_own_temps() -> list[Path]:
    """Remove every temporary file and directory this process made and still holds; return them.

    A signal can land between the moment a temporary file is created and the
    moment the code that would remove it owns it (inside a constructor, between
    two statements). The CLI calls this once the command has ended, so such a
    file never outlives the run. Complete files have been renamed by then; what
    is left under this process's owner tag is never anything but debris. Only
    for a process that is ending: a working directory still in use (an open
    notebook ``Diff``'s DuckDB spill directory) would be removed too.
    """
    mine = _owner_tag()
    removed = []
    for parent in list(_temp_parents):
        with contextlib.suppress(OSError):
            for entry in parent.iterdir():
                name = entry.name
                own_file = TEMP_MARK + mine in name
                own_dir = name.startswith("pitrdiff-") and f"-{mine}" in name
                if own_file or own_dir:
                    _remove_tree(entry)
                    removed.append(entry)
    return removed


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

    On an exception (Ctrl-C and SIGTERM included) the temporary file is removed
    and ``path`` is untouched; one a killed run left is removed by the next
    write of ``path`` (:func:`temp_path`).
    """
    target = Path(path)
    tmp = temp_path(target)
    try:
        with open(tmp, mode) as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except OSError as exc:
        _remove_quietly(str(tmp))
        raise storage_error(exc, target, "write") from exc
    except BaseException:
        _remove_quietly(str(tmp))
        raise


def write_bytes(path: str | os.PathLike[str], data: bytes | memoryview) -> None:
    """Write ``data`` to ``path`` atomically, owner-only."""
    with atomic_writer(path, "wb") as handle:
        handle.write(data)


def write_json(path: str | os.PathLike[str], document: Any) -> None:
    """Write a JSON document (indented, UTF-8) to ``path`` atomically, owner-only."""
    write_bytes(path, orjson.dumps(document, option=orjson.OPT_INDENT_2) + b"\n")


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(path)
