"""The fio suite's data disk in the domain XML: raw, cache=none, discard=unmap, its serial."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from distrogate.fio.disk import DEVICE, data_disk, describe, host_filesystem
from distrogate.lab.xml import Accel, DomainSpec, ExtraDisk, domain_xml


def test_the_data_disk_is_raw_uncached_and_passes_trim(tmp_path: Path) -> None:
    disk = data_disk(256)
    extra = ExtraDisk(tmp_path / "data-fio0.raw", disk.fmt, False, disk.serial, disk.cache,
                      disk.discard)
    spec = DomainSpec(name="x", uuid="00000000-0000-0000-0000-000000000001", accel=Accel.TCG,
                      disk=tmp_path / "disk.qcow2", console_log=tmp_path / "c.log", nics=(),
                      extra_disks=(extra,))
    root = ET.fromstring(domain_xml(spec))
    vdb = next(d for d in root.iterfind("devices/disk") if d.find("target").get("dev") == "vdb")  # type: ignore[union-attr]
    driver = vdb.find("driver")
    assert driver is not None
    assert (driver.get("type"), driver.get("cache"), driver.get("discard")) == \
        ("raw", "none", "unmap")
    assert vdb.findtext("serial") == "fio0"
    assert vdb.find("readonly") is None
    assert DEVICE == "/dev/disk/by-id/virtio-fio0"


def test_other_disks_keep_no_discard_attribute(tmp_path: Path) -> None:
    spec = DomainSpec(name="x", uuid="00000000-0000-0000-0000-000000000001", accel=Accel.TCG,
                      disk=tmp_path / "disk.qcow2", console_log=tmp_path / "c.log", nics=(),
                      extra_disks=(ExtraDisk(tmp_path / "seed.img"),))
    assert "discard" not in domain_xml(spec)


def test_the_report_names_the_host_filesystem(tmp_path: Path) -> None:
    path = tmp_path / "data-fio0.raw"
    path.write_bytes(b"")
    doc = describe(data_disk(128), path)
    assert doc["cache"] == "none" and doc["format"] == "raw" and doc["size_mib"] == 128
    assert doc["host_filesystem"]["type"] == host_filesystem(tmp_path)["type"] != "unknown"
