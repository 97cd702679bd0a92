"""A run in a lab: the networks and VMs one process boots, all removed when it ends."""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
import shutil
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import Any

from distrogate import paths
from distrogate.errors import CandidateDoesNotBoot, GuestError, InputError, LabError
from distrogate.guest.machine import Machine
from distrogate.images.artifact import BootMode, ImageArtifact
from distrogate.lab import console, virt, warm
from distrogate.lab.lab import PREFIX, Lab
from distrogate.lab.network import LabNetwork
from distrogate.lab.seed import make_seed
from distrogate.lab.template import (
    CloneIdentity,
    interface_macs,
    read_xml,
    rewrite_for_clone,
    write_clone_state,
)
from distrogate.lab.vm import VM, make_overlay
from distrogate.lab.xml import Accel, DomainSpec, ExtraDisk, Nic, extra_disk_target, network_xml
from distrogate.logsteps import step

log = logging.getLogger(__name__)

BOOT_TIMEOUT = 300.0
# no_timer_check: TCG on a loaded host can trip "IO-APIC + timer doesn't work" and panic
BOOT_ARGS = " cloud-init=disabled no_timer_check"
# Runs after every boot, so it is written for speed under TCG (each exec costs ~50-100 ms):
# shell builtins where possible, one `ip -batch` for every interface (virtio-net changes its
# address while up). $3: "old=new" MAC pairs (a restored template still has the template's
# MACs); $4: "mac,address/prefix" pairs; $5: writable data disks, whose blocks the template's
# kernel may have cached while they were blank.
_IDENTITY = """\
set -e
[ -n "$2" ] && date -u -s "@$2" >/dev/null
echo "$1" > /proc/sys/kernel/hostname
echo "$1" > /etc/hostname
batch=""
for dev in /sys/class/net/*; do
  name=${dev##*/}
  [ "$name" = lo ] && continue
  read -r address < "$dev/address"
  for pair in $3; do
    if [ "${pair%%=*}" = "$address" ] && [ "${pair#*=}" != "$address" ]; then
      address=${pair#*=}
      batch="${batch}link set dev $name address $address
"
    fi
  done
  batch="${batch}link set dev $name up
"
  for pair in $4; do
    [ "${pair%%,*}" = "$address" ] || continue
    case ${pair#*,} in
      *:*) batch="${batch}addr replace ${pair#*,} dev $name nodad
" ;;
      *) batch="${batch}addr replace ${pair#*,} dev $name
" ;;
    esac
  done
done
[ -z "$batch" ] || printf '%s' "$batch" | ip -batch -
for disk in $5; do blockdev --flushbufs "$disk" 2>/dev/null || true; done
"""


def random_mac() -> str:
    """A locally administered MAC in QEMU's range."""
    tail = secrets.token_bytes(3)
    return "52:54:00:" + ":".join(f"{b:02x}" for b in tail)


@dataclass(frozen=True)
class DataDisk:
    """A writable data disk of a node's own (blank when the node is new): ``/dev/vdX`` in the
    guest and ``/dev/disk/by-id/virtio-<serial>``. ``fmt`` ``raw`` with ``cache`` ``none``
    (and ``discard`` ``unmap``: the guest's TRIM punches the file's blocks out) is what a
    storage benchmark wants; the default is a sparse qcow2. ``filesystem`` ``ext4`` (with
    ``fmt`` ``raw``) makes the file system on the host, labelled with the serial, so that the
    guest needs nothing but ``mount`` (images rarely carry ``mkfs``)."""

    serial: str = "data0"
    size_mib: int = 1024
    fmt: str = "qcow2"
    cache: str = ""
    discard: str = ""
    filesystem: str = ""

    def __post_init__(self) -> None:
        if self.filesystem not in ("", "ext4"):
            raise InputError(f"data disk {self.serial}: unknown file system "
                             f"{self.filesystem!r} (ext4 or none)")
        if self.filesystem and self.fmt != "raw":
            raise InputError(f"data disk {self.serial}: a file system made on the host needs "
                             f"fmt raw, not {self.fmt}")


@dataclass
class _Node:
    """What the run knows of one booted machine, to remove it or boot another in its place."""

    vm: VM
    machine: Machine
    image: ImageArtifact
    role: str
    networks: tuple[LabNetwork, ...]
    hosts: tuple[int, ...]
    macs: tuple[str, ...]
    data_disks: tuple[DataDisk, ...]
    shared_disks: tuple[ExtraDisk, ...]
    options: dict[str, Any]


