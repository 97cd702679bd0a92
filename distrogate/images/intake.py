"""Import an external disk image (a Fedora Cloud qcow2, say) without ever writing to it.

The format and the backing chain are checked with ``qemu-img``; the file's digest is recorded
and re-checked on demand; VMs boot it through UEFI firmware on an overlay, configured by a
cloud-init NoCloud seed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distrogate import paths
from distrogate.artifacts import now_utc, read_manifest, write_manifest
from distrogate.errors import InputError
from distrogate.fsutil import sha256_file
from distrogate.images import qemuimg
from distrogate.images.artifact import IMAGE_KINDS, BootMode, ImageArtifact, ImageManifest

log = logging.getLogger(__name__)

FORMATS = ("qcow2", "raw")
INTAKE_VERSION = 2  # bump when the checks change: earlier imports are inspected again


def inspect_disk(path: Path, allow_backing: Sequence[Path] | None = None) -> dict[str, Any]:
    """Inspect ``path`` as an untrusted disk image; its ``qemu-img info``, or InputError.

    The format comes from the file's name and header (see :func:`qemuimg.sniff_format`) and
    is stated to qemu-img, never probed; the backing chain is followed only through local
    files in the image's folder or an ``allow_backing`` folder (default: ``--allow-backing``).
    """
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    fmt = qemuimg.sniff_format(path)
    allow = qemuimg.allowed_backing_dirs() if allow_backing is None else tuple(allow_backing)
    chain = qemuimg.backing_chain(path, fmt, allow)
    if fmt == "raw":
        with path.open("rb") as handle:
            handle.seek(510)
            signature = handle.read(2)
        if signature != b"\x55\xaa":
            raise InputError(f"{path}: not a bootable disk image: read as raw data, "
                             "it has no partition table")
    for layer in chain:
        if layer.fmt == "qcow2":
            qemuimg.check(layer.path, layer.fmt)
    return {"format": fmt, "virtual-size": chain[0].virtual_size,
            "backing-chain": [str(layer.path) for layer in chain[1:]]}


def import_image(path: Path, name: str | None = None, store: Path | None = None,
                 allow_backing: Sequence[Path] | None = None) -> ImageArtifact:
    """Record ``path`` as an external image (never modified) and return its artifact."""
    path = path.resolve()
    info = inspect_disk(path, allow_backing)
    stat = path.stat()
    key = hashlib.sha256(f"{INTAKE_VERSION}|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()
                         ).hexdigest()[:16]
    directory = (store or paths.image_store()) / f"ext-{key}"
    if read_manifest(directory, IMAGE_KINDS) is not None:
        return ImageArtifact.load(directory)
    digest = sha256_file(path)
    manifest: ImageManifest = {
        "name": name or path.name.split(".")[0],
        "kind": "imported",
        "boot": str(BootMode.FIRMWARE),
        "source": str(path),
        "release": None,
        "glibc": None,
        "kernel": None,
        "has_guest_agent": None,
        "imported_at": now_utc(),
        "disk": {"path": str(path), "format": info["format"], "sha256": digest,
                 "virtual_size": info.get("virtual-size"), "size": stat.st_size,
                 "mtime_ns": stat.st_mtime_ns},
    }
    directory.mkdir(parents=True, exist_ok=True)
    write_manifest(directory, manifest)
    log.info("imported %s (%s, sha256 %s)", path, info["format"], digest[:12])
    return ImageArtifact.load(directory)


def verify_unchanged(image: ImageArtifact) -> None:
    """Raise if the image's disk file no longer has the digest recorded for it."""
    actual = sha256_file(image.disk)
    if actual != image.digest:
        raise InputError(f"{image.disk}: image changed on disk (sha256 {actual[:12]}, "
                         f"recorded {image.digest[:12]})")
