"""Atomic writes and replacements: a crash at any point leaves the old copy or the new one.

- :func:`atomic_write_bytes`: a temporary ``.NAME.*.tmp`` file in the target's folder,
  flushed and fsynced, renamed over it (the folder fsynced too);
  :func:`remove_temp_files` removes what a killed writer left.
- :func:`replace_folder`: a folder built beside its target is swapped in with
  ``renameat2(RENAME_EXCHANGE)``, else the old one is renamed aside to ``.NAME.aside``
  first; :func:`restore_aside` puts an aside copy back when a kill left the target missing.
- :func:`fault_point`: a test hook that kills the process at a named stage.

Environment (test switches, no effect otherwise): ``GAMEADAPT_FAULT=STAGE[,STAGE...]``
SIGKILLs the process when it reaches a named :func:`fault_point`;
``GAMEADAPT_NO_RENAME_EXCHANGE=1`` makes :func:`replace_folder` take its fallback path.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import json
import os
import shutil
import signal
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .errors import GameadaptError

FAULT_ENV = "GAMEADAPT_FAULT"
NO_EXCHANGE_ENV = "GAMEADAPT_NO_RENAME_EXCHANGE"
AT_FDCWD = -100
RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP}


def fault_point(stage: str) -> None:
    """SIGKILL this process if ``GAMEADAPT_FAULT`` names ``stage`` (a kill-test hook)."""
    wanted = os.environ.get(FAULT_ENV, "")
    if wanted and stage in wanted.split(","):
        os.kill(os.getpid(), signal.SIGKILL)


def fsync_path(path: Path) -> None:
    """Flush a file or a folder (its entries) to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_tree(folder: Path) -> None:
    """Flush every file and folder under ``folder`` (itself included) to disk."""
    for root, _dirs, names in os.walk(folder):
        for name in names:
            fsync_path(Path(root) / name)
        fsync_path(Path(root))


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file + rename.

    Fault stage ``write:NAME`` (e.g. ``write:checkpoint.pt``): after the temporary file is
    written, before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        fault_point(f"write:{path.name}")
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_path(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def remove_temp_files(folder: Path) -> list[Path]:
    """Remove the ``.NAME.*.tmp`` files killed atomic writes left in ``folder``; return them."""
    removed = [p for p in Path(folder).glob(".*.tmp") if p.is_file()]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


def staging_folder_beside(target: Path, kind: str) -> Path:
    """A new empty folder ``PARENT/.NAME.KIND-*`` to build ``target``'s replacement in.

    It gets the old target's permissions, or a new folder's (not ``mkdtemp``'s 0700).
    """
    target = Path(target)
    folder = Path(tempfile.mkdtemp(prefix=f".{target.name}.{kind}-", dir=target.parent))
    if target.is_dir():
        shutil.copymode(target, folder)
    else:
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(folder, 0o777 & ~umask)
    return folder


def aside_path(target: Path) -> Path:
    """Where :func:`replace_folder`'s fallback keeps the old copy: ``PARENT/.NAME.aside``."""
    target = Path(target)
    return target.parent / f".{target.name}.aside"


def restore_aside(target: Path) -> bool:
    """Put the aside copy back if ``target`` is missing (a replacement was killed midway).

    True if it restored one. Safe without a lock: a racing replacement's rename fails
    instead of losing a copy.
    """
    target, aside = Path(target), aside_path(target)
    if target.exists() or not aside.is_dir():
        return False
    try:
        os.rename(aside, target)
    except OSError:
        return False  # a replacement put a new copy in meanwhile
    return True


def remove_aside(target: Path) -> None:
    """Restore, or remove a leftover aside copy beside a present ``target`` (hold its lock)."""
    if not restore_aside(target) and Path(target).exists():
        shutil.rmtree(aside_path(target), ignore_errors=True)


def replace_folder(new: Path, target: Path, fault: str = "replace") -> None:
    """Put the complete folder ``new`` (beside ``target``) in ``target``'s place.

    Either copy stays whole at every instant: ``renameat2(RENAME_EXCHANGE)`` swaps them,
    else the old one is renamed to :func:`aside_path`, the new one in, the aside one removed.
    Fault stages: ``FAULT:aside`` (fallback, old renamed aside), ``FAULT:swapped`` (new in,
    old not yet removed). Hold the target's lock.
    """
    new, target = Path(new), Path(target)
    if not target.exists():
        os.rename(new, target)
        fsync_path(target.parent)
        return
    if _exchange(new, target):
        fsync_path(target.parent)
        fault_point(f"{fault}:swapped")
        shutil.rmtree(new)
        return
    aside = aside_path(target)
    shutil.rmtree(aside, ignore_errors=True)
    os.rename(target, aside)
    fault_point(f"{fault}:aside")
    try:
        os.rename(new, target)
    except OSError as exc:
        restore_aside(target)
        raise GameadaptError(f"cannot put the new {target} in place ({exc.strerror}); the "
                             f"previous one is kept") from None
    fsync_path(target.parent)
    fault_point(f"{fault}:swapped")
    shutil.rmtree(aside)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two paths atomically; False where the kernel or filesystem cannot."""
    if os.environ.get(NO_EXCHANGE_ENV, "") not in ("", "0"):
        return False
    renameat2 = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if renameat2 is None:
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    renameat2.restype = ctypes.c_int
    if renameat2(AT_FDCWD, os.fsencode(first), AT_FDCWD, os.fsencode(second),
                 RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, f"cannot swap {first} and {second}: {os.strerror(code)}")


@contextlib.contextmanager
def created_folders(path: Path) -> Iterator[Path]:
    """Make ``path`` (and missing parents); if the block fails, remove the empty ones made."""
    path = Path(path)
    missing = []
    current = path
    while not current.exists() and current.parent != current:
        missing.append(current)
        current = current.parent
    try:
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise GameadaptError(f"cannot create the folder {path}: {exc.strerror}") from None
        yield path
    except BaseException:
        for folder in missing:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        raise
