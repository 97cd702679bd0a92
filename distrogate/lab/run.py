"""A run in a lab: the networks and VMs one process boots, all removed when it ends."""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

from distrogate import paths
from distrogate.errors import CandidateDoesNotBoot, GuestError, InputError, LabError
from distrogate.fsutil import atomic_write_json
from distrogate.guest.machine import Machine
from distrogate.images.artifact import BootMode, ImageArtifact
from distrogate.lab import console, virt
from distrogate.lab.lab import PREFIX, Lab
from distrogate.lab.seed import make_seed
from distrogate.lab.template import CloneIdentity, read_xml, rewrite_for_clone, write_clone_state
from distrogate.lab.vm import VM, make_overlay
from distrogate.lab.xml import Accel, DomainSpec, ExtraDisk, network_xml
from distrogate.locking import file_lock
from distrogate.logsteps import step

log = logging.getLogger(__name__)

BOOT_TIMEOUT = 300.0
# no_timer_check: TCG on a loaded host can trip "IO-APIC + timer doesn't work" and panic
BOOT_ARGS = " cloud-init=disabled no_timer_check"
# Runs after every boot, so it is written for speed under TCG (each exec costs ~50-100 ms):
# shell builtins where possible, one `ip` for every interface (virtio-net changes its
# address while up).
_IDENTITY = """\
set -e
[ -n "$3" ] && date -u -s "@$3" >/dev/null
echo "$1" > /proc/sys/kernel/hostname
echo "$1" > /etc/hostname
batch=""
for dev in /sys/class/net/*; do
  name=${dev##*/}
  [ "$name" = lo ] && continue
  read -r address < "$dev/address"
  if [ "$address" != "$2" ]; then
    batch="${batch}link set dev $name address $2 up
"
  fi
done
[ -z "$batch" ] || printf '%s' "$batch" | ip -batch -
"""


def random_mac() -> str:
    """A locally administered MAC in QEMU's range."""
    tail = secrets.token_bytes(3)
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail)


