"""The Machine verbs and the testinfra backend, on a real VM of the promoted image."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from pathlib import Path

import pytest

from distrogate.errors import (
    GuestCommandFailed,
    GuestCommandTimeout,
    GuestError,
    GuestTimeout,
    is_image_fault,
    is_lab_fault,
)
from distrogate.guest.machine import Machine
from distrogate.guest.testinfra_backend import agent_host
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.run import LabRun

pytestmark = pytest.mark.vm


@pytest.fixture(scope="module")
def vm(lab_run: LabRun, baseline_image: ImageArtifact) -> Machine:
    """One warm-template VM of the promoted image for this module."""
    return lab_run.boot(baseline_image, role="api")


def test_reaches_multi_user_without_failed_units(vm: Machine) -> None:
    state = vm.execute("systemctl is-system-running --wait", timeout=180).stdout_text.strip()
    failed = vm.succeed("systemctl list-units --failed --plain --no-legend")
    assert state == "running", f"state {state!r}, failed units: {failed!r}"


def test_exit_codes_and_output_are_exact(vm: Machine) -> None:
    result = vm.execute("printf 'a\\0b\\n'; printf 'err' >&2; exit 7")
    assert (result.exit_code, result.stdout, result.stderr) == (7, b"a\0b\n", b"err")
    assert vm.execute(["sh", "-c", "kill -9 $$"]).exit_code == -9
    assert vm.succeed("echo ok") == "ok\n"
    with pytest.raises(GuestCommandFailed, match="exited 3"):
        vm.succeed("exit 3")
    assert "boom" in vm.fail("echo boom >&2; exit 1")
    with pytest.raises(GuestCommandFailed, match="succeeded, expected failure"):
        vm.fail("true")


def test_stdin_and_env_reach_the_command(vm: Machine) -> None:
    assert vm.succeed("cat", stdin=b"hello\n") == "hello\n"
    assert vm.succeed("echo $FOO", env={"FOO": "bar baz"}) == "bar baz\n"


@pytest.mark.parametrize(("size", "spool"), [(2_500_000, False), (12_000_000, True)])
def test_multi_megabyte_output_is_byte_exact(vm: Machine, size: int, spool: bool) -> None:
    vm.succeed(f"head -c {size} /dev/urandom > /root/big")
    expected = vm.succeed("sha256sum /root/big").split()[0]
    result = vm.execute(["cat", "/root/big"], spool=spool)
    assert result.exit_code == 0
    assert len(result.stdout) == size
    assert hashlib.sha256(result.stdout).hexdigest() == expected


def test_ten_megabyte_file_round_trips(vm: Machine, tmp_path: Path) -> None:
    data = os.urandom(10 * 1024 * 1024) + b"\0\r\n\xff"
    source = tmp_path / "blob"
    source.write_bytes(data)
    vm.copy_to(source, "/root/blob")
    assert vm.succeed("sha256sum /root/blob").split()[0] == hashlib.sha256(data).hexdigest()
    back = tmp_path / "back"
    vm.copy_from("/root/blob", back)
    assert back.read_bytes() == data


def test_timeouts_are_bounded_and_a_lab_problem(vm: Machine) -> None:
    started = time.monotonic()
    with pytest.raises(GuestCommandTimeout, match="did not finish within 2s") as slow:
        vm.execute("sleep 60", timeout=2)
    assert not is_image_fault(slow.value)  # a slow lab never rejects an image
    assert time.monotonic() - started < 15
    assert vm.execute("pgrep -x sleep").exit_code == 1, "the timed-out command was not killed"
    with pytest.raises(GuestCommandTimeout, match="never succeeded"):
        vm.wait_until_succeeds("false", timeout=3)


def test_a_stalled_agent_is_waited_for_not_taken_for_a_dead_guest(
        vm: Machine, caplog: pytest.LogCaptureFixture) -> None:
    """qemu-ga frozen for 30 s while a command runs (as a loaded TCG host can stall it): the
    status polls stall, libvirt says "not available for now", and the command's own result
    still arrives once the agent answers again (it raised GuestTimeout at the first stall
    before). The command outlives the freeze: qemu-ga forgets a finished process once it has
    answered a status query, so a reply lost to the stall would take the result with it
    (that case is a lab error, see guest_exec)."""
    vm.succeed("setsid sh -c 'sleep 3; pkill -STOP -x qemu-ga; sleep 30; pkill -CONT -x qemu-ga'"
               " </dev/null >/dev/null 2>&1 &")
    with caplog.at_level(logging.WARNING, logger="distrogate.guest.agent"):
        result = vm.execute("sleep 40; echo done", timeout=180)
    assert (result.exit_code, result.stdout_text) == (0, "done\n")
    stalls = [r.getMessage() for r in caplog.records if "stalled" in r.getMessage()]
    assert stalls, "the agent was never stalled: the test tested nothing"
    assert "not available for now" in stalls[0]
    assert vm.execute("pgrep -x qemu-ga -r T").exit_code == 1, "qemu-ga still stopped"


def test_a_guest_that_panics_mid_command_is_a_crash_not_a_timeout(
        lab_run: LabRun, baseline_image: ImageArtifact) -> None:
    """A kernel that dies while a command runs (sysrq's crash: a real panic) stalls the
    agent; the console shows the panic, so the command ends at the first stall as a crash
    (the lab's fault), not as a timeout two minutes later."""
    crashing = lab_run.boot(baseline_image, role="panic")
    try:
        started = time.monotonic()
        with pytest.raises(GuestError, match=r"crashed.*sysrq triggered crash") as crashed:
            crashing.execute("sleep 2; echo c > /proc/sysrq-trigger; sleep 120", timeout=300)
        assert not isinstance(crashed.value, GuestTimeout)
        assert is_lab_fault(crashed.value)
        assert time.monotonic() - started < 60
    finally:
        lab_run.destroy(crashing)


def test_wait_for_unit(vm: Machine) -> None:
    vm.wait_for_unit("qemu-guest-agent.service", timeout=30)
    # oneshot: "activating" until /bin/false has failed, never "active" (a simple unit is
    # active from its start until the process exits: a fast poll saw that and returned)
    vm.succeed("systemd-run --no-block --unit=dg-broken --property=Type=oneshot "
               "--property=Restart=no /bin/false")
    with pytest.raises(GuestCommandFailed, match="failed"):
        vm.wait_for_unit("dg-broken.service", timeout=30)
    with pytest.raises(GuestCommandFailed, match="does not exist"):
        vm.wait_for_unit("no-such-unit.service", timeout=5)


def test_testinfra_backend(vm: Machine) -> None:
    host = agent_host(vm)
    assert host.package("libc6").is_installed
    assert host.package("libc6").version.startswith("2.36")
    assert host.service("qemu-guest-agent").is_running
    assert host.file("/etc/os-release").contains("bookworm")
    assert host.run("exit 5").rc == 5


def test_reboot_crash_and_start(vm: Machine) -> None:
    vm.succeed("echo survived > /root/marker && sync")
    before = vm.boot_id()
    vm.reboot(timeout=300)
    assert vm.boot_id() != before
    assert vm.succeed("cat /root/marker") == "survived\n"
    vm.crash()
    assert not vm.handle.is_running()
    vm.start(timeout=300)
    assert vm.succeed("cat /root/marker") == "survived\n"
    # a cold start of a template clone boots the same disk layers the restore ran on
    assert "EXT4-fs error" not in vm.succeed("dmesg"), "the file system broke over the crash"


def test_template_clone_has_its_own_identity(lab_run: LabRun, baseline_image: ImageArtifact,
                                             vm: Machine) -> None:
    other = lab_run.boot(baseline_image, role="clone")
    try:
        assert other.succeed("hostname").strip() == other.name[-60:]
        mac = other.handle.spec.nics[0].mac  # type: ignore[attr-defined]
        assert mac in other.succeed("ip -o link")
        guest_time = float(other.succeed("date +%s.%N"))
        assert abs(guest_time - time.time()) < 30, "clock not set after restore"
        other.shutdown(timeout=120)
        assert not other.handle.is_running()
    finally:
        lab_run.destroy(other)
