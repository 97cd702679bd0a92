"""libvirt domain and network XML, built from frozen descriptions (no string templates)."""

from __future__ import annotations

import enum
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

AGENT_CHANNEL = "org.qemu.guest_agent.0"
OVMF_CODE = Path("/usr/share/OVMF/OVMF_CODE_4M.fd")
OVMF_VARS = Path("/usr/share/OVMF/OVMF_VARS_4M.fd")


class Accel(enum.StrEnum):
    """The libvirt domain type: hardware acceleration or QEMU's TCG emulator."""

    KVM = "kvm"
    TCG = "qemu"


@dataclass(frozen=True)
class ExtraDisk:
    """An additional disk: a cloud-init seed or a read-only data image (shared by every VM
    that attaches it), or a node's own writable data disk. ``cache`` is QEMU's cache mode
    (default: ``none`` for read-only disks, ``unsafe`` for writable ones); ``discard``
    ``unmap`` passes the guest's TRIM to the file (blocks punched out), "" ignores it."""

    path: Path
    fmt: str = "raw"
    readonly: bool = True
    serial: str = ""
    cache: str = ""
    discard: str = ""

    @property
    def cache_mode(self) -> str:
        """The cache mode QEMU gets for this disk."""
        return self.cache or ("none" if self.readonly else "unsafe")


@dataclass(frozen=True)
class Nic:
    """One network interface: the libvirt network it is plugged into and its MAC."""

    network: str
    mac: str


@dataclass(frozen=True)
class DomainSpec:
    """Everything that describes one VM's virtual hardware."""

    name: str
    uuid: str
    accel: Accel
    disk: Path | None
    console_log: Path
    nics: tuple[Nic, ...]
    memory_mib: int = 1024
    vcpus: int = 2
    kernel: Path | None = None
    initrd: Path | None = None
    cmdline: str = ""
    nvram: Path | None = None
    extra_disks: tuple[ExtraDisk, ...] = field(default_factory=tuple)
    description: str = ""
    #: The backing chain under ``disk`` (file, format), top first: stated to libvirt so it
    #: neither probes formats nor relabels (chowns) the shared, read-only files.
    disk_backing: tuple[tuple[Path, str], ...] = ()


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrs)
    if text is not None:
        element.text = text
    return element


def domain_xml(spec: DomainSpec) -> str:
    """The libvirt domain XML for ``spec``."""
    dom = ET.Element("domain", {"type": str(spec.accel)})
    _sub(dom, "name", spec.name)
    _sub(dom, "uuid", spec.uuid)
    if spec.description:
        _sub(dom, "description", spec.description)
    _sub(dom, "memory", str(spec.memory_mib), unit="MiB")
    _sub(dom, "vcpu", str(spec.vcpus))
    os_el = _sub(dom, "os")
    _sub(os_el, "type", "hvm", arch="x86_64", machine="pc")
    if spec.kernel is not None:
        _sub(os_el, "kernel", str(spec.kernel))
        if spec.initrd is not None:
            _sub(os_el, "initrd", str(spec.initrd))
        _sub(os_el, "cmdline", spec.cmdline)
    else:
        _sub(os_el, "loader", str(OVMF_CODE), readonly="yes", type="pflash")
        if spec.nvram is not None:
            _sub(os_el, "nvram", str(spec.nvram), template=str(OVMF_VARS))
    features = _sub(dom, "features")
    _sub(features, "acpi")
    _sub(features, "apic")
    if spec.accel is Accel.KVM:
        _sub(dom, "cpu", mode="host-passthrough")
    _sub(dom, "clock", offset="utc")
    _sub(dom, "on_poweroff", "destroy")
    _sub(dom, "on_reboot", "restart")
    _sub(dom, "on_crash", "destroy")
    devices = _sub(dom, "devices")
    _sub(devices, "emulator", "/usr/bin/qemu-system-x86_64")
    if spec.disk is not None:
        disk = _disk(devices, spec.disk, "qcow2", "vda", readonly=False, serial="root",
                     cache="unsafe")
        set_backing_chain(disk, spec.disk_backing)
    for index, extra in enumerate(spec.extra_disks):
        _disk(devices, extra.path, extra.fmt, extra_disk_target(index),
              readonly=extra.readonly, serial=extra.serial, cache=extra.cache_mode,
              discard=extra.discard)
    for nic in spec.nics:
        iface = _sub(devices, "interface", type="network")
        _sub(iface, "source", network=nic.network)
        _sub(iface, "mac", address=nic.mac)
        _sub(iface, "model", type="virtio")
    serial = _sub(devices, "serial", type="file")
    _sub(serial, "source", path=str(spec.console_log))
    _sub(serial, "target", port="0")
    console = _sub(devices, "console", type="file")
    _sub(console, "source", path=str(spec.console_log))
    _sub(console, "target", type="serial", port="0")
    channel = _sub(devices, "channel", type="unix")
    _sub(channel, "source", mode="bind")
    _sub(channel, "target", type="virtio", name=AGENT_CHANNEL)
    rng = _sub(devices, "rng", model="virtio")
    _sub(rng, "backend", "/dev/urandom", model="random")
    _sub(devices, "memballoon", model="none")
    return ET.tostring(dom, encoding="unicode")


def extra_disk_target(index: int) -> str:
    """The guest device name of the ``index``-th extra disk: vdb, vdc, ..."""
    return "vd" + chr(ord("b") + index)


def _disk(devices: ET.Element, path: Path, fmt: str, target: str, *, readonly: bool,
          serial: str, cache: str, discard: str = "") -> ET.Element:
    disk = _sub(devices, "disk", type="file", device="disk")
    _sub(disk, "driver", name="qemu", type=fmt, cache=cache,
         **({"discard": discard} if discard else {}))
    source = _sub(disk, "source", file=str(path))
    if readonly:  # shared between VMs: libvirt must not chown it to the QEMU user
        _no_relabel(source)
    _sub(disk, "target", dev=target, bus="virtio")
    if readonly:
        _sub(disk, "readonly")
    if serial:
        _sub(disk, "serial", serial)
    return disk


def _no_relabel(source: ET.Element) -> None:
    _sub(source, "seclabel", model="dac", relabel="no")


def set_backing_chain(disk: ET.Element, chain: tuple[tuple[Path, str], ...]) -> None:
    """State ``chain`` (file, format; top first) as the backing chain of ``disk``: each file
    read-only, with its format, never relabeled; the chain ends there (nothing is probed).
    Replaces a chain the element had. Without ``chain`` the element is left as it is."""
    if not chain:
        return
    for old in disk.findall("backingStore"):
        disk.remove(old)
    parent = disk
    source = disk.find("source")
    position = list(disk).index(source) + 1 if source is not None else 0
    for path, fmt in chain:
        store = ET.Element("backingStore", {"type": "file"})
        ET.SubElement(store, "format", {"type": fmt})
        _no_relabel(ET.SubElement(store, "source", {"file": str(path)}))
        if parent is disk:
            disk.insert(position, store)
        else:
            parent.append(store)
        parent = store
    parent.append(ET.Element("backingStore"))


def network_xml(name: str, bridge: str) -> str:
    """An isolated network: a bridge with no forwarding, no host address, no DHCP."""
    net = ET.Element("network")
    _sub(net, "name", name)
    _sub(net, "bridge", name=bridge, stp="off", delay="0")
    return ET.tostring(net, encoding="unicode")
