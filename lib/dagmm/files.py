"""Atomic file writes: a reader never sees half a file, and a crash leaves the old one.

Data downloads, resized-image caches, tables and figures are all written to a
temporary file beside their destination and moved into place only when
complete. The finished file gets the permissions of any new file (``0o666``
less the process umask), not the owner-only ``0o600`` of the temporary file.
"""
from __future__ import annotations

import os
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

__all__ = ["atomic_path", "new_file_mode"]


def new_file_mode() -> int:
    """The mode ``open(path, "w")`` would give a new file: ``0o666`` less the umask."""
    mask = os.umask(0)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return 0o666 & ~mask


@contextmanager
def atomic_path(dest: str | os.PathLike, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a temporary path beside ``dest``; on a clean exit it replaces ``dest``.

    The temporary file exists (empty) when yielded; write to it by name. On an
    exception it is removed and ``dest`` is left as it was. The parent folder
    is created if needed.
    """
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=dest.name + ".", suffix=suffix, dir=dest.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, dest)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
