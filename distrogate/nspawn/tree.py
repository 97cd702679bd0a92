"""The container tree: a Debian directory tree for systemd-nspawn, built on the host, cached.

A :class:`ContainerSpec` (release, packages, machine name, volumes) is bootstrapped with
mmdebstrap from the host's own apt configuration and packed into a read-only ext4 file system
image (``mkfs.ext4 -d``, no loop mounts). The guest receives that image as an extra read-only
disk and installs the tree under ``/var/lib/machines/<name>`` (see :mod:`.install`).

The artifact lives in ``paths.nspawn_store()/nspawn-<digest>`` (a store of its own, apart from
the VM images) and is built once per digest (:func:`distrogate.artifacts.cached_build`): a
second :func:`build_container` of the same spec is a lookup.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypedDict, cast

from distrogate import paths, proc
from distrogate.artifacts import cached_build, now_utc, read_manifest, write_manifest
from distrogate.errors import InputError
from distrogate.fsutil import sha256_file
from distrogate.images.bootstrap import installed_packages, mmdebstrap
from distrogate.images.spec import _PACKAGE_RE, RELEASES
from distrogate.logsteps import step

log = logging.getLogger(__name__)

TREE_BUILDER_VERSION = 1  # bump when the build procedure changes what a tree contains
IMAGE_FILE = "tree.ext4"
TREE_KIND: Literal["nspawn-tree"] = "nspawn-tree"

# Leave documentation, manual pages and translations out of the tree (smaller disk, faster copy).
_PATH_EXCLUDES = ("/usr/share/doc/*", "/usr/share/man/*", "/usr/share/info/*",
                  "/usr/share/locale/*", "/usr/share/lintian/*")
_PATH_INCLUDES = ("/usr/share/doc/*/copyright",)


@dataclass(frozen=True)
class Volume:
    """A writable host directory (under ``/srv/<machine>/``) bound into the container."""

    name: str  # the directory's name under /srv/<machine>/
    target: str  # the absolute path inside the container
    seed: bool = True  # filled with the tree's content at ``target`` on installation


DEFAULT_VOLUMES = (
    Volume("data", "/var/lib/postgresql"),
    Volume("config", "/etc/postgresql"),
    Volume("log", "/var/log"),
)


@dataclass(frozen=True)
class ContainerSpec:
    """What the container tree holds and how it is laid out on the node."""

    machine: str = "pgbox"
    release: str = "bookworm"
    packages: tuple[str, ...] = ("systemd", "systemd-sysv", "dbus", "postgresql")
    volumes: tuple[Volume, ...] = field(default=DEFAULT_VOLUMES)

    def __post_init__(self) -> None:
        if self.release not in RELEASES:
            raise InputError(f"nspawn container release {self.release!r}: one of "
                             + ", ".join(RELEASES))
        if not _valid_machine_name(self.machine):
            raise InputError(f"nspawn machine name {self.machine!r}: use 1-32 characters "
                             "a-z, 0-9 and '-', starting with a letter")
        for pkg in self.packages:
            if not _PACKAGE_RE.match(pkg):
                raise InputError(f"nspawn container package {pkg!r}: not a Debian package name")
        for required in ("systemd", "dbus"):
            if required not in self.packages:
                raise InputError(f"nspawn container packages must include {required!r} "
                                 "(the container boots systemd and machined talks to its bus)")
        targets = [v.target for v in self.volumes]
        names = [v.name for v in self.volumes]
        if len(set(targets)) != len(targets) or len(set(names)) != len(names):
            raise InputError("nspawn volumes: names and targets must be unique")
        for volume in self.volumes:
            if not volume.target.startswith("/") or volume.target == "/":
                raise InputError(f"nspawn volume {volume.name!r}: target must be an absolute "
                                 "path below /")
            if not _valid_machine_name(volume.name):
                raise InputError(f"nspawn volume name {volume.name!r}: use a-z, 0-9 and '-'")

    def content(self) -> dict[str, Any]:
        """What determines the built tree; the cache key is a digest of this."""
        return {
            "builder": TREE_BUILDER_VERSION,
            "machine": self.machine,
            "release": self.release,
            "packages": sorted(set(self.packages)),
            "volumes": [[v.name, v.target, v.seed] for v in self.volumes],
        }

    @property
    def digest(self) -> str:
        """SHA-256 of :meth:`content`: equal digests mean equal trees."""
        return hashlib.sha256(json.dumps(self.content(), sort_keys=True).encode()).hexdigest()

    @property
    def machine_id(self) -> str:
        """The container's fixed /etc/machine-id (its journal lives under this id)."""
        return self.digest[:32]

    @classmethod
    def from_config(cls, config: dict[str, Any]) -> ContainerSpec:
        """A spec from the policy's ``suites: {nspawn: {container: {...}}}`` mapping.

        Known keys: ``machine``, ``release``, ``packages`` (added to the defaults).
        """
        raw = config.get("container") or {}
        if not isinstance(raw, dict):
            raise InputError("suites.nspawn.container: expected a mapping")
        unknown = sorted(set(raw) - {"machine", "release", "packages"})
        if unknown:
            raise InputError(f"suites.nspawn.container: unknown key {unknown[0]!r} "
                             "(known: machine, release, packages)")
        default = cls()
        extra = raw.get("packages", [])
        if not isinstance(extra, list) or not all(isinstance(p, str) for p in extra):
            raise InputError("suites.nspawn.container.packages: expected a list of names")
        packages = default.packages + tuple(p for p in extra if p not in default.packages)
        return cls(machine=str(raw.get("machine", default.machine)),
                   release=str(raw.get("release", default.release)), packages=packages)


