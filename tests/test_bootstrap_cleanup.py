"""A killed mmdebstrap leaves nothing behind in a temporary directory: its scratch files (its
GnuPG home among them) live in a directory of ours, removed also after a kill. A real
mmdebstrap from the host's apt configuration, stopped by its timeout after a few seconds."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import pytest

from distrogate.errors import InfraError
from distrogate.images.bootstrap import mmdebstrap

# where mmdebstrap writes without a TMPDIR of ours: distrogate.proc passes no TMPDIR through
SYSTEM_TMP = Path("/tmp")


def _mmdebstrap_own() -> set[str]:
    """mmdebstrap's own scratch directories straight in /tmp (every build of ours puts them in
    a ``dg-mmdebstrap-*`` directory instead)."""
    return {p.name for p in SYSTEM_TMP.iterdir() if p.name.startswith("mmdebstrap.")}


def test_a_killed_bootstrap_leaves_no_scratch_directory(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    ours = tmp_path / "tmp"
    ours.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(ours))
    before = _mmdebstrap_own()
    with pytest.raises(InfraError):
        mmdebstrap(tmp_path / "root", "bookworm", ["ca-certificates"], timeout=4)
    deadline = time.monotonic() + 30  # the killed process group takes a moment to go
    while (list(ours.iterdir()) or _mmdebstrap_own() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert list(ours.iterdir()) == []
    assert _mmdebstrap_own() - before == set()
