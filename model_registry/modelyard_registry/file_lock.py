"""An exclusive lock on a file that spans processes; the kernel frees it when its holder dies.

Used where processes that share no database must take turns: SQLite migrations of one home
(``db.migration_lock``) and pulls into one Python environment (``bundled.pull_lock``).
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Hold an ``flock`` on ``path`` (created if missing), waiting for any other holder."""
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


__all__ = ["file_lock"]
