"""Reading the host-side capture: ESP between the nodes, nothing protectable in cleartext, and
the payload marker never in cleartext (a real pcap file, read by distrogate.lab.pcap)."""

from __future__ import annotations

import ipaddress
import struct
from pathlib import Path

from distrogate.ipsec.wire import is_ike, is_ndp, summarize
from distrogate.lab import pcap

A, B = ipaddress.IPv6Address("fd00:1::2"), ipaddress.IPv6Address("fd00:1::3")
C = ipaddress.IPv6Address("fd00:1::9")
MARKER = b"DG-IPSEC-MARKER-"


def _frame(src: ipaddress.IPv6Address, dst: ipaddress.IPv6Address, proto: int,
           payload: bytes) -> bytes:
    ip6 = struct.pack("!IHBB", 6 << 28, len(payload), proto, 64) + src.packed + dst.packed
    return b"\x52\x54\x00\x00\x00\x01" * 2 + b"\x86\xdd" + ip6 + payload


def _write(path: Path, frames: list[bytes]) -> Path:
    data = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for i, frame in enumerate(frames):
        data += struct.pack("<IIII", 1700000000 + i, 0, len(frame), len(frame)) + frame
    path.write_bytes(data)
    return path


def _udp(sport: int, dport: int, body: bytes) -> bytes:
    return struct.pack("!HHHH", sport, dport, 8 + len(body), 0) + body


def test_esp_only_is_good(tmp_path: Path) -> None:
    frames = [_frame(A, B, pcap.ESP, b"\x00\x00\x10\x00" + b"\x99" * 60),
              _frame(B, A, pcap.ESP, b"\x00\x00\x20\x00" + b"\x99" * 60),
              _frame(A, B, pcap.UDP, _udp(500, 500, b"ike")),  # IKE: clear by design
              _frame(A, B, pcap.ICMPV6, bytes([135, 0]) + b"\x00" * 22),  # NS
              _frame(A, C, pcap.ICMPV6, bytes([128, 0]) + MARKER)]  # another pair: not ours
    wire = summarize(pcap.packets(_write(tmp_path / "c.pcap", frames)), A, B, MARKER)
    assert (wire.esp, wire.clear, wire.marker) == (2, 0, 0) and wire.ok
    assert wire.describe().startswith("2 ESP packets, 0 cleartext")


def test_the_marker_in_cleartext_is_caught(tmp_path: Path) -> None:
    frames = [_frame(A, B, pcap.ICMPV6, bytes([128, 0, 0, 0, 0, 1, 0, 1]) + MARKER * 3),
              _frame(A, B, pcap.UDP, _udp(40000, 9, b"x" + MARKER))]
    wire = summarize(pcap.packets(_write(tmp_path / "c.pcap", frames)), A, B, MARKER)
    assert (wire.esp, wire.clear, wire.marker) == (0, 2, 2) and not wire.ok


def test_ike_and_ndp() -> None:
    assert is_ike(_udp(4500, 4500, b"x")) and not is_ike(_udp(40000, 9, b"x"))
    assert not is_ike(b"\x01")
    assert is_ndp(bytes([136, 0])) and not is_ndp(bytes([128, 0])) and not is_ndp(b"")
