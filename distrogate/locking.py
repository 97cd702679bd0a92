"""Advisory file locks with a bounded wait (fcntl), used across processes and xdist workers."""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from distrogate.errors import InfraError


@contextlib.contextmanager
def file_lock(path: Path, *, timeout: float, what: str = "",
              shared: bool = False) -> Iterator[None]:
    """Hold an exclusive (or ``shared``) lock on ``path`` for the body; wait at most
    ``timeout`` seconds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise InfraError(
                        f"{path}: still locked by another process after {timeout:g}s"
                        + (f" ({what})" if what else "")) from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)


def is_locked(path: Path) -> bool:
    """True when another process holds the lock on ``path``."""
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