class LabRun:
    """Boots machines for one process; ``close`` (or leaving the ``with``) removes them."""

    def __init__(self, lab: Lab, *, run_id: str | None = None, keep_vms: bool = False) -> None:
        self.lab = lab
        self.run_id = run_id or secrets.token_hex(3)
        self.prefix = f"{PREFIX}{lab.state.lab_id}-{self.run_id}-"
        self.keep_vms = keep_vms
        self._vms: list[VM] = []
        self._networks: list[str] = []
        self._counter = 0
        lock_dir = lab.directory / "runs"
        lock_dir.mkdir(parents=True, exist_ok=True)
        self._lock_path = lock_dir / f"{self.run_id}-{os.getpid()}.lock"
        self._lock_fd = os.open(self._lock_path, os.O_RDWR | os.O_CREAT, 0o644)
        import fcntl

        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)

    def __enter__(self) -> LabRun:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    def _name(self, role: str) -> str:
        self._counter += 1
        clean = re.sub(r"[^a-z0-9]+", "", role.lower())[:16] or "vm"
        return f"{self.prefix}{os.getpid() % 10000}-{clean}{self._counter}"

    # -- networks ------------------------------------------------------------------------------
    def network(self, hint: str = "net") -> str:
        """Create an isolated network (no forwarding, no host address) and return its name."""
        name = self._name(hint)
        bridge = "dgb" + hashlib.sha256(name.encode()).hexdigest()[:10]
        try:
            self.lab.conn().networkCreateXML(network_xml(name, bridge))
        except virt.LibvirtError as exc:
            raise LabError(f"cannot create network {name}: {exc}") from None
        self._networks.append(name)
        return name

    # -- machines ------------------------------------------------------------------------------
    def boot(self, image: ImageArtifact, *, role: str = "vm", network: str | None = None,
             memory_mib: int = 1024, vcpus: int = 2, template: bool = True,
             extra_disks: Sequence[ExtraDisk] = (), timeout: float = BOOT_TIMEOUT) -> Machine:
        """Boot a VM of ``image`` and return its Machine once the guest agent answers.

        Built images restore from the lab's warm template of that image when ``template``
        (the first VM of an image makes the template); others boot cold, and so do VMs with
        ``extra_disks`` (a saved state cannot gain devices). Extra disks appear in the guest
        as /dev/vdb, /dev/vdc, ... and as /dev/disk/by-id/virtio-<serial>.
        """
        if image.manifest.get("has_guest_agent") is False:
            raise NoGuestAgent(f"image {image.name}: it does not carry qemu-guest-agent, which "
                               "distrogate needs to control the guest (add it to the spec)")
        name = self._name(role)
        directory = self.lab.directory / "vms" / name
        directory.mkdir(parents=True)
        network = network or self.network(f"{role}net")
        accel = self.lab.accel(image.kernel)
        disk = directory / "disk.qcow2"
        spec = DomainSpec(
            name=name, uuid=str(uuid.uuid4()), accel=accel, disk=disk,
            console_log=directory / "console.log", mac=random_mac(), network=network,
            memory_mib=memory_mib, vcpus=vcpus, kernel=image.kernel, initrd=image.initrd,
            cmdline=image.cmdline + BOOT_ARGS if image.kernel else "",
            nvram=directory / "nvram.fd" if image.boot is BootMode.FIRMWARE else None,
            description=f"distrogate {image.name} {image.digest[:12]}",
            extra_disks=tuple(extra_disks),
        )
        if image.boot is BootMode.FIRMWARE:
            spec = _with_seed(spec, make_seed(directory / "seed.img", name))
        vm = VM(self.lab.conn(), spec, directory)
        self._vms.append(vm)
        machine = Machine(vm, image=image)
        try:
            if template and image.boot is BootMode.DIRECT and not extra_disks:
                tdir = self._template(image, accel, memory_mib, vcpus)
                with step("restore %s from template", name):
                    self._clone(vm, tdir)
                    machine.wait_for_agent(timeout=60)
                clock = f"{time.time():.3f}"
            else:
                with step("boot %s (%s, %s, cold)", name, image.name, accel):
                    make_overlay(image.disk, image.disk_format, disk)
                    vm.power_on()
                    machine.wait_for_agent(timeout=timeout)
                clock = ""
            machine.succeed(["sh", "-c", _IDENTITY, "identity", name[-60:], spec.mac, clock],
                            timeout=60)
        except GuestError as exc:
            kept = console.keep(vm.console_log, paths.home(), vm.name)
            self._forget(vm)
            raise BootFailure(f"{name} ({image.name}): {exc.args[0].split(' (console log:')[0]}",
                              kept) from None
        except BaseException:
            self._forget(vm)
            raise
        return machine

    def cluster(self, image: ImageArtifact, size: int, *, role: str = "node",
                memory_mib: int = 1024) -> list[Machine]:
        """``size`` machines of ``image`` on one isolated network, with IPv6 addresses
        ``fd42:<net>::<1..size>/64`` set through the agent (``machine.address``)."""
        network = self.network(f"{role}net")
        subnet = hashlib.sha256(network.encode()).hexdigest()[:4]
        machines = []
        for index in range(size):
            machine = self.boot(image, role=f"{role}{index + 1}", network=network,
                                memory_mib=memory_mib)
            address = f"fd42:{subnet}::{index + 1}"
            machine.succeed(
                "dev=$(ls /sys/class/net | grep -v '^lo$' | head -n1); "
                f"ip -6 addr add {address}/64 dev $dev nodad", timeout=30)
            machine.address = address  # type: ignore[attr-defined]
            machines.append(machine)
        return machines

    def destroy(self, machine: Machine) -> None:
        """Remove one machine now (it is removed at ``close`` otherwise)."""
        for vm in list(self._vms):
            if vm.name == machine.name:
                self._forget(vm)

    def _forget(self, vm: VM) -> None:
        vm.remove(keep=self.keep_vms)
        if vm in self._vms:
            self._vms.remove(vm)

    def close(self) -> None:
        """Remove every VM and network of this run and release its lock."""
        errors = []
        for vm in reversed(self._vms):
            try:
                vm.remove(keep=self.keep_vms)
            except Exception as exc:
                errors.append(f"{vm.name}: {exc}")
        self._vms.clear()
        if not self.keep_vms:
            for name in self._networks:
                with contextlib.suppress(virt.LibvirtError):
                    self.lab.conn().networkLookupByName(name).destroy()
            self._networks.clear()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
            self._lock_path.unlink(missing_ok=True)
        if errors:
            log.error("cleanup of run %s: %s", self.run_id, "; ".join(errors))

    # -- templates -----------------------------------------------------------------------------
    def _template(self, image: ImageArtifact, accel: Accel, memory_mib: int, vcpus: int) -> Path:
        key = hashlib.sha256(
            f"{image.digest}|{accel}|{memory_mib}|{vcpus}|{image.cmdline}".encode()).hexdigest()[:12]
        root = self.lab.directory / "templates"
        tdir = root / key
        if (tdir / "ready.json").exists():
            return tdir
        with file_lock(root / f"{key}.lock", timeout=900, what=f"template of {image.name}"):
            if (tdir / "ready.json").exists():
                return tdir
            shutil.rmtree(tdir, ignore_errors=True)
            tdir.mkdir(parents=True)
            name = f"{PREFIX}{self.lab.state.lab_id}-tpl{key}"
            with step("make warm template of %s (%s)", image.name, key):
                self._make_template(image, accel, memory_mib, vcpus, name, tdir)
        return tdir

    def _make_template(self, image: ImageArtifact, accel: Accel, memory_mib: int, vcpus: int,
                       name: str, tdir: Path) -> None:
        conn = self.lab.conn()
        bridge = "dgt" + hashlib.sha256(name.encode()).hexdigest()[:10]
        conn.networkCreateXML(network_xml(name, bridge))
        spec = DomainSpec(name=name, uuid=str(uuid.uuid4()), accel=accel, disk=tdir / "disk.qcow2",
                          console_log=tdir / "console.log", mac=random_mac(), network=name,
                          memory_mib=memory_mib, vcpus=vcpus, kernel=image.kernel,
                          initrd=image.initrd, cmdline=image.cmdline + BOOT_ARGS)
        vm = VM(conn, spec, tdir)
        machine = Machine(vm, image=image)
        try:
            make_overlay(image.disk, image.disk_format, spec.disk)  # type: ignore[arg-type]
            vm.power_on()
            machine.wait_for_agent(timeout=BOOT_TIMEOUT)
            machine.execute("systemctl is-system-running --wait", timeout=120)
            machine.succeed("sync", timeout=60)
            domain = conn.lookupByName(name)
            domain.save(str(tdir / "state.sav"))
            atomic_write_json(tdir / "ready.json", {"image": image.summary(),
                                                    "accel": str(accel)})
        except BaseException:
            vm.power_off_hard()
            shutil.rmtree(tdir, ignore_errors=True)
            raise
        finally:
            with contextlib.suppress(virt.LibvirtError):
                conn.networkLookupByName(name).destroy()

    def _clone(self, vm: VM, tdir: Path) -> None:
        spec = vm.spec
        assert spec.disk is not None and spec.network is not None
        make_overlay(tdir / "disk.qcow2", "qcow2", spec.disk)
        identity = CloneIdentity(name=spec.name, uuid=spec.uuid, disk=spec.disk,
                                 network=spec.network, mac=spec.mac, console_log=spec.console_log)
        state = vm.directory / "state.sav"
        write_clone_state(tdir / "state.sav", state, rewrite_for_clone(read_xml(tdir / "state.sav"),
                                                                       identity))
        try:
            self.lab.conn().restore(str(state))
            vm.attach(self.lab.conn().lookupByName(spec.name))
        except virt.LibvirtError as exc:
            raise LabError(f"{spec.name}: restore from template {tdir} failed: {exc}") from None
        finally:
            state.unlink(missing_ok=True)


