"""Interrupted runs and builds leave nothing: `kill -9` mid-boot then `lab gc`; Ctrl-C mid-build."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from distrogate.fsutil import mounts_below
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


def test_interrupted_build_leaves_no_mounts_and_no_work_tree(tmp_path: Path) -> None:
    """Ctrl-C (SIGTERM) while mmdebstrap runs: exit 130, no tree, nothing mounted, no traceback."""
    home = tmp_path / "home"  # an empty image store of its own: the build really starts
    spec = tmp_path / "tiny.yaml"
    spec.write_text("name: tiny\nrelease: bookworm\npackages: [systemd, linux-image-amd64]\n")
    cli = Cli(home)
    build_log = tmp_path / "build.log"
    with build_log.open("wb") as stderr:
        proc = subprocess.Popen(cli.argv("image", "build", str(spec)), env=cli.env, cwd=REPO,
                                stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None and not _bootstrap_mounts(home):
            time.sleep(0.2)
        assert _bootstrap_mounts(home), "mmdebstrap never mounted anything: " + build_log.read_text()
    finally:
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=120)
    output = build_log.read_text()
    assert returncode == 130, output[-2000:]
    assert "mmdebstrap" in output and "Traceback" not in output, output[-2000:]
    assert mounts_below(home) == []
    assert list((home / "images").glob(".tmp-*")) == [], "the work tree was left behind"


def _bootstrap_mounts(home: Path) -> bool:
    """Whether a running mmdebstrap has file systems mounted in a work tree under ``home``."""
    for pid_dir in Path("/proc").glob("[0-9]*"):
        try:
            if b"mmdebstrap" not in (pid_dir / "cmdline").read_bytes():
                continue
            if f"{home}/images/.tmp-" in (pid_dir / "mountinfo").read_text():
                return True
        except OSError:  # the process is gone
            continue
    return False
