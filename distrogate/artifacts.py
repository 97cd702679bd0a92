"""The one cached-build skeleton: VM images, nspawn container trees and the collation sorter.

An artifact is a folder ``<store>/<key>`` holding its files and a ``manifest.json`` whose
``kind`` says what it is. :func:`cached_build` returns the artifact when it is there; otherwise
one process builds it (an exclusive lock ``<store>/.<key>.lock``; the others wait, then reuse
it) in a work folder ``<store>/.tmp-<key>`` that is renamed into place only when complete, so a
killed build never leaves a half artifact behind a key, and the next build clears its work
folder first.

Each kind has its own store (see :mod:`distrogate.paths`) and its own typed manifest
(``ImageManifest``, ``TreeManifest``, ``SorterManifest``); :func:`read_manifest` refuses a
manifest of another kind, so one kind's listing never trips over another's.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from distrogate.errors import InfraError
from distrogate.fsutil import atomic_write_json, remove_tree
from distrogate.locking import file_lock

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
T = TypeVar("T")


def now_utc() -> str:
    """The time an artifact was built, as its manifest records it (UTC, seconds)."""
    return datetime.now(UTC).isoformat(timespec="seconds")


def read_manifest(directory: Path, kinds: Collection[str]) -> dict[str, Any] | None:
    """The manifest in ``directory`` if it is readable and its ``kind`` is one of ``kinds``;
    None otherwise (no manifest, unreadable, or another kind of artifact)."""
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(manifest, dict) or manifest.get("kind") not in kinds:
        return None
    return manifest


def write_manifest(directory: Path, manifest: Mapping[str, Any]) -> None:
    """Write ``manifest`` (which names its ``kind``) into the artifact folder ``directory``."""
    if "kind" not in manifest:
        raise ValueError("an artifact manifest must name its kind")
    atomic_write_json(directory / MANIFEST, dict(manifest))


def cached_build(store: Path, key: str, *, load: Callable[[Path], T | None],
                 build: Callable[[Path], None], what: str, timeout: float = 3600) -> T:
    """The artifact ``<store>/<key>``, built first if it is not there.

    ``load(directory)`` returns the artifact in a folder, or None when it is absent or
    incomplete. ``build(work)`` fills the empty folder ``work`` with the artifact's files and
    its manifest (:func:`write_manifest`); it runs at most once at a time per key, across
    processes and threads, and waits at most ``timeout`` seconds for another builder.
    """
    final = store / key
    hit = load(final)
    if hit is not None:
        log.info("%s: cache hit %s", what, key[:24])
        return hit
    with file_lock(store / f".{key}.lock", timeout=timeout, what=f"build of {what}"):
        hit = load(final)
        if hit is not None:
            return hit
        work = store / f".tmp-{key}"
        remove_tree(work)  # what a killed build left
        work.mkdir(parents=True)
        try:
            build(work)
            if final.is_symlink() or final.is_file():  # an older layout: a file, not a folder
                final.unlink()
            shutil.rmtree(final, ignore_errors=True)
            work.rename(final)
        except BaseException:
            remove_tree(work)
            raise
    built = load(final)
    if built is None:
        raise InfraError(f"{what}: the build finished but {final} holds no complete artifact")
    return built
