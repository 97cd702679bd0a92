"""Pure logic of the lab topology: address plans, typed addresses, spec checks, clone XML with
several NICs and data disks, and the pcap reader."""

from __future__ import annotations

import ipaddress
import struct
import xml.etree.ElementTree as ET
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from distrogate.errors import InputError, LabError
from distrogate.guest.addresses import NicAddress, pick
from distrogate.lab import pcap
from distrogate.lab.network import LabNetwork
from distrogate.lab.run import DataDisk
from distrogate.lab.template import CloneIdentity, interface_macs, rewrite_for_clone
from distrogate.lab.topology import NetworkSpec, NodeSpec, TopologySpec
from distrogate.lab.xml import Accel, DomainSpec, ExtraDisk, Nic, domain_xml


@given(st.lists(st.text(min_size=1, max_size=12), min_size=2, max_size=6, unique=True))
def test_the_networks_of_one_run_never_share_a_prefix(names: list[str]) -> None:
    nets = [LabNetwork.plan(n, f"dg-x-{n}", i + 1, ipv4=True) for i, n in enumerate(names)]
    v6 = [n.ipv6 for n in nets]
    v4 = [n.ipv4 for n in nets]
    assert len(set(v6)) == len(v6) and len(set(v4)) == len(v4)
    assert all(n.ipv6 is not None and n.ipv6.is_private for n in nets)
    assert all(len(n.bridge) <= 15 for n in nets)  # a Linux interface name


def test_hosts_get_consecutive_typed_addresses() -> None:
    net = LabNetwork.plan("front", "dg-x-front", 1, ipv4=True)
    first, second = net.allocate(), net.allocate()
    addresses = net.addresses(second, "52:54:00:00:00:02")
    assert (first, second) == (1, 2)
    assert [a.family for a in addresses] == [6, 4]
    assert net.ipv6 is not None and addresses[0].ip == net.ipv6.network_address + 2
    assert str(addresses[1].interface).endswith(".2/24")


def test_pick_names_what_the_machine_has_when_an_address_is_missing() -> None:
    have = (NicAddress("a", "m", ipaddress.IPv6Interface("fd42::1/64")),)
    assert str(pick(have, "a", 6, "vm")) == "fd42::1"
    assert str(pick(have, None, 6, "vm")) == "fd42::1"
    with pytest.raises(LookupError, match=r"vm: no IPv4 address on network 'a' \(has: a:fd42::1/64\)"):
        pick(have, "a", 4, "vm")


@pytest.mark.parametrize(("spec", "message"), [
    (TopologySpec((NetworkSpec("a"), NetworkSpec("a"))), "network 'a' is declared twice"),
    (TopologySpec((NetworkSpec("a"),), (NodeSpec("n", "base", ("a",)),) * 2),
     "node 'n' is declared twice"),
    (TopologySpec((NetworkSpec("a"),), (NodeSpec("n", "other", ("a",)),)), "no image 'other'"),
    (TopologySpec((NetworkSpec("a"),), (NodeSpec("n", "base", ("b",)),)), "no network 'b'"),
    (TopologySpec((NetworkSpec("a"),), (NodeSpec("n", "base", ()),)), "is on no network"),
    (TopologySpec((NetworkSpec("a"),), (NodeSpec("n", "base", ("a",),
                                                 (DataDisk("d"), DataDisk("d"))),)),
     "two data disks share a serial"),
])
def test_a_topology_that_cannot_be_realised_is_refused_before_anything_boots(
        spec: TopologySpec, message: str) -> None:
    images: dict[str, Any] = {"base": SimpleNamespace()}
    with pytest.raises(InputError, match=message):
        spec.check(images)


def _template_xml(tmp: Path) -> str:
    spec = DomainSpec(name="tpl", uuid="00000000-0000-0000-0000-000000000001", accel=Accel.TCG,
                      disk=tmp / "t.qcow2", console_log=tmp / "t.log",
                      nics=(Nic("tnet", "52:54:00:ee:00:01"), Nic("tnet", "52:54:00:ee:01:01")),
                      extra_disks=(ExtraDisk(tmp / "tree.img", "raw", True, "tree"),
                                   ExtraDisk(tmp / "data0.qcow2", "qcow2", False, "pgdata")))
    return domain_xml(spec)


