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


def test_fatal_names_a_panic_of_this_boot_and_ignores_a_login_prompt(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"Kernel panic - not syncing: Fatal exception\nold boot\n")
    watch = console.ConsoleWatch(log)
    watch.reset()  # a new boot: the old panic does not count
    with log.open("ab") as out:
        out.write(b"Debian GNU/Linux 12 node ttyS0\nnode login: ")
    assert watch.fatal() is None
    watch._login_seen = 0.0  # a login prompt seen long ago: problem() would blame the agent
    assert watch.problem() is not None and "login prompt" in str(watch.problem())
    assert watch.fatal() is None
    with log.open("ab") as out:
        out.write(b"\n[  812.1] traps: double fault\n"
                  b"[  812.2] Kernel panic - not syncing: Fatal exception in interrupt\n")
    assert watch.fatal() == "Kernel panic - not syncing: Fatal exception in interrupt"
