"""Each image's dedicated data disk for fio, and what the report says about it.

Both machines get the same disk: a raw file of the same size, ``cache=none`` (O_DIRECT on the
host: the host's page cache is out of the measurement) and ``discard=unmap`` (the guest's TRIM
reaches the file), created in the machine's own folder of the same lab directory, so on the same
host filesystem.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distrogate import proc
from distrogate.lab.run import DataDisk

SERIAL = "fio0"
DEVICE = f"/dev/disk/by-id/virtio-{SERIAL}"
FORMAT = "raw"
CACHE = "none"
DISCARD = "unmap"


def data_disk(size_mib: int) -> DataDisk:
    """The data disk every machine of the suite gets."""
    return DataDisk(SERIAL, size_mib, FORMAT, CACHE, DISCARD)


def host_filesystem(path: Path) -> dict[str, str]:
    """The host filesystem ``path`` lives on (type, source, mount point, options)."""
    out = proc.run(["findmnt", "-n", "-o", "FSTYPE,SOURCE,TARGET,OPTIONS", "-T", str(path)],
                   timeout=30, check=False)
    fields = out.text.split()
    keys = ("type", "source", "mountpoint", "options")
    return dict(zip(keys, fields, strict=False)) if len(fields) >= 3 else {"type": "unknown"}


def describe(disk: DataDisk, path: Path | None) -> dict[str, Any]:
    """The disk as the report records it: size, format, cache mode, discard, guest device,
    host file and host filesystem."""
    doc: dict[str, Any] = {"size_mib": disk.size_mib, "format": disk.fmt, "cache": disk.cache,
                           "discard": disk.discard, "guest_device": DEVICE}
    if path is not None:
        doc["host_file"] = str(path)
        doc["host_filesystem"] = host_filesystem(path.parent)
    return doc
