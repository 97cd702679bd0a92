"""Warm templates kept across labs and runs: ``$DISTROGATE_HOME/templates/<key>/``.

A template is an image booted once to a running system and saved (memory and devices); a VM
of that image then *restores* a clone of it in about a second instead of booting for 20. A
saved state only restores onto the same virtual hardware under the same QEMU, so the key
covers everything that must match: the image digest and kernel command line, the
acceleration, memory, vCPUs, the number of network interfaces, every extra disk (shared
read-only disks by file identity, a node's own writable disks by shape), and the QEMU and
libvirt versions. Any change gives a new key, so a stale template is never restored; ``lab
gc`` removes templates whose image is gone or whose QEMU or libvirt is no longer the one
installed.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from distrogate import paths, proc
from distrogate.errors import InfraError
from distrogate.fsutil import atomic_write_json
from distrogate.images.artifact import ImageArtifact
from distrogate.lab import virt
from distrogate.lab.lab import PREFIX, Lab
from distrogate.lab.xml import Accel, DomainSpec, ExtraDisk, Nic, network_xml
from distrogate.locking import file_lock
from distrogate.logsteps import step

log = logging.getLogger(__name__)

FORMAT = 2  # bump when what a template holds changes
READY = "ready.json"
MAKE_TIMEOUT = 900.0


@dataclass(frozen=True)
class Hardware:
    """The virtual hardware a template is made for (and its clones must have)."""

    accel: Accel
    memory_mib: int
    vcpus: int
    nics: int
    extra_disks: tuple[ExtraDisk, ...] = ()


def store() -> Path:
    """Where templates are kept."""
    return paths.home() / "templates"


def lock_path(key: str) -> Path:
    """The lock held while the template ``key`` is made (the reaper reads it too)."""
    return store() / f"{key}.lock"


def versions() -> dict[str, int]:
    """The installed QEMU binary and libvirt library a saved state depends on."""
    qemu = Path("/usr/bin/qemu-system-x86_64")
    stat = qemu.stat() if qemu.exists() else None
    return {"libvirt": virt.library_version(),
            "qemu_size": stat.st_size if stat else 0,
            "qemu_mtime": int(stat.st_mtime) if stat else 0}


def _disk_identity(disk: ExtraDisk) -> dict[str, object]:
    if disk.readonly:  # shared as it is: the same file, unchanged
        stat = disk.path.stat()
        return {"shared": str(disk.path), "size": stat.st_size, "mtime": stat.st_mtime_ns,
                "fmt": disk.fmt, "serial": disk.serial, "cache": disk.cache_mode}
    own: dict[str, object] = {"own": disk_size(disk.path), "fmt": disk.fmt,
                              "serial": disk.serial, "cache": disk.cache_mode}
    if disk.discard:  # only when set: the keys of existing templates stay as they were
        own["discard"] = disk.discard
    return own


def template_key(image: ImageArtifact, hardware: Hardware, conn: virt.Connection) -> str:
    """The key of the template for ``image`` on ``hardware`` under this QEMU and libvirt."""
    material = {"format": FORMAT, "image": image.digest, "cmdline": image.cmdline,
                "accel": str(hardware.accel), "memory": hardware.memory_mib,
                "vcpus": hardware.vcpus, "nics": hardware.nics,
                "disks": [_disk_identity(d) for d in hardware.extra_disks],
                "daemon_qemu": conn.getVersion(), "daemon_libvirt": conn.getLibVersion(),
                **versions()}
    return hashlib.sha256(json.dumps(material, sort_keys=True).encode()).hexdigest()[:16]


def disk_size(path: Path) -> int:
    """The virtual size in bytes of a disk image file (``qemu-img info``)."""
    info = proc.run(["qemu-img", "info", "-U", "--output=json", path], timeout=30)
    return int(json.loads(info.text)["virtual-size"])


def create_disk(path: Path, size_bytes: int, fmt: str) -> None:
    """A blank disk image of ``size_bytes`` (sparse)."""
    proc.run(["qemu-img", "create", "-q", "-f", fmt, path, str(size_bytes)], timeout=60)


def make_filesystem(path: Path, filesystem: str, label: str) -> None:
    """Make a ``filesystem`` (ext4) labelled ``label`` on the raw disk image ``path``, on
    the host. The inode tables and the journal are written here, not lazily by the guest's
    kernel after the first mount (``ext4lazyinit`` would spend a TCG guest's CPU on it); one
    inode per 64 KiB is plenty for a database's files. Features newer than what the guests'
    kernels of the last years mount (``orphan_file``, ``metadata_csum_seed``) are left out."""
    proc.run([f"mkfs.{filesystem}", "-q", "-F", "-L", label, "-i", "65536",
              "-E", "nodiscard,lazy_itable_init=0,lazy_journal_init=0",
              "-O", "^orphan_file,^metadata_csum_seed", path], timeout=120)


MakeTemplate = Callable[[DomainSpec, Path], None]


def ensure(lab: Lab, image: ImageArtifact, hardware: Hardware, spec_for: Callable[..., DomainSpec],
           make: MakeTemplate) -> Path:
    """The directory of a ready template of ``image`` on ``hardware``, made if need be.

    ``spec_for(name=, uuid=, disk=, console_log=, nics=, extra_disks=)`` gives the template
    VM's hardware; ``make(spec, directory)`` boots it to a settled system and saves it as
    ``directory/state.sav``. Concurrent runs, in this lab or others, wait for one maker.
    """
    conn = lab.conn()
    key = template_key(image, hardware, conn)
    tdir = store() / key
    if (tdir / READY).exists():
        return tdir
    with file_lock(lock_path(key), timeout=MAKE_TIMEOUT, what=f"template of {image.name}"):
        if (tdir / READY).exists():
            return tdir
        shutil.rmtree(tdir, ignore_errors=True)
        tdir.mkdir(parents=True)
        name = f"{PREFIX}{lab.state.lab_id}-tpl{key}"
        network = f"{name}-net"
        bridge = "dgt" + hashlib.sha256(name.encode()).hexdigest()[:10]
        with step("make warm template of %s (%s)", image.name, key):
            try:
                conn.networkCreateXML(network_xml(network, bridge))
                disks = []
                for index, disk in enumerate(hardware.extra_disks):
                    if disk.readonly:
                        disks.append(disk)
                        continue
                    blank = tdir / f"data{index}.{disk.fmt}"
                    create_disk(blank, disk_size(disk.path), disk.fmt)
                    disks.append(ExtraDisk(blank, disk.fmt, False, disk.serial, disk.cache))
                nics = tuple(Nic(network, f"52:54:00:ee:{index:02x}:01")
                             for index in range(hardware.nics))
                spec = spec_for(name=name, uuid=str(uuid.uuid4()), disk=tdir / "disk.qcow2",
                                console_log=tdir / "console.log", nics=nics,
                                extra_disks=tuple(disks))
                make(spec, tdir)
                atomic_write_json(tdir / READY, {"image": image.summary(),
                                                 "image_disk": str(image.disk),
                                                 "accel": str(hardware.accel),
                                                 "versions": versions()})
            except BaseException:
                shutil.rmtree(tdir, ignore_errors=True)
                raise
            finally:
                with contextlib.suppress(virt.LibvirtError):
                    conn.networkLookupByName(network).destroy()
    return tdir


def prune() -> list[str]:
    """Remove templates that can never be restored again: their image file is gone, QEMU or
    libvirt changed since they were made, or they were never finished."""
    removed = []
    current = versions()
    root = store()
    for tdir in sorted(p for p in root.glob("*") if p.is_dir()) if root.is_dir() else []:
        with contextlib.suppress(InfraError), \
                file_lock(lock_path(tdir.name), timeout=0.1, what="template prune"):
            try:
                ready = json.loads((tdir / READY).read_text())
            except (OSError, ValueError):
                ready = None
            stale = (ready is None or not Path(ready.get("image_disk", "")).exists()
                     or ready.get("versions") != current)
            if stale:
                shutil.rmtree(tdir, ignore_errors=True)
                lock_path(tdir.name).unlink(missing_ok=True)
                removed.append(str(tdir))
    return removed
