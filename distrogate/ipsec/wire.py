"""What the host-side capture shows between two nodes: ESP packets, cleartext packets that
should have been protected, and the payload marker in cleartext (which must never happen)."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from distrogate.lab import pcap

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class Wire:
    """Counts of packets between the two nodes."""

    esp: int
    clear: int  # ICMPv6 (not neighbour discovery) and UDP (not IKE) in cleartext
    marker: int  # packets whose payload holds the marker in cleartext

    @property
    def ok(self) -> bool:
        """ESP seen, nothing that should be protected in clear, the marker never in clear."""
        return self.esp > 0 and self.clear == 0 and self.marker == 0

    def describe(self) -> str:
        """One sentence for the observation."""
        return (f"{self.esp} ESP packets, {self.clear} cleartext ICMPv6/UDP packets, the "
                f"marker in cleartext {self.marker} times")


def is_ike(payload: bytes) -> bool:
    """IKE (UDP 500, or 4500 with NAT traversal) travels in clear by design."""
    if len(payload) < 8:
        return False
    ports = {int.from_bytes(payload[0:2], "big"), int.from_bytes(payload[2:4], "big")}
    return bool(ports & {500, 4500})


def is_ndp(payload: bytes) -> bool:
    """Neighbour discovery and MLD (ICMPv6 types 130-137, 143) travel in clear by design."""
    return bool(payload) and (130 <= payload[0] <= 137 or payload[0] == 143)


def summarize(packets: Iterable[pcap.Packet], a: IPAddress, b: IPAddress,
              marker: bytes) -> Wire:
    """Count the packets between ``a`` and ``b`` (both directions)."""
    esp = clear = seen = 0
    for packet in packets:
        if {packet.src, packet.dst} != {a, b}:
            continue
        if packet.protocol == pcap.ESP:
            esp += 1
        elif ((packet.protocol == pcap.UDP and not is_ike(packet.payload))
              or (packet.protocol == pcap.ICMPV6 and not is_ndp(packet.payload))):
            clear += 1
        if marker and marker in packet.payload:
            seen += 1
    return Wire(esp, clear, seen)
