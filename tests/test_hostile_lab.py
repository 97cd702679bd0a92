"""The lab under hostile conditions: libvirtd stops answering (SIGSTOP) in the middle of a
template restore; and the guests' QEMU runs as an unprivileged user."""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import subprocess
import time
from pathlib import Path

import pytest

from distrogate import paths
from distrogate.images.resolve import resolve_image
from distrogate.lab.lab import Lab
from distrogate.lab.run import LabRun
from tests.conftest import REPO, Cli, qemu_process_table, qemu_processes

QEMU_USER = "libvirt-qemu"


def _pids_of_qemu(marker: Path, needle: str = "") -> list[int]:
    return [pid for pid, text in qemu_process_table(marker) if needle in text]


def _daemon_pid(home: Path) -> int | None:
    for state in (home / "labs").glob("*/lab.json"):
        with contextlib.suppress(OSError, ValueError):
            pid = json.loads(state.read_text()).get("daemon_pid")
            if pid:
                return int(pid)
    return None


@pytest.mark.vm
def test_libvirtd_stopped_in_the_middle_of_a_restore(cli: Cli) -> None:
    """The restore fails within the keepalive bound with an error naming the call, and the
    lab is torn down: no QEMU, no namespace, no lab left."""
    warm = cli("run", "promoted", "--", "true", timeout=900)  # the template exists after this
    assert warm.returncode == 0, warm.stderr[-2000:]
    run = subprocess.Popen(cli.argv("run", "promoted", "--", "true"), env=cli.env, cwd=REPO,
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    daemon = None
    stopped_at = None
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and run.poll() is None:
            daemon = daemon or _daemon_pid(cli.home)
            if daemon and _pids_of_qemu(cli.home, "-incoming"):
                os.kill(daemon, signal.SIGSTOP)  # QEMU is up, libvirtd is loading the state
                stopped_at = time.monotonic()
                break
            time.sleep(0.01)
        assert stopped_at is not None, "never saw the restore start"
        _, stderr = run.communicate(timeout=300)
        elapsed = time.monotonic() - stopped_at
    finally:
        if run.poll() is None:
            run.kill()
        if daemon:
            with contextlib.suppress(ProcessLookupError):
                os.kill(daemon, signal.SIGKILL)
    print(f"exit {run.returncode} {elapsed:.1f}s after SIGSTOP: {stderr.strip()[-500:]}")
    assert run.returncode == 4, stderr[-2000:]
    errors = [line for line in stderr.splitlines() if line.startswith("distrogate: error")]
    assert len(errors) == 1 and "Traceback" not in stderr, stderr[-2000:]
    assert "restore" in errors[0], errors[0]
    assert elapsed < 60
    cli.assert_nothing_left()


def _qemu_status(pid: int) -> dict[str, str]:
    return dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())


def _fingerprints(paths: list[Path]) -> dict[Path, tuple[int, int, int, int]]:
    out = {}
    for path in paths:
        stat = path.stat()
        out[path] = (stat.st_uid, stat.st_gid, stat.st_mode, stat.st_mtime_ns)
    return out


@pytest.mark.vm
def test_qemu_runs_unprivileged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """In a private lab, QEMU runs as the unprivileged user, under seccomp, with no
    capabilities: the template's maker, and two clones sharing its disk (one keeps working
    when the other goes). A later lab restores that template. The shared files (image disk,
    kernel, initrd, template disk and state) stay root's and unchanged throughout."""
    real_home = paths.home()
    home = tmp_path / "home"  # its own templates; the image store shared, read-only
    home.mkdir()
    for name in ("images", "nspawn", "libvirt-cache"):
        (real_home / name).mkdir(exist_ok=True)
        (home / name).symlink_to(real_home / name)
    monkeypatch.setenv("DISTROGATE_HOME", str(home))
    image = resolve_image("promoted")
    shared = [image.disk, *(p for p in (image.kernel, image.initrd) if p is not None)]
    before = _fingerprints(shared)
    uid = str(pwd.getpwnam(QEMU_USER).pw_uid)
    options = {"memory_mib": 1024, "vcpus": 2}
    lab = Lab.start(home / "labs" / "first")
    try:
        with LabRun(lab) as run:
            machines = [run.boot(image, role=f"vm{i}", **options) for i in range(2)]
            assert machines[1].restored
            pids = _pids_of_qemu(lab.directory)
            assert len(pids) == 2, qemu_processes(lab.directory)
            for pid in pids:
                status = _qemu_status(pid)
                assert status["Uid"].split() == [uid] * 4, status["Uid"]
                assert status["Seccomp"].strip() == "2", "QEMU runs without its seccomp sandbox"
                assert status["CapEff"].strip() == "0000000000000000", status["CapEff"]
            run.destroy(machines[0])
            assert machines[1].execute("true", timeout=60).exit_code == 0
    finally:
        lab.teardown()
    templates = sorted((home / "templates").glob("*/state.sav"))
    assert len(templates) == 1, templates
    shared += [templates[0], templates[0].with_name("disk.qcow2")]
    made = _fingerprints(shared)
    assert all(v[:2] == (0, 0) for v in made.values()), made
    later = Lab.start(home / "labs" / "second")
    try:
        with LabRun(later) as run:
            machine = run.boot(image, role="later", **options)
            assert machine.restored and machine.execute("true", timeout=60).exit_code == 0
    finally:
        later.teardown()
    assert _fingerprints(shared) == made
    assert {p: made[p] for p in before} == before
