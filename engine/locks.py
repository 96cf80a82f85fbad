"""Exclusive advisory locks: one process at a time owns a run folder or an output folder.

A lock is ``fcntl.flock(LOCK_EX | LOCK_NB)`` on a lock file (local filesystems); the holder
writes its PID and command into it. A second process gets one :class:`FolderInUseError`
line naming the holder's PID, never a wait. The kernel drops the lock of a dead process, so
a stale lock file never blocks: the next holder takes it and rewrites it. The holder removes
the file when it lets go (after checking, when taking it, that the file it locked is still
the one at the path, so removing it never lets two holders in).

Locks are re-entrant within one process (flock locks belong to an open file description,
so a second ``open`` + ``flock`` would fail): the CLI and the library functions it calls
may both take the same lock.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import GameadaptError
from .files import created_folders

RUN_LOCK_FILE = ".lock"  # a run folder's lock, inside it


class FolderInUseError(GameadaptError):
    """Another process holds the lock of a folder."""


@dataclass
class _Held:
    fd: int
    depth: int


_held: dict[str, _Held] = {}
_guard = threading.Lock()


def lock_beside(target: Path) -> Path:
    """The lock file of a folder that may not exist yet: ``PARENT/.NAME.lock``."""
    target = Path(target)
    return target.parent / f".{target.name}.lock"


@contextlib.contextmanager
def folder_lock(lock_file: Path, folder: Path, command: str) -> Iterator[None]:
    """Hold the exclusive lock ``lock_file`` (of ``folder``) for the ``with`` block.

    ``command`` (e.g. ``"gameadapt train"``) is written into the file for whoever finds
    the folder in use. The lock file's folder must exist.
    """
    key = os.path.abspath(lock_file)
    with _guard:
        held = _held.get(key)
        if held is not None:
            held.depth += 1
        else:
            _held[key] = _Held(_acquire(Path(key), folder, command), 1)
    try:
        yield
    finally:
        with _guard:
            _release(key)


def _acquire(lock_file: Path, folder: Path, command: str) -> int:
    """Open and lock ``lock_file`` (the one now at its path); write the holder into it."""
    while True:
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(fd)
            os.close(fd)
            raise FolderInUseError(f"{folder} is in use by {holder}; wait for it to finish or "
                                   f"stop it") from None
        if _still_at_path(fd, lock_file):
            break
        os.close(fd)  # the holder removed it after we opened it: lock the new one
    os.ftruncate(fd, 0)
    os.write(fd, f"{os.getpid()}\n{command}\n".encode())
    return fd


def _still_at_path(fd: int, path: Path) -> bool:
    try:
        now = os.stat(path)
    except FileNotFoundError:
        return False
    opened = os.fstat(fd)
    return (now.st_dev, now.st_ino) == (opened.st_dev, opened.st_ino)


def _holder(fd: int) -> str:
    """``process PID (COMMAND)`` as the holder wrote it, or ``another process``."""
    try:
        lines = os.pread(fd, 4096, 0).decode("utf-8", "replace").splitlines()
    except OSError:
        lines = []
    if not lines or not lines[0].strip().isdigit():
        return "another process"
    command = f" ({lines[1].strip()})" if len(lines) > 1 and lines[1].strip() else ""
    return f"process {lines[0].strip()}{command}"


def _release(key: str) -> None:
    held = _held[key]
    held.depth -= 1
    if held.depth > 0:
        return
    del _held[key]
    with contextlib.suppress(OSError):
        os.unlink(key)  # still locked: nobody else holds this file now
    os.close(held.fd)


@contextlib.contextmanager
def lock_output(target: Path, command: str) -> Iterator[None]:
    """Own an output folder that may not exist yet (lock file :func:`lock_beside` it).

    Missing parent folders are made, and removed again if the block fails.
    """
    real = Path(os.path.realpath(target))  # one lock file whichever way the path is written
    with created_folders(real.parent):
        with folder_lock(lock_beside(real), Path(target), command):
            yield


def is_held(lock_file: Path) -> bool:
    """True if this process holds ``lock_file``."""
    with _guard:
        return os.path.abspath(lock_file) in _held
