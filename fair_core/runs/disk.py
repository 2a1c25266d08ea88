"""A full disk: one error that names the path and the space it needs (`fair` exits 3), nothing lost.

Each writer turns its own way of failing for want of space (OSError ENOSPC or EDQUOT, SQLite's
"database or disk is full", torch's "unexpected pos" from a short write) into :class:`DiskFull`
with :func:`full_at`, which the CLI prints as one line. What was not written is held or redone:
the store keeps whole transactions only, a checkpoint is published whole or not at all, and the
gateway keeps answers it could not store in memory until they are stored (see gateway.py).
"""

from __future__ import annotations

import errno
import shutil
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


class DiskFull(Exception):
    """A write failed for want of space; the message is the line the user reads."""

    @classmethod
    def at(cls, path: str | Path, need: int | None, unstored: int = 0) -> DiskFull:
        """The error for ``path``, which needs about ``need`` bytes (None: not known) more; ``unstored``
        answered calls were held in memory and are lost with the process."""
        free = free_bytes(Path(path))
        said = [f"it needs about {size(need)} more"] if need is not None else []
        said += [f"{size(free)} is free there"] if free is not None else []
        lost = f"; {unstored} answered calls could not be stored: the rerun asks them again" if unstored else ""
        return cls(
            f"disk full: cannot write {path}{': ' + ' and '.join(said) if said else ''}; free some space, then "
            f"rerun the same command to resume{lost}"
        )


def is_full(error: BaseException) -> bool:
    """Whether ``error`` says there was no space left to write."""
    if isinstance(error, OSError):
        return error.errno in (errno.ENOSPC, errno.EDQUOT)
    if isinstance(error, sqlite3.OperationalError):
        return getattr(error, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(error)
    text = str(error)
    if "No space left on device" in text:  # safetensors' I/O error, or a library's wrapping of ENOSPC
        return True
    # torch's zip writer reports a short write as "[enforce fail at inline_container.cc] . unexpected
    # pos N vs M" (or "file write failed"), without the errno
    return isinstance(error, RuntimeError) and ("unexpected pos" in text or "file write failed" in text)


@contextmanager
def full_at(path: str | Path, need: Callable[[], int]) -> Iterator[None]:
    """Writes to ``path`` inside this block that fail for want of space raise DiskFull naming it,
    with ``need()`` bytes as the space it needs (called only then)."""
    try:
        yield
    except DiskFull:
        raise
    except Exception as e:
        if is_full(e):
            raise DiskFull.at(path, need()) from None
        raise


def free_bytes(path: Path) -> int | None:
    """Free space on the file system that holds ``path`` (or its nearest existing folder)."""
    for folder in (path, *path.parents):
        if folder.exists():
            try:
                return shutil.disk_usage(folder).free
            except OSError:
                return None
    return None


def folder_bytes(path: Path) -> int:
    """The size of the files under ``path`` (0 when it does not exist)."""
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def size(n: float) -> str:
    """``n`` bytes as people read them: "512 bytes", "3.4 MB"."""
    units, i = ("bytes", "KB", "MB", "GB", "TB"), 0
    while n >= 1000 and i < len(units) - 1:
        n, i = n / 1000, i + 1
    return f"{n:.0f} bytes" if i == 0 else f"{n:.1f} {units[i]}"
