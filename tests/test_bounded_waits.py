"""Bounded waits without a lab: a timed-out command whose grandchild left its process group
and holds its output pipes, and a call that never returns."""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

import pytest

from distrogate import proc
from distrogate.errors import CommandError
from distrogate.lab import virt


def test_a_killed_command_is_reaped_within_a_bound(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Before: ``communicate()`` after the kill waited for the escaped grandchild (300 s)."""
    monkeypatch.setattr(proc, "KILL_GRACE", 1.0)
    pid_file = tmp_path / "escaped.pid"
    script = f'setsid sh -c "echo \\$\\$ > {pid_file}; exec sleep 300" & sleep 300'
    started = time.monotonic()
    try:
        with pytest.raises(CommandError, match="timed out after 1s"):
            proc.run(["sh", "-c", script], timeout=1)
        assert time.monotonic() - started < 6
    finally:
        for _ in range(50):
            if pid_file.exists() and pid_file.read_text().strip():
                break
            time.sleep(0.1)
        with contextlib.suppress(ValueError, ProcessLookupError, FileNotFoundError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)


def test_a_call_that_never_returns_is_cut_off_naming_it() -> None:
    started = time.monotonic()
    with pytest.raises(virt.LibvirtTimeout, match=r"libvirt restore of /x: no answer within 0.5s"):
        virt.bounded("restore of /x", 0.5, lambda: time.sleep(30))
    assert time.monotonic() - started < 2


def test_a_bounded_call_passes_results_and_errors_through() -> None:
    assert virt.bounded("add", 5, lambda: 1 + 1) == 2
    with pytest.raises(ZeroDivisionError):
        virt.bounded("divide", 5, lambda: 1 // 0)