def _valid_machine_name(name: str) -> bool:
    return (1 <= len(name) <= 32 and name[0].isascii() and name[0].isalpha()
            and all(c.isascii() and (c.isdigit() or c.islower() or c == "-") for c in name))


class TreeManifest(TypedDict):
    """``manifest.json`` of a container tree."""

    kind: Literal["nspawn-tree"]
    spec: dict[str, Any]
    spec_digest: str
    machine: str
    machine_id: str
    release: str
    packages: dict[str, str]
    postgresql: dict[str, str]  # version, unit, data_dir, config_dir
    image: dict[str, Any]  # path, bytes, sha256
    built_at: str
    build_seconds: float


@dataclass(frozen=True)
class ContainerArtifact:
    """A built container tree: the ext4 image and what is known about it."""

    spec: ContainerSpec
    directory: Path
    manifest: TreeManifest

    @property
    def image(self) -> Path:
        """The ext4 file system image holding the tree at its root."""
        return self.directory / IMAGE_FILE

    @property
    def machine(self) -> str:
        """The machine name the tree is installed as."""
        return self.spec.machine

    @property
    def service(self) -> str:
        """The PostgreSQL cluster unit inside the container."""
        return str(self.manifest["postgresql"]["unit"])


def artifact_dir(spec: ContainerSpec, store: Path | None = None) -> Path:
    """Where the artifact for ``spec`` lives."""
    return (store or paths.nspawn_store()) / f"nspawn-{spec.digest}"


def cached(spec: ContainerSpec, store: Path | None = None) -> ContainerArtifact | None:
    """The cached artifact for ``spec``, or None."""
    return _loader(spec)(artifact_dir(spec, store))


def _loader(spec: ContainerSpec) -> Callable[[Path], ContainerArtifact | None]:
    def load(directory: Path) -> ContainerArtifact | None:
        manifest = read_manifest(directory, (TREE_KIND,))
        if manifest is None or not (directory / IMAGE_FILE).is_file():
            return None
        return ContainerArtifact(spec, directory, cast(TreeManifest, manifest))
    return load


def build_container(spec: ContainerSpec, store: Path | None = None) -> ContainerArtifact:
    """Return the artifact for ``spec``, building it if it is not cached (one builder at a time)."""
    default_store = store is None
    store = store or paths.nspawn_store()

    def build(work: Path) -> None:
        legacy = artifact_dir(spec, paths.image_store())
        if default_store and _loader(spec)(legacy) is not None:
            try:  # kept among the images by an older version: reuse it
                legacy.rename(work)
                log.info("nspawn tree %s: moved out of the image store", spec.machine)
                return
            except OSError as exc:
                log.info("nspawn tree %s: cannot move %s (%s); building", spec.machine, legacy, exc)
        with step("build nspawn tree %s (%s, %s)", spec.machine, spec.release, spec.digest[:12]):
            _build(spec, work)

    return cached_build(store, artifact_dir(spec, store).name, load=_loader(spec), build=build,
                        what=f"nspawn tree {spec.machine}")