def test_a_clone_gets_its_own_disks_networks_and_macs(tmp_path: Path) -> None:
    xml = _template_xml(tmp_path)
    assert interface_macs(xml) == ["52:54:00:ee:00:01", "52:54:00:ee:01:01"]
    identity = CloneIdentity(
        name="clone", uuid="00000000-0000-0000-0000-000000000002",
        disks={"vda": tmp_path / "c.qcow2", "vdb": tmp_path / "tree.img",
               "vdc": tmp_path / "c-data.qcow2"},
        nics=(Nic("front", "52:54:00:00:00:0a"), Nic("back", "52:54:00:00:00:0b")),
        console_log=tmp_path / "c.log")
    root = ET.fromstring(rewrite_for_clone(xml, identity))
    sources = {d.find("target").get("dev"): d.find("source").get("file")  # type: ignore[union-attr]
               for d in root.iterfind("devices/disk")}
    assert sources == {k: str(v) for k, v in identity.disks.items()}
    nets = [(i.find("source").get("network"), i.find("mac").get("address"))  # type: ignore[union-attr]
            for i in root.iterfind("devices/interface")]
    assert nets == [("front", "52:54:00:00:00:0a"), ("back", "52:54:00:00:00:0b")]
    cache = {d.find("target").get("dev"): d.find("driver").get("cache")  # type: ignore[union-attr]
             for d in root.iterfind("devices/disk")}
    assert cache == {"vda": "unsafe", "vdb": "none", "vdc": "unsafe"}


def test_a_clone_with_another_number_of_nics_is_refused(tmp_path: Path) -> None:
    identity = CloneIdentity(name="c", uuid="u", disks={}, nics=(Nic("n", "52:54:00:00:00:01"),),
                             console_log=tmp_path / "c.log")
    with pytest.raises(LabError, match="template has 2 network interfaces"):
        rewrite_for_clone(_template_xml(tmp_path), identity)


def _pcap(frames: list[bytes]) -> bytes:
    out = struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)
    for index, frame in enumerate(frames):
        out += struct.pack("<IIII", 100 + index, 0, len(frame), len(frame)) + frame
    return out


def _ipv6_frame(src: str, dst: str, next_header: int, payload: bytes) -> bytes:
    header = (bytes([0x60, 0, 0, 0]) + len(payload).to_bytes(2, "big") + bytes([next_header, 64])
              + ipaddress.IPv6Address(src).packed + ipaddress.IPv6Address(dst).packed)
    return b"\x02" * 6 + b"\x04" * 6 + b"\x86\xdd" + header + payload


def test_the_pcap_reader_sees_ipv6_esp_ipv4_and_skips_arp(tmp_path: Path) -> None:
    esp = _ipv6_frame("fd42::1", "fd42::2", pcap.ESP, b"\x00\x00\x10\x01secret")
    hop = _ipv6_frame("fd42::1", "ff02::16", 0, bytes([58, 0, 5, 2, 0, 0, 1, 0]) + b"\x8f\x00")
    ipv4 = (b"\x02" * 12 + b"\x08\x00" + bytes([0x45, 0, 0, 28, 0, 0, 0, 0, 64, pcap.ICMP, 0, 0])
            + bytes([10, 0, 0, 1, 10, 0, 0, 2]) + b"\x08\x00ping")
    arp = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x06" + b"\x00" * 28
    path = tmp_path / "c.pcap"
    path.write_bytes(_pcap([esp, hop, ipv4, arp]))
    seen = list(pcap.packets(path))
    assert [(p.protocol, str(p.src)) for p in seen] == [
        (pcap.ESP, "fd42::1"), (pcap.ICMPV6, "fd42::1"), (pcap.ICMP, "10.0.0.1")]
    assert seen[0].payload.endswith(b"secret") and seen[1].payload[:1] == b"\x8f"
    assert seen[0].time == 100.0


def test_a_file_that_is_not_a_pcap_is_a_lab_error(tmp_path: Path) -> None:
    path = tmp_path / "x.pcap"
    path.write_bytes(b"not a capture at all, just text....")
    with pytest.raises(LabError, match="not a little-endian pcap file"):
        list(pcap.packets(path))
