"""File helpers: atomic writes (temp file + rename), digests, removing work trees."""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

from distrogate import proc

log = logging.getLogger(__name__)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: Path, text: str) -> None:
    """Atomically write UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def atomic_write_json(path: Path, data: Any) -> None:
    """Atomically write JSON, indented and with sorted keys (stable diffs)."""
    atomic_write_text(path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def sha256_file(path: Path, chunk: int = 4 << 20) -> str:
    """The hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def mounts_below(path: Path) -> list[Path]:
    """Mount points at or below ``path`` in this mount namespace, deepest first."""
    top = os.path.realpath(path)
    found: list[Path] = []
    with contextlib.suppress(OSError), open("/proc/self/mountinfo", encoding="utf-8") as info:
        for line in info:
            point = _unescape(line.split()[4])  # field 5: the mount point
            if point == top or point.startswith(top.rstrip("/") + "/"):
                found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def _unescape(field: str) -> str:
    """A mountinfo field with the kernel's octal escapes (``\\040`` for a space) undone."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m[1], 8)), field)


def remove_tree(path: Path) -> None:
    """Remove a work tree, first detaching whatever a killed tool left mounted inside it.

    A bootstrap killed mid-run can leave /proc, /sys or /dev/pts mounted in its tree; removing
    the tree without unmounting would fail half-way, or worse walk into the mounted file system.
    Never raises: a tree that cannot be removed is logged and left; the next build of the same
    spec tries again.
    """
    for point in mounts_below(path):
        result = proc.run(["umount", "--lazy", point], timeout=60, check=False)
        if result.returncode != 0:
            log.warning("cannot unmount %s: %s", point, result.stderr.decode(errors="replace"))
    if mounts_below(path):
        log.warning("not removing %s: file systems are still mounted inside it", path)
        return
    shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        log.warning("could not remove all of %s", path)
