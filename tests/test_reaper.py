"""`kill -9` of a run in the middle of a boot, then `distrogate lab gc`, leaves nothing."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, Cli, qemu_processes

pytestmark = pytest.mark.vm


def test_kill_9_mid_boot_then_gc_leaves_nothing(cli: Cli, tmp_path: Path) -> None:
    run_log = tmp_path / "run.log"
    with run_log.open("wb") as stderr:
        proc = subprocess.Popen(cli.argv("run", "--cold", "promoted", "--", "true"), env=cli.env,
                                cwd=REPO, stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not qemu_processes(cli.home) and proc.poll() is None:
            time.sleep(0.2)
        assert qemu_processes(cli.home), "the VM never started: " + run_log.read_text()[-1500:]
        time.sleep(2)  # in the middle of the boot
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    status = cli.status()
    assert status["labs"], "the killed run left no lab to reap (test is not testing anything)"
    leftover_netns = [lab["netns"] for lab in status["labs"]]  # type: ignore[attr-defined]
    gc = cli("lab", "gc", timeout=120)
    assert gc.returncode == 0, gc.stderr
    assert "lab" in gc.stdout
    time.sleep(1)
    cli.assert_nothing_left()
    assert not Path("/run/netns", str(leftover_netns[0])).exists()