class BootFailure(GuestError):
    """The guest did not come up (panic, no agent, stopped): a fact about the image when
    another image boots on the same lab."""


class NoGuestAgent(InputError):
    """The image does not carry qemu-guest-agent (known from its manifest, before booting)."""


def boot_judged(lab_run: LabRun, image: ImageArtifact, *, control: ImageArtifact,
                role: str = "candidate", **options: object) -> Machine:
    """Boot the candidate ``image``; if it does not come up, find out whose fault that is.

    The ``control`` (the baseline) is booted on the same lab with the same options: if it does
    not boot either, the lab is at fault (:class:`LabError`, the test *errors*). If it boots,
    the candidate gets a second boot, because an emulated guest can crash under a loaded host
    (TCG): only a candidate that fails both times, with the baseline booting between, is a
    regression (:class:`CandidateDoesNotBoot`, the test *fails*). An image without the guest
    agent (known from its manifest) fails at once.
    """
    try:
        return lab_run.boot(image, role=role, **options)  # type: ignore[arg-type]
    except (BootFailure, NoGuestAgent) as exc:
        first = exc
    log.warning("%s did not boot (%s); booting the baseline on the same lab to judge it",
                image.name, first)
    try:
        machine = lab_run.boot(control, role="control", **options)  # type: ignore[arg-type]
    except (BootFailure, NoGuestAgent) as exc:
        raise LabError(f"neither image boots on this lab: candidate: {first}; "
                       f"baseline: {exc}") from None
    lab_run.destroy(machine)
    if isinstance(first, NoGuestAgent):
        raise CandidateDoesNotBoot(f"the candidate has no guest agent while the baseline boots "
                                   f"on the same lab: {first}") from None
    try:
        return lab_run.boot(image, role=role, **options)  # type: ignore[arg-type]
    except BootFailure as exc:
        raise CandidateDoesNotBoot(
            f"the candidate image does not boot while the baseline does on the same lab "
            f"(twice, the baseline booting between): {exc}; first: {first}") from None


def _with_seed(spec: DomainSpec, seed: Path) -> DomainSpec:
    from dataclasses import replace

    return replace(spec, extra_disks=(*spec.extra_disks, ExtraDisk(seed, "raw", True, "cidata")))

