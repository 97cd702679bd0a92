"""Import an external disk image (a Fedora Cloud qcow2, say) without ever writing to it.

The format and the backing chain are checked with ``qemu-img``; the file's digest is recorded
and re-checked on demand; VMs boot it through UEFI firmware on an overlay, configured by a
cloud-init NoCloud seed.
"""

from __future__ import annotations

import hashlib
import json
import logging
from pathlib import Path
from typing import Any

from distrogate import paths, proc
from distrogate.artifacts import now_utc, read_manifest, write_manifest
from distrogate.errors import CommandError, InputError
from distrogate.fsutil import sha256_file
from distrogate.images.artifact import IMAGE_KINDS, BootMode, ImageArtifact, ImageManifest

log = logging.getLogger(__name__)

FORMATS = ("qcow2", "raw")


def inspect_disk(path: Path) -> dict[str, Any]:
    """``qemu-img info`` of ``path`` (with its backing chain), validated; InputError if unusable."""
    if not path.exists():
        raise InputError(f"{path}: no such file")
    if not path.is_file():
        raise InputError(f"{path}: not a regular file")
    try:
        result = proc.run(["qemu-img", "info", "--output=json", "--backing-chain", "-U", path],
                          timeout=60)
    except CommandError as exc:
        raise InputError(f"{path}: not a disk image qemu can open: {exc}") from None
    chain: Any = json.loads(result.text)
    info: dict[str, Any] = chain[0] if isinstance(chain, list) else chain
    fmt = info.get("format")
    if fmt not in FORMATS:
        raise InputError(f"{path}: unsupported image format {fmt!r} (expected qcow2 or raw)")
    if fmt == "raw":
        with path.open("rb") as handle:
            handle.seek(510)
            signature = handle.read(2)
        hint = " although it is named .qcow2" if path.suffix == ".qcow2" else ""
        if signature != b"\x55\xaa":
            raise InputError(f"{path}: not a bootable disk image{hint}: qemu-img sees raw data "
                             "and there is no partition table")
    else:
        check = proc.run(["qemu-img", "check", "-U", "--output=json", path], timeout=600,
                         check=False)
        if check.returncode not in (0,):
            raise InputError(f"{path}: corrupt qcow2 image (qemu-img check exited "
                             f"{check.returncode}: {check.stderr.decode(errors='replace').strip()[:200]})")
    for layer in chain[1:] if isinstance(chain, list) else []:
        backing = Path(layer.get("filename", ""))
        if not backing.exists():
            raise InputError(f"{path}: backing file {backing} does not exist")
    return info


def import_image(path: Path, name: str | None = None, store: Path | None = None) -> ImageArtifact:
    """Record ``path`` as an external image (never modified) and return its artifact."""
    path = path.resolve()
    info = inspect_disk(path)
    stat = path.stat()
    key = hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()[:16]
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
