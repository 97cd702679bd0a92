"""`kill -9` of a run in the middle of a boot, then `distrogate lab gc`, leaves nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.vm


def _status(env: dict[str, str]) -> dict[str, object]:
    out = subprocess.run([sys.executable, "-m", "distrogate.cli", "lab", "status", "--json"],
                         capture_output=True, text=True, timeout=60, check=True, env=env).stdout
    return json.loads(out)  # type: ignore[no-any-return]


def _qemu_processes(home: Path) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if "qemu-system" in text and str(home) in text:
            found.append(text[:120])
    return found


def test_kill_9_mid_boot_then_gc_leaves_nothing(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    env = dict(os.environ, DISTROGATE_HOME=str(home))
    # share the image cache of the session: only the lab state is private to this test
    (home / "images").symlink_to(Path(os.environ.get("DISTROGATE_HOME", Path.home() / ".cache"
                                                     / "distrogate")) / "images")
    proc = subprocess.Popen([sys.executable, "-m", "distrogate.cli", "run", "--cold", "promoted",
                             "--", "true"], env=env, cwd=REPO, stdout=subprocess.DEVNULL,
                            stderr=(tmp_path / "run.log").open("wb"))
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and not _qemu_processes(home):
            time.sleep(0.2)
        assert _qemu_processes(home), "the VM never started: " + (
            tmp_path / "run.log").read_text()[-1500:]
        time.sleep(2)  # in the middle of the boot
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    status = _status(env)
    assert status["labs"], "the killed run left no lab to reap (test is not testing anything)"
    leftover_netns = [lab["netns"] for lab in status["labs"]]  # type: ignore[index,union-attr]
    gc = subprocess.run([sys.executable, "-m", "distrogate.cli", "lab", "gc"], env=env,
                        capture_output=True, text=True, timeout=120, check=True)
    assert "lab" in gc.stdout
    status = _status(env)
    assert status["labs"] == [], status
    assert not Path("/run/netns", str(leftover_netns[0])).exists()
    time.sleep(1)
    assert _qemu_processes(home) == []
