"""Install a container tree in a guest: ``/var/lib/machines/<name>``, volumes, ``.nspawn`` file.

The tree arrives as a read-only ext4 disk (an :class:`~distrogate.lab.xml.ExtraDisk` with a
known serial, so it shows up as ``/dev/disk/by-id/virtio-<serial>``). Installation puts it at
``/var/lib/machines/<name>``, seeds the writable volumes ``/srv/<name>/<volume>`` from the tree,
and writes ``/etc/systemd/nspawn/<name>.nspawn`` that locks the container down: read-only
root, the volumes bound writable, a private network with loopback only, no user namespace (the
tree's owners are used as they are).

Two ways to put the tree there:

- copy (the default): ``cp -a`` of the whole disk into a plain directory tree, as on the fleet
  (what the nspawn suite tests); a minute or more under TCG.
- mount (``copy=False``): the disk itself is mounted read-only at ``/var/lib/machines/<name>``
  by a systemd mount unit the script writes and enables (so the container comes back after a
  reboot or a crash of the VM; ``systemd-nspawn@.service`` has
  ``RequiresMountsFor=/var/lib/machines/%i``); only the volumes are copied. Seconds. nspawn
  remounts a ``ReadOnly=yes`` root read-only before it sets anything up inside, so a root
  that is read-only from the start is set up the same way.
"""

from __future__ import annotations

import logging
import shlex
import time
from dataclasses import dataclass

from distrogate.guest.machine import Machine
from distrogate.lab.xml import ExtraDisk
from distrogate.logsteps import step
from distrogate.nspawn.tree import ContainerArtifact, ContainerSpec

log = logging.getLogger(__name__)

DISK_SERIAL = "dg-nspawn-tree"
SOURCE_MOUNT = "/run/distrogate-nspawn-tree"
DEVICE_TIMEOUT = 60
INSTALL_TIMEOUT = 600


def tree_disk(artifact: ContainerArtifact) -> ExtraDisk:
    """The read-only extra disk that carries ``artifact`` into a VM."""
    return ExtraDisk(artifact.image, "raw", True, DISK_SERIAL)


def volume_dir(spec: ContainerSpec, volume: str) -> str:
    """The host (guest VM) directory of a container volume."""
    return f"/srv/{spec.machine}/{volume}"


def nspawn_settings(spec: ContainerSpec) -> str:
    """The ``/etc/systemd/nspawn/<name>.nspawn`` file: the locked-down container.

    Settings files under /etc/systemd/nspawn are trusted, and ``systemd-nspawn@.service`` runs
    with ``--settings=override``, so they win over the unit's defaults (``-U``, a veth link).
    """
    lines = [
        "# written by distrogate: a locked-down service container",
        "[Exec]",
        "Boot=yes",
        "PrivateUsers=no",
        "",
        "[Files]",
        "ReadOnly=yes",
    ]
    lines += [f"Bind={volume_dir(spec, v.name)}:{v.target}" for v in spec.volumes]
    lines += [
        "",
        "[Network]",
        "Private=yes",
        "VirtualEthernet=no",
        "",
    ]
    return "\n".join(lines)


def mount_unit(spec: ContainerSpec) -> str:
    """The name of the systemd mount unit of ``/var/lib/machines/<name>`` (mount mode)."""
    escaped = spec.machine.replace("-", "\\x2d")  # machine names are [a-z0-9-]
    return f"var-lib-machines-{escaped}.mount"


