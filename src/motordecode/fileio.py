"""Atomic file writing: write under a temporary name next to the target, then rename."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


def _default_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_write_path(final: str | os.PathLike):
    """Yield a temporary path in ``final``'s directory; on success it replaces ``final``.

    On any error the temporary file is removed, so ``final`` is either absent, the old file, or the
    complete new file. The new file gets the usual permissions (0666 less the umask).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, _default_mode())
        os.replace(tmp, final)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
