"""Console logs: one copy of a VM's serial console capture that outlives the lab."""

from __future__ import annotations

from pathlib import Path

from distrogate.lab import console


def test_keep_copies_the_console_log_under_consoles(tmp_path: Path) -> None:
    log = tmp_path / "lab" / "vm" / "console.log"
    log.parent.mkdir(parents=True)
    log.write_bytes(b"Kernel panic - not syncing\n")
    kept = console.keep(log, tmp_path / "run", "dg-abc-candidate")
    assert kept == tmp_path / "run" / "consoles" / "dg-abc-candidate.log"
    assert kept.read_bytes() == b"Kernel panic - not syncing\n"


def test_keep_without_a_log_keeps_nothing(tmp_path: Path) -> None:
    assert console.keep(tmp_path / "missing.log", tmp_path / "run", "vm") is None
    assert not (tmp_path / "run").exists()
