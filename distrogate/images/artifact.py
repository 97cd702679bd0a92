"""An image ready to boot: a built one (direct kernel boot) or an imported one (firmware)."""

from __future__ import annotations

import enum
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypedDict

from distrogate.errors import InputError

#: The manifest kinds that are VM images (the image store holds nothing else).
IMAGE_KINDS = ("built", "imported")


class BootMode(enum.StrEnum):
    """How a VM starts from this image."""

    DIRECT = "direct"  # the image's own kernel and initrd, passed by the hypervisor
    FIRMWARE = "firmware"  # UEFI firmware, the image's bootloader, cloud-init NoCloud seed


class DiskRecord(TypedDict, total=False):
    """The disk file of an image: where, what format, its digest (and, imported, its stat)."""

    path: str
    format: str
    sha256: str
    virtual_size: int | None
    size: int
    mtime_ns: int
    chain: list[list[str]]  # an imported image's backing files: [path, format], top first


class ImageManifest(TypedDict, total=False):
    """``manifest.json`` of an image: a built one (from a spec) or an imported disk file."""

    kind: Literal["built", "imported"]
    name: str
    boot: str
    release: str | None
    glibc: str | None
    kernel: str | None
    has_guest_agent: bool | None
    disk: DiskRecord
    # built images
    spec: str
    spec_digest: str
    base: str | None
    os_release: dict[str, str]
    packages: dict[str, str]
    root_uuid: str
    cmdline: str
    built_at: str
    build_seconds: float
    kernel_sha256: str
    initrd_sha256: str
    # imported images
    source: str
    imported_at: str


@dataclass(frozen=True)
class ImageArtifact:
    """A bootable image and what is known about it (from ``manifest.json``)."""

    name: str
    directory: Path
    disk: Path
    disk_format: str
    boot: BootMode
    manifest: ImageManifest

    @property
    def digest(self) -> str:
        """SHA-256 of the disk file's bytes."""
        return str(self.manifest["disk"]["sha256"])

    @property
    def disk_chain(self) -> tuple[tuple[Path, str], ...]:
        """The disk file and its backing files (file, format), top first: what a VM's overlay
        sits on."""
        below = self.manifest["disk"].get("chain", [])
        return ((self.disk, self.disk_format), *((Path(p), f) for p, f in below))

    @property
    def kernel(self) -> Path | None:
        """The kernel for direct boot (built images only)."""
        return self.directory / "vmlinuz" if self.boot is BootMode.DIRECT else None

    @property
    def initrd(self) -> Path | None:
        """The initrd for direct boot (built images only)."""
        return self.directory / "initrd.img" if self.boot is BootMode.DIRECT else None

    @property
    def cmdline(self) -> str:
        """The kernel command line for direct boot."""
        return str(self.manifest.get("cmdline", ""))

    @property
    def release(self) -> str:
        """The distribution release (os-release VERSION_CODENAME), or "unknown"."""
        return str(self.manifest.get("release") or "unknown")

    @property
    def glibc(self) -> str:
        """The glibc (libc6) version, or "unknown"."""
        return str(self.manifest.get("glibc") or "unknown")

    @property
    def kernel_version(self) -> str:
        """The kernel version, or "unknown"."""
        return str(self.manifest.get("kernel") or "unknown")

    def summary(self) -> dict[str, str]:
        """Name, digest, release, glibc and kernel: how reports identify an image."""
        return {"name": self.name, "digest": self.digest, "release": self.release,
                "glibc": self.glibc, "kernel": self.kernel_version, "boot": str(self.boot)}

    @classmethod
    def load(cls, directory: Path) -> ImageArtifact:
        """Read an artifact from its store directory."""
        manifest_path = directory / "manifest.json"
        try:
            manifest: ImageManifest = json.loads(manifest_path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(f"{manifest_path}: unreadable image manifest: {exc}") from None
        if not isinstance(manifest, dict) or manifest.get("kind") not in IMAGE_KINDS:
            kind = manifest.get("kind") if isinstance(manifest, dict) else None
            raise InputError(f"{manifest_path}: not an image manifest (kind {kind!r})")
        disk = Path(manifest["disk"]["path"])
        if not disk.is_absolute():
            disk = directory / disk
        return cls(
            name=str(manifest["name"]),
            directory=directory,
            disk=disk,
            disk_format=str(manifest["disk"]["format"]),
            boot=BootMode(manifest["boot"]),
            manifest=manifest,
        )
