"""Reading the pcap files that lab captures write: just enough of Ethernet, IPv4 and IPv6 to
say who talked to whom with which protocol, and what the payload bytes were."""

from __future__ import annotations

import ipaddress
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from distrogate.errors import LabError

_GLOBAL = struct.Struct("<IHHiIII")
_RECORD = struct.Struct("<IIII")
_MAGIC_US, _MAGIC_NS = 0xA1B2C3D4, 0xA1B23C4D
LINKTYPE_ETHERNET = 1
ICMPV6, ICMP, TCP, UDP, ESP = 58, 1, 6, 17, 50
_EXTENSION_HEADERS = {0, 43, 60}  # hop-by-hop, routing, destination options


@dataclass(frozen=True)
class Packet:
    """One IP packet seen on the wire."""

    time: float
    src: ipaddress.IPv4Address | ipaddress.IPv6Address
    dst: ipaddress.IPv4Address | ipaddress.IPv6Address
    protocol: int  # the upper-layer protocol number (ICMPv6 58, ESP 50, TCP 6, ...)
    payload: bytes  # what follows the IP header (and IPv6 extension headers)


def packets(path: Path) -> Iterator[Packet]:
    """The IPv4 and IPv6 packets in an Ethernet pcap file (other frames are skipped)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LabError(f"{path}: cannot read the capture: {exc.strerror}") from None
    if len(data) < _GLOBAL.size:
        raise LabError(f"{path}: not a pcap file (too short)")
    magic, _major, _minor, _zone, _sigfigs, _snaplen, linktype = _GLOBAL.unpack_from(data)
    if magic not in (_MAGIC_US, _MAGIC_NS):
        raise LabError(f"{path}: not a little-endian pcap file")
    if linktype != LINKTYPE_ETHERNET:
        raise LabError(f"{path}: link type {linktype}, expected Ethernet")
    scale = 1e-6 if magic == _MAGIC_US else 1e-9
    offset = _GLOBAL.size
    while offset + _RECORD.size <= len(data):
        seconds, fraction, captured, _length = _RECORD.unpack_from(data, offset)
        offset += _RECORD.size
        frame = data[offset:offset + captured]
        offset += captured
        packet = _ip(frame, seconds + fraction * scale)
        if packet is not None:
            yield packet


def _ip(frame: bytes, when: float) -> Packet | None:
    ethertype = int.from_bytes(frame[12:14], "big") if len(frame) >= 14 else 0
    body = frame[14:]
    if ethertype == 0x8100 and len(frame) >= 18:  # one VLAN tag
        ethertype, body = int.from_bytes(frame[16:18], "big"), frame[18:]
    if ethertype == 0x0800 and len(body) >= 20:
        header = (body[0] & 0x0F) * 4
        return Packet(when, ipaddress.IPv4Address(body[12:16]), ipaddress.IPv4Address(body[16:20]),
                      body[9], body[header:])
    if ethertype == 0x86DD and len(body) >= 40:
        protocol, rest = body[6], body[40:]
        while protocol in _EXTENSION_HEADERS and len(rest) >= 8:
            protocol, rest = rest[0], rest[(rest[1] + 1) * 8:]
        return Packet(when, ipaddress.IPv6Address(body[8:24]), ipaddress.IPv6Address(body[24:40]),
                      protocol, rest)
    return None
