"""The nspawn tree's mount mode on a real VM: the promoted image with the PostgreSQL node's
container tree disk. The tree is installed by mounting the disk read-only (timed), by copy
over that (timed), then by mounting again in place of the copy; the container boots on the
read-only root with the shared network of a PostgreSQL node, PostgreSQL's binary runs inside,
the root is read-only and the volumes are writable; after a reboot of the VM the mount and the
(enabled) container are back."""

from __future__ import annotations

import shlex

import pytest

from distrogate.guest.machine import Machine
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.run import LabRun
from distrogate.nspawn.install import install, mount_unit, tree_disk
from distrogate.nspawn.tree import build_container
from distrogate.scenario.pgnode import container_spec, shared_network_settings
from fixtures.recording import Recorder

# a roll-forward VM test (3 min here): make nightly, not make test
pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.nightly]

BOOT_TIMEOUT = 300


def _wait_booted(machine: Machine, name: str) -> None:
    machine.wait_until_succeeds(f"systemctl -M {shlex.quote(name)} is-system-running "
                                "| grep -qx -e running -e degraded", timeout=BOOT_TIMEOUT)


def _postgres_runs(machine: Machine, name: str) -> str:
    out = machine.succeed(["systemd-run", "-M", name, "--wait", "--pipe", "--quiet",
                           "/usr/lib/postgresql/15/bin/postgres", "--version"], timeout=120)
    assert "PostgreSQL" in out and " 15." in out, out
    return out


def test_mount_mode_boots_the_container_and_survives_a_reboot(
        lab_run: LabRun, baseline_image: ImageArtifact, record: Recorder) -> None:
    tree = build_container(container_spec())
    name = tree.machine
    target = f"/var/lib/machines/{name}"
    machine = lab_run.boot(baseline_image, role="pgmount", extra_disks=[tree_disk(tree)])
    try:
        fresh = install(machine, tree, copy=False)  # as on a new node
        assert not fresh.copied
        copied = install(machine, tree)  # replaces the mount
        assert copied.copied
        assert machine.execute(["mountpoint", "-q", target]).exit_code != 0
        machine.succeed(["test", "!", "-e", f"/etc/systemd/system/{mount_unit(tree.spec)}"])
        mounted = install(machine, tree, copy=False)  # replaces the copy
        assert not mounted.copied
        record.measure("nspawn_install_mount", fresh.seconds, "s")
        record.measure("nspawn_install_copy", copied.seconds, "s")
        record.measure("nspawn_install_mount_over_copy", mounted.seconds, "s")
        print(f"install: mount {fresh.seconds}s, copy {copied.seconds}s, "
              f"mount over the copy {mounted.seconds}s")

        options = machine.succeed(["findmnt", "-no", "OPTIONS,SOURCE", target], timeout=30)
        assert options.split(",")[0] == "ro", options
        assert machine.succeed(["systemctl", "is-enabled", mount_unit(tree.spec)],
                               timeout=30).strip() == "enabled"
        for volume in tree.spec.volumes:
            machine.succeed(["test", "-d", f"/srv/{name}/{volume.name}"], timeout=30)
        machine.succeed(["test", "-d", f"/srv/{name}/data/15/main"], timeout=30)

        machine.write_file(f"/etc/systemd/nspawn/{name}.nspawn",
                           shared_network_settings(tree.spec).encode(), mode=0o644)
        machine.succeed(["machinectl", "enable", name], timeout=60)
        machine.succeed(["machinectl", "start", name], timeout=BOOT_TIMEOUT)
        _wait_booted(machine, name)
        print(_postgres_runs(machine, name))
        # the root is read-only, the volumes are not
        root = machine.execute(["systemd-run", "-M", name, "--wait", "--pipe", "--quiet",
                                "/bin/touch", "/dg-probe"], timeout=60)
        assert root.exit_code != 0, root
        machine.succeed(["systemd-run", "-M", name, "--wait", "--pipe", "--quiet",
                         "/bin/touch", "/var/lib/postgresql/dg-probe"], timeout=60)
        machine.succeed(["test", "-f", f"/srv/{name}/data/dg-probe"], timeout=30)
        print(machine.execute(f"journalctl -b -u systemd-nspawn@{name} --no-pager "
                              "| grep -iv 'systemd\\[1\\]: ' | head -40", timeout=60).stdout_text)

        machine.reboot(timeout=BOOT_TIMEOUT)
        machine.wait_until_succeeds(["mountpoint", "-q", target], timeout=120)
        _wait_booted(machine, name)
        _postgres_runs(machine, name)
        machine.succeed(["test", "-f", f"/srv/{name}/data/dg-probe"], timeout=30)
    finally:
        lab_run.destroy(machine)
