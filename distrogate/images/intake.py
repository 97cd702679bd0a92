"""Import an external disk image (a Fedora Cloud qcow2, say) without ever writing to it.

The format and the backing chain are checked with ``qemu-img`` (see :mod:`.qemuimg`), the file
is copied into the image store and the copy checked again; its digest is recorded and
re-checked on demand; VMs boot the copy through UEFI firmware on an overlay, configured by a
cloud-init NoCloud seed.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from distrogate import paths, proc
from distrogate.artifacts import cached_build, now_utc, read_manifest, write_manifest
from distrogate.errors import InputError
from distrogate.fsutil import sha256_file
from distrogate.images import qemuimg
from distrogate.images.artifact import IMAGE_KINDS, BootMode, ImageArtifact, ImageManifest

log = logging.getLogger(__name__)

FORMATS = ("qcow2", "raw")
COPY_TIMEOUT = 1800.0
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
            "backing-chain": [[str(layer.path.resolve()), layer.fmt] for layer in chain[1:]]}


def import_image(path: Path, name: str | None = None, store: Path | None = None,
                 allow_backing: Sequence[Path] | None = None) -> ImageArtifact:
    """Record ``path`` as an external image and return its artifact.

    The file is checked, then copied into the image store (a backing chain is flattened into
    one file), and the copy is checked again: VMs only ever read the store's copy, which the
    lab mounts read-only, so the user's file is never opened by QEMU, never relabeled, and a
    change to it after the check cannot reach a VM.
    """
    path = path.resolve()
    info = inspect_disk(path, allow_backing)
    stat = path.stat()
    key = hashlib.sha256(f"{INTAKE_VERSION}|{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()
                         ).hexdigest()[:16]

    def load(directory: Path) -> ImageArtifact | None:
        if read_manifest(directory, IMAGE_KINDS) is None:
            return None
        return ImageArtifact.load(directory)

    def build(work: Path) -> None:
        fmt = "qcow2" if info["backing-chain"] else info["format"]
        disk = work / f"disk.{fmt}"
        if info["backing-chain"]:
            proc.run(qemuimg.limited(["qemu-img", "convert", "-U", "-f", info["format"], "-O",
                                      "qcow2", path, disk]), timeout=COPY_TIMEOUT)
        else:
            proc.run(["cp", "--reflink=auto", "--sparse=always", path, disk],
                     timeout=COPY_TIMEOUT)
        disk.chmod(0o644)
        copy = inspect_disk(disk, allow_backing=())
        if copy["format"] != fmt or copy["backing-chain"]:
            raise InputError(f"{path}: the file changed while it was imported")
        digest = sha256_file(disk)
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
            "disk": {"path": disk.name, "format": fmt, "sha256": digest,
                     "virtual_size": copy.get("virtual-size"), "size": stat.st_size,
                     "mtime_ns": stat.st_mtime_ns, "chain": []},
        }
        write_manifest(work, manifest)
        log.info("imported %s (%s, sha256 %s)", path, fmt, digest[:12])

    return cached_build(store or paths.image_store(), f"ext-{key}", load=load, build=build,
                        what=f"import of {path}")


def verify_unchanged(image: ImageArtifact) -> None:
    """Raise if the image's disk file no longer has the digest recorded for it."""
    actual = sha256_file(image.disk)
    if actual != image.digest:
        raise InputError(f"{image.disk}: image changed on disk (sha256 {actual[:12]}, "
                         f"recorded {image.digest[:12]})")