def install_script(spec: ContainerSpec, *, serial: str = DISK_SERIAL, copy: bool = True) -> str:
    """The shell script that installs the tree from the disk with ``serial`` (idempotent):
    copied into a directory (``copy``) or the disk mounted read-only there (see the module)."""
    q = shlex.quote
    device = f"/dev/disk/by-id/virtio-{serial}"
    target = f"/var/lib/machines/{spec.machine}"
    unit = mount_unit(spec)
    unit_path = f"/etc/systemd/system/{unit}"
    # Undo an earlier installation in the other mode first (the mount unit, the mount).
    lines = [
        "set -eu",
        f"if [ -e {q(unit_path)} ]; then",
        f"  systemctl disable --now {q(unit)} >/dev/null 2>&1 || true",
        f"  rm -f {q(unit_path)}",
        "  systemctl daemon-reload",
        "fi",
        f"if mountpoint -q {q(target)}; then umount {q(target)}; fi",
        "mkdir -p /var/lib/machines",
        f"rm -rf {q(target)}",
    ]
    if copy:
        lines += [
            f"src={q(SOURCE_MOUNT)}",
            "mkdir -p \"$src\"",
            f"mountpoint -q \"$src\" || mount -o ro {q(device)} \"$src\"",
            "trap 'umount \"$src\"' EXIT",
            f"cp -a \"$src\" {q(target)}",
            f"rm -rf {q(target + '/lost+found')}",
            f"chmod 0755 {q(target)}",
        ]
    else:
        lines += [
            f"mkdir -p {q(target)}",
            f"cat > {q(unit_path)} <<'DISTROGATE_EOF'\n"
            "# written by distrogate: the container tree's disk, read-only\n"
            "[Unit]\n"
            f"Description=nspawn tree of container {spec.machine} (read-only)\n"
            f"Before=systemd-nspawn@{spec.machine}.service\n"
            "[Mount]\n"
            f"What={device}\n"
            f"Where={target}\n"
            "Type=ext4\n"
            "Options=ro\n"
            "[Install]\n"
            "WantedBy=local-fs.target\n"
            "DISTROGATE_EOF",
            f"systemctl enable --now {q(unit)}",  # enable reloads the manager first
            f"mountpoint -q {q(target)}",
            f"src={q(target)}",
        ]
    lines.append(f"mkdir -p {q('/srv/' + spec.machine)}")
    for volume in spec.volumes:
        directory = volume_dir(spec, volume.name)
        lines.append(f"rm -rf {q(directory)}")
        if volume.seed:
            lines.append(f"cp -a \"$src\"{q(volume.target)} {q(directory)}")
        else:
            lines.append(f"mkdir -p {q(directory)}")
    journal_volume = next((v for v in spec.volumes if v.target in ("/var/log", "/var/log/journal")),
                          None)
    if journal_volume is not None:
        # The container's journal lives in a volume, where nspawn's --link-journal=try-guest
        # does not look: it links /var/log/journal/<id> on the host to the *tree's* directory,
        # hidden in the container under the bind mount. A fleet's host setup re-points the
        # link at the volume once the container runs, so the host's log shipper
        # (journalctl -m, the files under /var/log/journal) reads the container's journal.
        inside = "journal/" if journal_volume.target == "/var/log" else ""
        journal = f"{volume_dir(spec, journal_volume.name)}/{inside}{spec.machine_id}"
        dropin = f"/etc/systemd/system/systemd-nspawn@{spec.machine}.service.d"
        lines += [f"mkdir -p {q(journal)} /var/log/journal {q(dropin)}",
                  f"cat > {q(dropin)}/distrogate-journal.conf <<'DISTROGATE_EOF'\n"
                  "[Service]\n"
                  f"ExecStartPost=/bin/ln -sfn {journal} /var/log/journal/{spec.machine_id}\n"
                  "DISTROGATE_EOF",
                  "systemctl daemon-reload"]
    lines.append("mkdir -p /etc/systemd/nspawn")
    lines.append(f"cat > /etc/systemd/nspawn/{spec.machine}.nspawn <<'DISTROGATE_EOF'\n"
                 f"{nspawn_settings(spec)}DISTROGATE_EOF")
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class Installed:
    """A container installed in a guest."""

    spec: ContainerSpec
    artifact: ContainerArtifact
    seconds: float
    copied: bool = True  # False: the tree's disk is mounted read-only (mount mode)

    @property
    def machine(self) -> str:
        """The container's machine name."""
        return self.spec.machine


def install(machine: Machine, artifact: ContainerArtifact, *, copy: bool = True,
            serial: str = DISK_SERIAL, timeout: float = INSTALL_TIMEOUT) -> Installed:
    """Install ``artifact`` (attached to ``machine`` as the disk with ``serial``): copied into
    a plain directory tree (``copy``, the default) or the disk mounted read-only in its place,
    persistently (``copy=False``; see the module).

    Raises :class:`~distrogate.errors.GuestCommandFailed` if the disk never appears or the
    installation fails.
    """
    started = time.monotonic()
    how = "copy" if copy else "mount"
    with step("install nspawn tree %s in %s (%s)", artifact.machine, machine.name, how):
        machine.wait_until_succeeds(["test", "-b", f"/dev/disk/by-id/virtio-{serial}"],
                                    timeout=DEVICE_TIMEOUT)
        machine.succeed(install_script(artifact.spec, serial=serial, copy=copy),
                        timeout=timeout)
    seconds = round(time.monotonic() - started, 2)
    log.info("nspawn tree %s installed in %s (%s) in %.1fs", artifact.machine, machine.name,
             how, seconds)
    return Installed(artifact.spec, artifact, seconds, copy)
