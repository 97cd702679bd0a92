"""``Machine``: the verbs a suite uses on a VM, all over the guest agent, all bounded.

Modelled on the NixOS test driver: ``execute`` runs and reports; ``succeed`` and ``fail``
assert; ``wait_until_succeeds`` and ``wait_for_unit`` retry within a deadline. Definite
statements about the image (a wrong exit code, a unit that failed or does not exist) raise
:class:`GuestCommandFailed` (an image fault: the test *fails*). Running out of time raises
:class:`GuestCommandTimeout` and a broken agent :class:`GuestError`: lab problems (the test
*errors*), because a slow host makes every image slow. A suite that checks a time bound records
the time on both images and judges the candidate against the baseline
(:func:`distrogate.differential.bound_verdict`).
"""

from __future__ import annotations

import base64
import contextlib
import logging
import shlex
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

from distrogate.errors import GuestCommandFailed, GuestCommandTimeout, GuestError, GuestTimeout
from distrogate.guest.addresses import IPAddress, NicAddress, pick
from distrogate.guest.agent import Agent, ExecResult, guest_exec
from distrogate.retry import retry_until

log = logging.getLogger(__name__)

CHUNK = 1 << 20  # reads
WRITE_CHUNK = 48 << 10  # writes: qemu-ga mis-parses large input messages (JSON parse error)
Command = str | list[str]


class GuestHandle(Protocol):
    """What a Machine needs from the VM underneath (implemented by ``lab.vm.VM``)."""

    name: str
    console_log: Path

    def agent(self) -> Agent:
        """The guest agent of the running domain."""

    def power_off_hard(self) -> None:
        """Cut the power (no shutdown)."""

    def power_on(self) -> None:
        """Boot the VM again from its current disk."""

    def is_running(self) -> bool:
        """Whether the domain is running."""

    def new_boot(self) -> None:
        """A new boot starts: forget what the console showed before."""

    def boot_problem(self) -> str | None:
        """A reason the guest cannot come up (kernel panic seen on the console), or None."""