def _build(spec: ContainerSpec, work: Path) -> None:
    root = work / "root"
    started = time.monotonic()
    _bootstrap(spec, root)
    _customize(spec, root)
    pg = _postgresql(root)
    packages = installed_packages(root)
    with step("make ext4 image of the tree"):
        size = make_ext4(root, work / IMAGE_FILE, label="dg-nspawn",
                         fs_uuid=_uuid(spec.digest))
    shutil.rmtree(root)
    manifest: TreeManifest = {
        "kind": TREE_KIND,
        "spec": spec.content(),
        "spec_digest": spec.digest,
        "machine": spec.machine,
        "machine_id": spec.machine_id,
        "release": spec.release,
        "packages": packages,
        "postgresql": pg,
        "image": {"path": IMAGE_FILE, "bytes": size, "sha256": sha256_file(work / IMAGE_FILE)},
        "built_at": now_utc(),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    write_manifest(work, manifest)


def _bootstrap(spec: ContainerSpec, root: Path) -> None:
    options = [f"--dpkgopt=path-exclude={p}" for p in _PATH_EXCLUDES]
    options += [f"--dpkgopt=path-include={p}" for p in _PATH_INCLUDES]
    with step("mmdebstrap %s for nspawn (%s)", spec.release, " ".join(spec.packages)):
        mmdebstrap(root, spec.release, spec.packages, options=options)


def _customize(spec: ContainerSpec, root: Path) -> None:
    """Identity and persistent journal; nothing that needs the tree to be writable later."""
    (root / "etc/machine-id").write_text(spec.machine_id + "\n")
    (root / "etc/hostname").write_text(spec.machine + "\n")
    (root / "var/lib/dbus/machine-id").unlink(missing_ok=True)
    # The journal persists to /var/log/journal/<machine-id> (on the writable log volume), where
    # `journalctl -M` reads it.
    journal = root / "var/log/journal" / spec.machine_id
    journal.mkdir(parents=True, exist_ok=True)
    for target in (v.target for v in spec.volumes):
        (root / target.lstrip("/")).mkdir(parents=True, exist_ok=True)
    (root / "etc/resolv.conf").unlink(missing_ok=True)


def _postgresql(root: Path) -> dict[str, str]:
    """The PostgreSQL cluster that the package's postinst created in the tree."""
    clusters = sorted((root / "etc/postgresql").glob("*/main/postgresql.conf"))
    if not clusters:
        raise InputError(f"{root}: no PostgreSQL cluster in the tree (is postgresql included?)")
    version = clusters[-1].parent.parent.name
    return {"version": version, "unit": f"postgresql@{version}-main.service",
            "data_dir": f"/var/lib/postgresql/{version}/main",
            "config_dir": f"/etc/postgresql/{version}/main"}


def _uuid(digest: str) -> str:
    d = digest[:32]
    return f"{d[:8]}-{d[8:12]}-{d[12:16]}-{d[16:20]}-{d[20:32]}"


def tree_bytes(root: Path) -> int:
    """The bytes the files under ``root`` occupy (allocated blocks, hard links counted once)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
            total += st.st_blocks * 512
    return total


def ext4_size(content_bytes: int) -> int:
    """The file system size (bytes, a multiple of 4 MiB) for a tree of ``content_bytes``.

    A quarter more than the content plus 64 MiB for metadata (inodes, directories), so that
    ``mkfs.ext4 -d`` never runs out of space; the image is sparse, so slack costs nothing.
    """
    if content_bytes < 0:
        raise ValueError("content size must not be negative")
    raw = content_bytes * 5 // 4 + (64 << 20)
    unit = 4 << 20
    return (raw + unit - 1) // unit * unit


def make_ext4(root: Path, image: Path, *, label: str, fs_uuid: str) -> int:
    """Write a sparse ext4 image at ``image`` holding ``root`` (no journal: it is mounted
    read-only). Returns the image's size in bytes."""
    size = ext4_size(tree_bytes(root))
    with image.open("wb") as handle:
        handle.truncate(size)
    proc.run(["mkfs.ext4", "-q", "-F", "-L", label, "-U", fs_uuid, "-O", "^has_journal",
              "-N", str(max(65536, sum(1 for _ in root.rglob("*")) * 5 // 4)),
              "-d", root, image, f"{size // 1024}k"], timeout=900)
    return size
