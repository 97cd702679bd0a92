"""Build an image spec into a cached artifact (qcow2, kernel, initrd, manifest.json).

A spec without ``base`` is bootstrapped with mmdebstrap from the host's own apt configuration;
a derived spec starts from its base's cached tree and applies only its own additions. The cache
key is the resolved spec's digest, so the second build of the same spec is a lookup.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
import uuid
from pathlib import Path
from typing import Any

from distrogate import paths, proc
from distrogate.artifacts import cached_build, now_utc, read_manifest, write_manifest
from distrogate.errors import CommandError, InputError, SpecError
from distrogate.fsutil import sha256_file
from distrogate.images.artifact import IMAGE_KINDS, BootMode, ImageArtifact, ImageManifest
from distrogate.images.bootstrap import installed_packages, mmdebstrap
from distrogate.images.chroot import chroot_run
from distrogate.images.disk import MissingBootFile, build_disk, find_boot_files, kernel_cmdline
from distrogate.images.spec import FileEntry, ImageSpec
from distrogate.logsteps import step

log = logging.getLogger(__name__)

COMMAND_TIMEOUT = 900
ROOTFS_TAR = "rootfs.tar"


def artifact_dir(spec: ImageSpec, store: Path | None = None) -> Path:
    """Where the artifact for ``spec`` lives in the store."""
    return (store or paths.image_store()) / spec.digest


def _load(directory: Path) -> ImageArtifact | None:
    if read_manifest(directory, IMAGE_KINDS) is None:
        return None
    return ImageArtifact.load(directory)


def cached(spec: ImageSpec, store: Path | None = None) -> ImageArtifact | None:
    """The cached artifact for ``spec``, or None."""
    return _load(artifact_dir(spec, store))


def build_image(spec: ImageSpec, store: Path | None = None) -> ImageArtifact:
    """Return the artifact for ``spec``, building it (and its bases) if it is not cached.

    Safe to call from several processes at once: one builds, the others wait and reuse.
    """
    store = store or paths.image_store()

    def build(work: Path) -> None:
        if spec.base is not None:
            build_image(spec.base, store)
        with step("build image %s (%s, %s)", spec.name, spec.release, spec.digest[:12]):
            _build(spec, store, work)

    return cached_build(store, spec.digest, load=_load, build=build, what=f"image {spec.name}")


def _build(spec: ImageSpec, store: Path, work: Path) -> None:
    root = work / "root"
    started = time.monotonic()
    if spec.base is None:
        _bootstrap(spec, root)
        packages: tuple[str, ...] = ()
        files, commands = spec.files, spec.commands
    else:
        with step("unpack base tree %s", spec.base.name):
            root.mkdir()
            proc.run(["tar", "-C", root, "--numeric-owner", "--xattrs", "-xf",
                      artifact_dir(spec.base, store) / ROOTFS_TAR], timeout=600)
        packages, files, commands = spec.delta_from_base()
    _customize(spec, root, packages, files, commands)
    root_uuid = str(uuid.UUID(spec.digest[:32]))
    cmdline = kernel_cmdline(root_uuid, spec.kernel_cmdline)
    (root / "etc/fstab").write_text(f"UUID={root_uuid} / ext4 rw,errors=remount-ro 0 1\n")
    try:
        boot = find_boot_files(root)
    except MissingBootFile as exc:  # name the spec, not the work tree
        raise SpecError(spec.path, "packages", str(exc)) from exc
    shutil.copyfile(boot.kernel, work / "vmlinuz")
    shutil.copyfile(boot.initrd, work / "initrd.img")
    packages_map = installed_packages(root)
    os_release = _os_release(root)
    with step("pack tree"):
        proc.run(["tar", "-C", root, "--numeric-owner", "--xattrs", "-cf",
                  work / ROOTFS_TAR, "."], timeout=600)
    with step("make disk (%d GiB, ext4 + ESP)", spec.disk_size_gib):
        raw = work / "disk.raw"
        build_disk(root, boot, raw, size_gib=spec.disk_size_gib, root_uuid=root_uuid,
                   cmdline=cmdline)
        proc.run(["qemu-img", "convert", "-O", "qcow2", raw, work / "disk.qcow2"],
                 timeout=900)
        raw.unlink()
    shutil.rmtree(root)
    disk = work / "disk.qcow2"
    manifest: ImageManifest = {
        "name": spec.name,
        "kind": "built",
        "boot": str(BootMode.DIRECT),
        "spec": str(spec.path),
        "spec_digest": spec.digest,
        "base": spec.base.name if spec.base else None,
        "release": os_release.get("VERSION_CODENAME", spec.release),
        "os_release": os_release,
        "packages": packages_map,
        "glibc": packages_map.get("libc6", "unknown"),
        "kernel": boot.version,
        "has_guest_agent": "qemu-guest-agent" in packages_map,
        "root_uuid": root_uuid,
        "cmdline": cmdline,
        "built_at": now_utc(),
        "build_seconds": round(time.monotonic() - started, 1),
        "disk": {"path": "disk.qcow2", "format": "qcow2", "sha256": sha256_file(disk)},
        "kernel_sha256": sha256_file(work / "vmlinuz"),
        "initrd_sha256": sha256_file(work / "initrd.img"),
    }
    write_manifest(work, manifest)


def _bootstrap(spec: ImageSpec, root: Path) -> None:
    with step("mmdebstrap %s (%d packages)", spec.release, len(spec.packages)):
        mmdebstrap(root, spec.release, spec.packages)


def _customize(spec: ImageSpec, root: Path, packages: tuple[str, ...],
               files: tuple[Any, ...], commands: tuple[str, ...]) -> None:
    if packages:
        with step("install %s", " ".join(packages)):
            chroot_run(root, "apt-get update -q && apt-get install -y -q --no-install-recommends "
                       + " ".join(packages), timeout=COMMAND_TIMEOUT, network=True)
    for index, entry in enumerate(files):  # a derived spec's own: its keys count from 0
        write_in_tree(root, entry, spec.path, f"files[{index}].path")
    for index, command in enumerate(commands):
        with step("command %d of %s: %s", index + 1, spec.name, command[:60]):
            try:
                chroot_run(root, command, timeout=COMMAND_TIMEOUT)
            except CommandError as exc:
                raise InputError(f"{spec.path}: key 'commands[{index}]' failed: {exc}") from None
    (root / "etc/hostname").write_text("distrogate\n")
    machine_id = root / "etc/machine-id"
    machine_id.write_text("")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)


def write_in_tree(root: Path, entry: FileEntry, spec: Path, key: str) -> Path:
    """Write ``entry`` into the tree at ``root``; refused (naming ``spec`` and ``key``) when a
    symlink in the tree would take the write outside it.

    Every symlink on the way is followed as the host would follow it; the final file is
    opened with ``O_NOFOLLOW``, and folders that do not exist yet are created as plain
    folders.
    """
    real_root = Path(os.path.realpath(root))
    target = Path(os.path.realpath(root / entry.path.lstrip("/")))
    if not target.is_relative_to(real_root) or target == real_root:
        link = _escaping_link(root, entry.path)
        raise SpecError(spec, key, f"{entry.path!r} is written through a symlink that leaves the "
                        f"image tree ({link})")
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(entry.content)
        os.fchmod(handle.fileno(), entry.mode)
    return target


def _escaping_link(root: Path, path: str) -> str:
    current = root
    for part in path.strip("/").split("/"):
        current = current / part
        if current.is_symlink():
            return f"/{current.relative_to(root)} -> {os.readlink(current)}"
    return "a symlink"


def _os_release(root: Path) -> dict[str, str]:
    for candidate in ("etc/os-release", "usr/lib/os-release"):
        path = root / candidate
        if path.exists():
            values = {}
            for line in path.read_text().splitlines():
                key, sep, value = line.partition("=")
                if sep:
                    values[key] = value.strip().strip('"')
            return values
    return {}