class Machine:
    """A booted VM and its verbs. Every verb takes a timeout in seconds."""

    def __init__(self, handle: GuestHandle, *, image: Any = None) -> None:
        self.handle = handle
        self.name = handle.name
        self.image = image
        #: the addresses the lab gave this machine's interfaces (see :meth:`ip`)
        self.addresses: tuple[NicAddress, ...] = ()
        #: run after every boot from :meth:`start` and :meth:`reboot` (the lab re-applies
        #: the machine's identity and addresses, which live in guest memory only)
        self.after_boot: list[Callable[[Machine], None]] = []
        #: whether the lab restored this machine from a warm template (else it booted cold)
        self.restored = False

    def ip(self, network: str | None = None, family: int = 6) -> IPAddress:
        """This machine's IPv6 (or ``family=4``) address on ``network`` (the name the
        topology declared; any network when omitted)."""
        return pick(self.addresses, network, family, self.name)

    def __repr__(self) -> str:
        return f"<Machine {self.name}>"

    @property
    def console_log(self) -> Path:
        """The file the guest's serial console is captured to."""
        return self.handle.console_log

    # -- running commands -------------------------------------------------------------------
    def execute(self, command: Command, *, timeout: float = 120, stdin: bytes | None = None,
                env: dict[str, str] | None = None, spool: bool = False) -> ExecResult:
        """Run ``command`` (a shell string, or an argv list run without a shell).

        Returns the exact exit code and output bytes; never raises for a non-zero exit.
        Output comes back in the agent's reply (up to about 3 MiB); with ``spool`` it goes
        to files in the guest that are read back in chunks (any size, a few calls more).
        Raises :class:`GuestCommandTimeout` if it does not finish within ``timeout`` (the
        process is killed), :class:`GuestTimeout` if the agent stops answering (a stall of
        up to two minutes is waited out), :class:`GuestError` if the agent fails or the
        console shows that the guest's kernel died.
        """
        argv = ["/bin/sh", "-c", command] if isinstance(command, str) else list(command)
        if spool:
            return self._execute_spooled(argv, timeout=timeout, stdin=stdin, env=env,
                                         shown=command)
        started = time.monotonic()
        result = guest_exec(self.handle.agent(), argv, timeout=timeout, stdin=stdin, env=env,
                            name=self.name)
        elapsed = time.monotonic() - started
        if result is None:
            raise GuestCommandTimeout(
                f"{self.name}: `{_show(command)}` did not finish within {timeout:g}s (killed)")
        log.debug("%s: `%s` -> %d (%.2fs)", self.name, _show(command), result.exit_code, elapsed)
        return result

    def _execute_spooled(self, argv: list[str], *, timeout: float, stdin: bytes | None,
                         env: dict[str, str] | None, shown: Command) -> ExecResult:
        spool = f"/run/distrogate-spool-{time.monotonic_ns()}"
        wrapper = ["/bin/sh", "-c", 'd=$1; shift; "$@" >"$d.out" 2>"$d.err"', "sh", spool, *argv]
        try:
            started = self.execute(wrapper, timeout=timeout, stdin=stdin, env=env)
            stdout = self.read_file(f"{spool}.out", timeout=timeout)
            stderr = self.read_file(f"{spool}.err", timeout=timeout)
        finally:
            self.execute(["rm", "-f", f"{spool}.out", f"{spool}.err"], timeout=30)
        log.debug("%s: `%s` -> %d (spooled)", self.name, _show(shown), started.exit_code)
        return ExecResult(started.exit_code, stdout, stderr + started.stderr)

    def succeed(self, command: Command, *, timeout: float = 120, stdin: bytes | None = None,
                env: dict[str, str] | None = None) -> str:
        """Run ``command``; require exit code 0; return its standard output as text."""
        result = self.execute(command, timeout=timeout, stdin=stdin, env=env)
        if result.exit_code != 0:
            raise GuestCommandFailed(
                f"{self.name}: `{_show(command)}` exited {result.exit_code}, expected 0; "
                f"stderr: {_tail(result.stderr_text)!r}; stdout: {_tail(result.stdout_text)!r}")
        return result.stdout_text

    def fail(self, command: Command, *, timeout: float = 120, stdin: bytes | None = None,
             env: dict[str, str] | None = None) -> str:
        """Run ``command``; require a non-zero exit code; return standard output and error."""
        result = self.execute(command, timeout=timeout, stdin=stdin, env=env)
        if result.exit_code == 0:
            raise GuestCommandFailed(
                f"{self.name}: `{_show(command)}` succeeded, expected failure; "
                f"stdout: {_tail(result.stdout_text)!r}")
        return result.stdout_text + result.stderr_text

    def wait_until_succeeds(self, command: Command, *, timeout: float = 120,
                            interval: float = 1.0) -> str:
        """Run ``command`` repeatedly until it exits 0 (return its output) or time runs out.

        Running out of time raises :class:`GuestCommandTimeout` with the last exit code and
        error output: a lab problem unless the caller compares the time with the baseline's.
        """
        deadline = time.monotonic() + timeout
        last: list[ExecResult] = []

        def attempt() -> str | None:
            remaining = max(1.0, deadline - time.monotonic())
            result = self.execute(command, timeout=remaining)
            last[:] = [result]
            return result.stdout_text if result.exit_code == 0 else None

        try:
            return retry_until(attempt, timeout=timeout, interval=interval,
                               what=f"{self.name}: `{_show(command)}`")
        except GuestTimeout:
            detail = f"; last exit {last[0].exit_code}, stderr {_tail(last[0].stderr_text)!r}" \
                if last else ""
            raise GuestCommandTimeout(
                f"{self.name}: `{_show(command)}` never succeeded within {timeout:g}s{detail}"
            ) from None

    def wait_until_fails(self, command: Command, *, timeout: float = 120,
                         interval: float = 1.0) -> str:
        """Run ``command`` repeatedly until it exits non-zero, within ``timeout`` (running out
        of time raises :class:`GuestCommandTimeout`)."""
        def attempt() -> str | None:
            result = self.execute(command, timeout=timeout)
            return result.stdout_text + result.stderr_text if result.exit_code != 0 else None

        try:
            return retry_until(attempt, timeout=timeout, interval=interval,
                               what=f"{self.name}: `{_show(command)}`")
        except GuestTimeout:
            raise GuestCommandTimeout(
                f"{self.name}: `{_show(command)}` kept succeeding for {timeout:g}s") from None

    def wait_for_unit(self, unit: str, *, timeout: float = 120) -> None:
        """Wait until systemd ``unit`` is active. A unit that enters *failed*, or does not exist,
        raises :class:`GuestCommandFailed` at once; one still not active when time runs out
        raises :class:`GuestCommandTimeout`."""
        query = ["systemctl", "show", "--property=ActiveState,SubState,LoadState", "--", unit]

        def attempt() -> bool | None:
            props = dict(line.partition("=")[::2] for line in self.succeed(query).splitlines())
            if props.get("LoadState") == "not-found":
                raise GuestCommandFailed(f"{self.name}: unit {unit} does not exist")
            if props.get("ActiveState") == "failed":
                journal = self.execute(["journalctl", "-u", unit, "-n", "20", "--no-pager"])
                raise GuestCommandFailed(f"{self.name}: unit {unit} failed: "
                                         f"{_tail(journal.stdout_text, 600)!r}")
            return True if props.get("ActiveState") == "active" else None

        try:
            retry_until(attempt, timeout=timeout, what=f"{self.name}: unit {unit} active")
        except GuestTimeout:
            raise GuestCommandTimeout(
                f"{self.name}: unit {unit} not active within {timeout:g}s") from None

    # -- files -------------------------------------------------------------------------------
    def write_file(self, guest_path: str, data: bytes, *, mode: int = 0o644,
                   timeout: float = 300) -> None:
        """Write ``data`` to ``guest_path`` byte-exact, in chunks through the agent."""
        agent = self.handle.agent()
        deadline = time.monotonic() + timeout
        handle = agent.command("guest-file-open", {"path": guest_path, "mode": "wb"}, timeout=30)
        try:
            for offset in range(0, len(data), WRITE_CHUNK):
                self._check_deadline(deadline, f"write {guest_path}")
                agent.command("guest-file-write", {
                    "handle": handle,
                    "buf-b64": base64.b64encode(data[offset:offset + WRITE_CHUNK]).decode()},
                    timeout=60)
        except BaseException:
            with contextlib.suppress(GuestError):
                agent.command("guest-file-close", {"handle": handle}, timeout=10)
            raise
        agent.command("guest-file-close", {"handle": handle}, timeout=30)
        self.succeed(["chmod", f"{mode:o}", guest_path], timeout=30)

    def read_file(self, guest_path: str, *, timeout: float = 300) -> bytes:
        """Read ``guest_path`` byte-exact through the agent."""
        agent = self.handle.agent()
        deadline = time.monotonic() + timeout
        try:
            handle = agent.command("guest-file-open", {"path": guest_path, "mode": "rb"},
                                   timeout=30)
        except GuestError as exc:
            if "No such file" in str(exc):
                raise GuestCommandFailed(f"{self.name}: {guest_path}: no such file") from None
            raise
        chunks = []
        try:
            while True:
                self._check_deadline(deadline, f"read {guest_path}")
                reply = agent.command("guest-file-read", {"handle": handle, "count": CHUNK},
                                      timeout=60)
                chunks.append(base64.b64decode(reply.get("buf-b64", "")))
                if reply.get("eof") or reply.get("count", 0) == 0:
                    break
        except BaseException:
            with contextlib.suppress(GuestError):
                agent.command("guest-file-close", {"handle": handle}, timeout=10)
            raise
        agent.command("guest-file-close", {"handle": handle}, timeout=30)
        return b"".join(chunks)

    def copy_to(self, local: Path, guest_path: str, *, timeout: float = 300) -> None:
        """Copy the host file ``local`` into the guest at ``guest_path`` (mode preserved)."""
        self.write_file(guest_path, local.read_bytes(), mode=local.stat().st_mode & 0o7777,
                        timeout=timeout)

    def copy_from(self, guest_path: str, local: Path, *, timeout: float = 300) -> None:
        """Copy ``guest_path`` from the guest to the host file ``local``."""
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(self.read_file(guest_path, timeout=timeout))

    # -- power ------------------------------------------------------------------------------
    def wait_for_agent(self, *, timeout: float = 240) -> None:
        """Wait until the guest agent answers; fail fast if the console shows a panic."""
        def attempt() -> bool | None:
            problem = self.handle.boot_problem()
            if problem:
                raise GuestError(f"{self.name}: {problem}", self.console_log)
            if not self.handle.is_running():
                raise GuestError(f"{self.name}: the VM stopped while booting", self.console_log)
            try:
                self.handle.agent().command("guest-ping", timeout=2)
                return True
            except GuestError:
                return None

        retry_until(attempt, timeout=timeout, interval=0.1,
                    what=f"{self.name}: guest agent answering", console_log=self.console_log)

    def boot_id(self) -> str:
        """The guest kernel's boot id (changes with every boot)."""
        return self.read_file("/proc/sys/kernel/random/boot_id", timeout=30).decode().strip()

    def reboot(self, *, timeout: float = 240) -> None:
        """Reboot the guest cleanly and wait until the agent answers from the new boot."""
        before = self.boot_id()
        self.handle.new_boot()
        with contextlib.suppress(GuestError):  # the agent may go away before it answers
            self.handle.agent().command("guest-shutdown", {"mode": "reboot"}, timeout=5)

        def attempt() -> bool | None:
            try:
                return True if self.boot_id() != before else None
            except GuestError:
                if self.handle.boot_problem():
                    raise
                return None

        retry_until(attempt, timeout=timeout, interval=0.5,
                    what=f"{self.name}: reboot", console_log=self.console_log)
        self._booted()

    def shutdown(self, *, timeout: float = 120) -> None:
        """Power the guest off cleanly and wait until the VM has stopped."""
        with contextlib.suppress(GuestError):
            self.handle.agent().command("guest-shutdown", {"mode": "powerdown"}, timeout=5)
        retry_until(lambda: True if not self.handle.is_running() else None, timeout=timeout,
                    what=f"{self.name}: shutdown", console_log=self.console_log)

    def crash(self) -> None:
        """Cut the power at once, as a failing host would (no shutdown, no sync)."""
        self.handle.power_off_hard()

    def start(self, *, timeout: float = 240) -> None:
        """Boot a stopped (shut down or crashed) VM from its disk and wait for the agent."""
        self.handle.power_on()
        self.wait_for_agent(timeout=timeout)
        self._booted()

    def _booted(self) -> None:
        for hook in self.after_boot:
            hook(self)

    def _check_deadline(self, deadline: float, what: str) -> None:
        if time.monotonic() > deadline:
            raise GuestTimeout(f"{self.name}: {what}: out of time", self.console_log)


def _show(command: Command) -> str:
    text = command if isinstance(command, str) else shlex.join(command)
    return text if len(text) <= 160 else text[:157] + "..."


def _tail(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]
