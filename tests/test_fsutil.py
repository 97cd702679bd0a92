"""Removing work trees on the real host: mounts left inside are detached first."""

from __future__ import annotations

import subprocess
from pathlib import Path

from distrogate.fsutil import mounts_below, remove_tree


def test_remove_tree_detaches_mounts_left_inside_it(tmp_path: Path) -> None:
    tree = tmp_path / "work"
    inner = tree / "root" / "dev shm"  # a space: mountinfo escapes it as \040
    inner.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(inner)], check=True, timeout=30)
    try:
        (inner / "file").write_text("in the mounted file system")
        assert mounts_below(tree) == [inner]
        assert mounts_below(tmp_path / "elsewhere") == []
        remove_tree(tree)
        assert not tree.exists()
        assert mounts_below(tmp_path) == []
    finally:
        subprocess.run(["umount", "--lazy", str(inner)], check=False, timeout=30,
                       capture_output=True)
