"""Private files and folders: biometric stores are readable by their owner only.

Folders holding watchlists, alert captures, exports and the key ring are made ``0700`` and the
files in them ``0600`` (on POSIX; on Windows the user profile's ACLs apply instead). The process
umask is not relied on: a shared machine's default ``022`` would leave every file world-readable.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700

#: SQLite side files that hold the same data as the database while a transaction runs.
_SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) if needed and make the folder itself 0700."""
    path.mkdir(parents=True, exist_ok=True, mode=DIR_MODE)
    _chmod(path, DIR_MODE)
    return path


def private_file(path: Path) -> None:
    """Make an existing file 0600 (and its SQLite side files, when present)."""
    _chmod(path, FILE_MODE)
    for suffix in _SQLITE_SIDE_FILES:
        side = path.with_name(path.name + suffix)
        # another connection's transaction may end and delete its journal at any moment, even
        # between this check and the chmod; a side file that is gone holds nothing to protect
        if side.exists():
            _chmod(side, FILE_MODE, missing_ok=True)


def write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, the new file created 0600 from the start."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def is_private(path: Path) -> bool:
    """True if nobody but the owner can read or write ``path`` (always True off POSIX)."""
    if os.name != "posix":
        return True
    return not stat.S_IMODE(path.stat().st_mode) & 0o077


def _chmod(path: Path, mode: int, *, missing_ok: bool = False) -> None:
    if os.name != "posix":
        return
    try:
        if stat.S_IMODE(path.stat().st_mode) != mode:
            os.chmod(path, mode)
    except PermissionError:
        # someone else's file (a shared read-only watchlist): reading it is still allowed
        pass
    except FileNotFoundError:
        if not missing_ok:
            raise
