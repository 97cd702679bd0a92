"""Warm templates: boot an image once, save the VM's memory, restore clones of it.

libvirt refuses to restore a saved state under another UUID, so a clone gets a copy of the
state file whose embedded domain XML is rewritten (name, UUID, disks, networks, MACs,
console).
The file format is libvirt's: a 92-byte header (magic, version, data_len, was_running,
compressed, cookieOffset, padding), the domain XML, a cookie, zero padding up to data_len,
then QEMU's migration stream, which is copied untouched.
"""

from __future__ import annotations

import os
import struct
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

from distrogate.errors import LabError
from distrogate.lab.xml import Nic, set_backing_chain

MAGIC = b"LibvirtQemudSave"
HEADER = struct.Struct("<16s5I14I")  # 92 bytes


@dataclass(frozen=True)
class CloneIdentity:
    """What makes a clone a different VM."""

    name: str
    uuid: str
    disks: dict[str, Path]  # guest target (vda, vdb, ...) -> the clone's file
    nics: tuple[Nic, ...]  # in the template's interface order
    console_log: Path
    nvram: Path | None = None
    #: the backing chain of the clone's vda overlay (file, format), top first
    backing: tuple[tuple[Path, str], ...] = ()


def read_xml(state: Path) -> str:
    """The domain XML embedded in a libvirt save file."""
    with state.open("rb") as handle:
        header = HEADER.unpack(handle.read(HEADER.size))
        _check(state, header)
        data = handle.read(header[2])
    return data[: data.index(b"\0")].decode()


def rewrite_for_clone(xml: str, identity: CloneIdentity) -> str:
    """The template's domain XML with the clone's identity."""
    root = ET.fromstring(xml)
    _set_text(root, "name", identity.name)
    _set_text(root, "uuid", identity.uuid)
    for disk in root.iterfind("devices/disk"):
        target = disk.find("target")
        dev = target.get("dev") if target is not None else None
        source = disk.find("source")
        if dev in identity.disks and source is not None:
            source.set("file", str(identity.disks[dev]))
        if dev == "vda":
            set_backing_chain(disk, identity.backing)
    interfaces = list(root.iterfind("devices/interface"))
    if len(interfaces) != len(identity.nics):
        raise LabError(f"template has {len(interfaces)} network interfaces, the clone "
                       f"{identity.name} needs {len(identity.nics)}")
    for iface, nic in zip(interfaces, identity.nics, strict=True):
        source = iface.find("source")
        if source is not None:
            source.attrib.clear()
            source.set("network", nic.network)
        mac = iface.find("mac")
        if mac is not None:
            mac.set("address", nic.mac)
        target = iface.find("target")  # the tap device name is the template's; libvirt picks anew
        if target is not None:
            iface.remove(target)
    for tag in ("serial", "console"):
        for device in root.iterfind(f"devices/{tag}"):
            source = device.find("source")
            if source is not None and device.get("type") == "file":
                source.set("path", str(identity.console_log))
    for channel in root.iterfind("devices/channel"):
        source = channel.find("source")
        if source is not None and "path" in source.attrib:
            del source.attrib["path"]
    if identity.nvram is not None:
        nvram = root.find("os/nvram")
        if nvram is not None:
            nvram.text = str(identity.nvram)
    return ET.tostring(root, encoding="unicode")


def interface_macs(xml: str) -> list[str]:
    """The MAC of every interface in a domain XML, in order (what a restored guest still
    has until the clone's identity is applied)."""
    root = ET.fromstring(xml)
    return [mac.get("address", "") for mac in root.iterfind("devices/interface/mac")]


def write_clone_state(template_state: Path, clone_state: Path, new_xml: str) -> None:
    """Copy ``template_state`` to ``clone_state`` with the embedded XML replaced."""
    with template_state.open("rb") as src:
        header = list(HEADER.unpack(src.read(HEADER.size)))
        _check(template_state, header)
        data_len, cookie_offset = header[2], header[5]
        data = src.read(data_len)
        cookie = b""
        if cookie_offset:
            end = data.index(b"\0", cookie_offset)
            cookie = data[cookie_offset:end + 1]
        xml_bytes = new_xml.encode() + b"\0"
        if len(xml_bytes) + len(cookie) > data_len:
            raise LabError(f"{template_state}: the clone's XML does not fit the save header")
        header[5] = len(xml_bytes) if cookie else 0
        region = (xml_bytes + cookie).ljust(data_len, b"\0")
        with clone_state.open("wb") as dst:
            dst.write(HEADER.pack(*header))
            dst.write(region)
            offset = HEADER.size + data_len
            remaining = os.fstat(src.fileno()).st_size - offset
            while remaining > 0:
                copied = os.copy_file_range(src.fileno(), dst.fileno(), remaining,
                                            offset_src=offset)
                if copied == 0:
                    break
                offset += copied
                remaining -= copied


def _check(path: Path, header: tuple[object, ...] | list[object]) -> None:
    if header[0] != MAGIC:
        raise LabError(f"{path}: not a libvirt QEMU save file")
    if header[4]:
        raise LabError(f"{path}: compressed save files are not supported for templates")


def _set_text(root: ET.Element, tag: str, text: str) -> None:
    element = root.find(tag)
    if element is None:
        raise LabError(f"saved domain XML has no <{tag}>")
    element.text = text