class LabRun:
    """Boots machines for one process; ``close`` (or leaving the ``with``) removes them."""

    def __init__(self, lab: Lab, *, run_id: str | None = None, keep_vms: bool = False) -> None:
        self.lab = lab
        self.run_id = run_id or secrets.token_hex(3)
        self.prefix = f"{PREFIX}{lab.state.lab_id}-{self.run_id}-"
        self.keep_vms = keep_vms
        self._nodes: dict[str, _Node] = {}
        self._networks: list[LabNetwork] = []
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
    def network(self, hint: str = "net", *, ipv6: bool = True, ipv4: bool = False) -> LabNetwork:
        """Create an isolated network (no forwarding, no host address, no DHCP). Machines on
        it get addresses from its IPv6 prefix, and from an IPv4 one when ``ipv4``."""
        net = LabNetwork.plan(hint, self._name(hint), len(self._networks) + 1, ipv6=ipv6,
                              ipv4=ipv4)
        try:
            self.lab.conn().networkCreateXML(network_xml(net.libvirt_name, net.bridge))
        except virt.LibvirtError as exc:
            raise LabError(f"cannot create network {net.libvirt_name}: {exc}") from None
        self._networks.append(net)
        return net

    # -- machines ------------------------------------------------------------------------------
    def boot(self, image: ImageArtifact, *, role: str = "vm",
             networks: Sequence[LabNetwork] | LabNetwork | None = None,
             memory_mib: int = 1024, vcpus: int = 2, template: bool = True,
             extra_disks: Sequence[ExtraDisk] = (), data_disks: Sequence[DataDisk] = (),
             timeout: float = BOOT_TIMEOUT) -> Machine:
        """Boot a VM of ``image`` and return its Machine once the guest agent answers.

        The VM gets one interface per network in ``networks`` (a network of its own when
        none is given), with the network's addresses (``machine.addresses``,
        ``machine.ip(network)``); ``extra_disks`` (read-only, shared) and ``data_disks``
        (writable, its own, blank) appear in the guest as /dev/vdb, /dev/vdc, ... in that
        order and as /dev/disk/by-id/virtio-<serial>. Images that boot their kernel directly
        restore from a warm template (kept across labs and runs, see ``lab.warm``) when
        ``template``; the first VM of an image on given hardware makes it.
        """
        if isinstance(networks, LabNetwork):
            networks = (networks,)
        nets = tuple(networks) if networks else (self.network(f"{role}net"),)
        hosts = tuple(net.allocate() for net in nets)
        return self._boot(image, role=role, networks=nets, hosts=hosts,
                          macs=tuple(random_mac() for _ in nets), kept_data={},
                          options={"memory_mib": memory_mib, "vcpus": vcpus,
                                   "template": template, "extra_disks": tuple(extra_disks),
                                   "data_disks": tuple(data_disks), "timeout": timeout})

    def replace(self, machine: Machine, image: ImageArtifact, *, keep_data: bool = True,
                role: str | None = None) -> Machine:
        """Stop ``machine`` for good and boot ``image`` in its place: the same networks,
        addresses and MACs, the same hardware, and its data disks (kept as they are when
        ``keep_data``, blank otherwise). Returns the new machine."""
        node = self._nodes.get(machine.name)
        if node is None:
            raise LabError(f"{machine.name}: not a machine of this run")
        with step("replace %s (%s) by a machine of %s%s", machine.name, node.image.name,
                  image.name, ", keeping its data disks" if keep_data else ""):
            node.vm.power_off_hard()
            kept: dict[str, Path] = {}
            if keep_data:
                holding = self.lab.directory / "vms" / f"{node.vm.name}-kept"
                holding.mkdir(parents=True, exist_ok=True)
                for disk in node.data_disks:
                    source = _data_disk_path(node.vm.directory, disk)
                    target = holding / source.name
                    source.rename(target)
                    kept[disk.serial] = target
            self._forget(node.vm)
            try:
                return self._boot(image, role=role or node.role, networks=node.networks,
                                  hosts=node.hosts, macs=node.macs, kept_data=kept,
                                  options=node.options)
            finally:
                for path in kept.values():
                    shutil.rmtree(path.parent, ignore_errors=True)

    def _boot(self, image: ImageArtifact, *, role: str, networks: tuple[LabNetwork, ...],
              hosts: tuple[int, ...], macs: tuple[str, ...], kept_data: dict[str, Path],
              options: dict[str, Any]) -> Machine:
        if image.manifest.get("has_guest_agent") is False:
            raise NoGuestAgent(f"image {image.name}: it does not carry qemu-guest-agent, which "
                               "distrogate needs to control the guest (add it to the spec)")
        name = self._name(role)
        directory = self.lab.directory / "vms" / name
        directory.mkdir(parents=True)
        accel = self.lab.accel(image.kernel)
        data_disks: tuple[DataDisk, ...] = options["data_disks"]
        disks = list(options["extra_disks"])
        for disk in data_disks:
            path = _data_disk_path(directory, disk)
            if disk.serial in kept_data:
                kept_data[disk.serial].rename(path)
            else:
                warm.create_disk(path, disk.size_mib << 20, disk.fmt)
                if disk.filesystem:
                    warm.make_filesystem(path, disk.filesystem, disk.serial)
            disks.append(ExtraDisk(path, disk.fmt, False, disk.serial, disk.cache, disk.discard))
        nics = tuple(Nic(net.libvirt_name, mac) for net, mac in zip(networks, macs, strict=True))
        spec = self._spec(image, accel, name=name, uuid=str(uuid.uuid4()),
                          disk=directory / "disk.qcow2", console_log=directory / "console.log",
                          nics=nics, extra_disks=tuple(disks), memory_mib=options["memory_mib"],
                          vcpus=options["vcpus"],
                          nvram=directory / "nvram.fd" if image.boot is BootMode.FIRMWARE else None)
        if image.boot is BootMode.FIRMWARE:
            spec = _with_seed(spec, make_seed(directory / "seed.img", name))
        vm = VM(self.lab.conn(), spec, directory)
        machine = Machine(vm, image=image)
        machine.addresses = tuple(a for net, host, mac in zip(networks, hosts, macs, strict=True)
                                  for a in net.addresses(host, mac))
        self._nodes[name] = _Node(vm, machine, image, role, networks, hosts, macs, data_disks,
                                  tuple(options["extra_disks"]), options)
        writable = " ".join(f"/dev/{extra_disk_target(i)}" for i, d in enumerate(disks)
                            if not d.readonly)
        try:
            if options["template"] and image.boot is BootMode.DIRECT:
                hardware = warm.Hardware(accel, spec.memory_mib, spec.vcpus, len(nics),
                                         tuple(disks))
                tdir = warm.ensure(self.lab, image, hardware,
                                   lambda **kw: self._spec(image, accel,
                                                           memory_mib=spec.memory_mib,
                                                           vcpus=spec.vcpus, nvram=None, **kw),
                                   lambda tspec, tdir: self._make_template(image, tspec, tdir))
                with step("restore %s from template", name):
                    template_macs = self._clone(vm, tdir, image)
                    machine.wait_for_agent(timeout=60)
                machine.restored = True
                clock = f"{time.time():.3f}"
            else:
                with step("boot %s (%s, %s, cold)", name, image.name, accel):
                    make_overlay(image.disk, image.disk_format, spec.disk)  # type: ignore[arg-type]
                    vm.power_on()
                    machine.wait_for_agent(timeout=options["timeout"])
                template_macs, clock = list(macs), ""
            remap = " ".join(f"{old}={new}" for old, new in zip(template_macs, macs, strict=True))
            addresses = " ".join(f"{a.mac},{a.interface}" for a in machine.addresses)
            identity = ["sh", "-c", _IDENTITY, "identity", name[-60:]]
            machine.succeed([*identity, clock, remap, addresses, writable], timeout=60)
            machine.after_boot.append(
                lambda m: _reapply(m, [*identity, "", "", addresses, ""]))
        except GuestError as exc:
            kept = console.keep(vm.console_log, paths.home(), vm.name) or exc.console_log
            self._forget(vm)
            raise BootFailure(f"{name} ({image.name}): {exc.args[0].split(' (console log:')[0]}",
                              kept) from None
        except BaseException:
            self._forget(vm)
            raise
        return machine

    def _spec(self, image: ImageArtifact, accel: Accel, **fields: Any) -> DomainSpec:
        return DomainSpec(accel=accel, kernel=image.kernel, initrd=image.initrd,
                          cmdline=image.cmdline + BOOT_ARGS if image.kernel else "",
                          description=f"distrogate {image.name} {image.digest[:12]}",
                          disk_backing=image.disk_chain, **fields)

    def cluster(self, image: ImageArtifact, size: int, *, role: str = "node",
                memory_mib: int = 1024) -> list[Machine]:
        """``size`` machines of ``image`` on one new isolated network (IPv6:
        ``machine.ip()``)."""
        network = self.network(f"{role}net")
        return [self.boot(image, role=f"{role}{index + 1}", networks=network,
                          memory_mib=memory_mib) for index in range(size)]

    def destroy(self, machine: Machine) -> None:
        """Remove one machine now (it is removed at ``close`` otherwise)."""
        node = self._nodes.get(machine.name)
        if node is not None:
            self._forget(node.vm)

    def node_of(self, machine: Machine) -> tuple[VM, tuple[LabNetwork, ...]]:
        """The VM under ``machine`` and the networks its interfaces are on, in order."""
        node = self._nodes.get(machine.name)
        if node is None:
            raise LabError(f"{machine.name}: not a machine of this run")
        return node.vm, node.networks

    def _forget(self, vm: VM) -> None:
        vm.remove(keep=self.keep_vms)
        self._nodes.pop(vm.name, None)

    def close(self, *, vms: bool = True) -> None:
        """Remove every VM and network of this run and release its lock. ``vms=False`` only
        releases the lock: for a caller that tears the whole lab down next."""
        errors = []
        for name in reversed(list(self._nodes) if vms else []):
            vm = self._nodes[name].vm
            try:
                vm.remove(keep=self.keep_vms)
            except Exception as exc:
                errors.append(f"{vm.name}: {exc}")
        self._nodes.clear()
        if not self.keep_vms and vms:
            for net in self._networks:
                with contextlib.suppress(virt.LibvirtError):
                    self.lab.conn().networkLookupByName(net.libvirt_name).destroy()
            self._networks.clear()
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
            self._lock_path.unlink(missing_ok=True)
        if errors:
            log.error("cleanup of run %s: %s", self.run_id, "; ".join(errors))

    # -- templates -----------------------------------------------------------------------------
    def _make_template(self, image: ImageArtifact, spec: DomainSpec, tdir: Path) -> None:
        conn = self.lab.conn()
        vm = VM(conn, spec, tdir)
        machine = Machine(vm, image=image)
        assert spec.disk is not None
        try:
            make_overlay(image.disk, image.disk_format, spec.disk)
            vm.power_on()
            machine.wait_for_agent(timeout=BOOT_TIMEOUT)
            machine.execute("systemctl is-system-running --wait", timeout=120)
            machine.succeed("sync", timeout=60)
            virt.save(conn.lookupByName(spec.name), str(tdir / "state.sav"))
        except GuestError as exc:
            # the template directory goes with the failure: keep its console log elsewhere
            kept = console.keep(spec.console_log, paths.home(), spec.name)
            vm.power_off_hard()
            detail = exc.args[0].split(" (console log:")[0].removeprefix(f"{spec.name}: ")
            raise GuestError(f"first boot of {image.name} (to make its warm template): {detail}",
                             kept) from None
        except BaseException:
            vm.power_off_hard()
            raise

    def _clone(self, vm: VM, tdir: Path, image: ImageArtifact) -> list[str]:
        spec = vm.spec
        assert spec.disk is not None
        make_overlay(tdir / "disk.qcow2", "qcow2", spec.disk)
        disks = {"vda": spec.disk} | {extra_disk_target(i): d.path
                                      for i, d in enumerate(spec.extra_disks)}
        backing = ((tdir / "disk.qcow2", "qcow2"), *image.disk_chain)
        identity = CloneIdentity(name=spec.name, uuid=spec.uuid, disks=disks, nics=spec.nics,
                                 console_log=spec.console_log, backing=backing)
        # a later cold start (after a crash or a shutdown) must see the template's layer too:
        # booting the overlay straight on the image would hide what the template's boot wrote
        vm.spec = replace(spec, disk_backing=backing)
        saved = read_xml(tdir / "state.sav")
        state = vm.directory / "state.sav"
        write_clone_state(tdir / "state.sav", state, rewrite_for_clone(saved, identity))
        try:
            virt.restore(self.lab.conn(), str(state))
            vm.attach(self.lab.conn().lookupByName(spec.name))
        except virt.LibvirtError as exc:
            raise LabError(f"{spec.name}: restore from template {tdir} failed: {exc}") from None
        finally:
            state.unlink(missing_ok=True)
        return interface_macs(saved)


def _reapply(machine: Machine, identity: list[str]) -> None:
    machine.succeed(identity, timeout=60)


def _data_disk_path(directory: Path, disk: DataDisk) -> Path:
    return directory / f"data-{disk.serial}.{disk.fmt}"


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
    agent (known from its manifest) fails at once. Booting the baseline itself (``image`` is
    the ``control``, as in a control run), a failed boot gets one more; a second failure is
    the lab's.
    """
    try:
        return lab_run.boot(image, role=role, **options)  # type: ignore[arg-type]
    except (BootFailure, NoGuestAgent) as exc:
        first = exc
    if image.digest == control.digest:
        log.warning("the baseline %s did not boot (%s); booting it again", image.name, first)
        try:
            return lab_run.boot(image, role=role, **options)  # type: ignore[arg-type]
        except (BootFailure, NoGuestAgent) as exc:
            raise LabError(f"the baseline does not boot on this lab (twice): {exc}; "
                           f"first: {first}") from None
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

