"""A data disk whose file system the lab makes on the host (the roll-forward nodes' data
volume): real ``mkfs.ext4`` on a sparse file, read back with ``dumpe2fs``."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from distrogate.errors import InputError
from distrogate.lab import warm
from distrogate.lab.run import DataDisk


def _dumpe2fs(path: Path) -> str:
    return subprocess.run(["dumpe2fs", str(path)], capture_output=True, text=True, check=True,
                          timeout=60).stdout


def test_the_file_system_is_labelled_initialised_and_mountable_by_older_kernels(
        tmp_path: Path) -> None:
    path = tmp_path / "data-pgdata.raw"
    warm.create_disk(path, 256 << 20, "raw")
    warm.make_filesystem(path, "ext4", "pgdata")
    text = _dumpe2fs(path)
    assert re.search(r"^Filesystem volume name:\s+pgdata$", text, re.MULTILINE), text[:400]
    features = re.search(r"^Filesystem features:(.*)$", text, re.MULTILINE)
    assert features is not None
    assert "orphan_file" not in features.group(1)
    assert "metadata_csum_seed" not in features.group(1)
    groups = re.findall(r"^Group \d+: .*$", text, re.MULTILINE)
    assert groups and all("ITABLE_ZEROED" in g for g in groups), groups[:3]  # no lazy init


def test_a_host_file_system_needs_a_raw_disk_and_a_known_type() -> None:
    with pytest.raises(InputError, match="needs fmt raw, not qcow2"):
        DataDisk("pgdata", 1024, filesystem="ext4")
    with pytest.raises(InputError, match="unknown file system 'xfs'"):
        DataDisk("pgdata", 1024, fmt="raw", filesystem="xfs")
    assert DataDisk("pgdata", 1024, fmt="raw", filesystem="ext4").filesystem == "ext4"
