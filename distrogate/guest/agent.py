"""The QEMU guest agent transport: JSON commands through libvirt, nothing else.

No SSH and no host network: the agent's virtio-serial channel works while the guest's network
is broken on purpose.
"""

from __future__ import annotations

import base64
import json
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from distrogate.errors import GuestError, GuestTimeout
from distrogate.lab import virt

# qemu-ga buffers at most 16 MiB of captured output per stream.
MAX_CAPTURE = 16 << 20
GUEST_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


log = logging.getLogger(__name__)


class Agent(Protocol):
    """Anything that can send one guest-agent command and return its ``return`` value."""

    def command(self, execute: str, arguments: dict[str, Any] | None = None, *,
                timeout: float = 10) -> Any:
        """Send one command and return its result."""


class LibvirtAgent:
    """The guest agent of a libvirt domain (``virDomainQemuAgentCommand``)."""

    def __init__(self, domain: virt.Domain, name: str, *,
                 crashed: Callable[[], str | None] | None = None) -> None:
        self._domain = domain
        self.name = name
        self._crashed = crashed  # a fatal console message of this boot, if there is one

    def command(self, execute: str, arguments: dict[str, Any] | None = None, *,
                timeout: float = 10) -> Any:
        """Send ``execute`` with ``arguments``; raise :class:`GuestError` if the agent fails.

        An agent that stalls (libvirt: "Guest agent not available for now") is asked again,
        for at most :data:`STALL_BUDGET` seconds, where asking again is safe: a command that
        only reads (:data:`REPEATABLE`), or one libvirt never sent (see :func:`stall_retry`).
        A loaded TCG host stalls guests for seconds; such a stall is not the image's doing.
        A stall of a guest whose console shows its kernel died raises :class:`GuestError`
        (a crash) at once.
        """
        message: dict[str, Any] = {"execute": execute}
        if arguments is not None:
            message["arguments"] = arguments
        seconds = max(1, math.ceil(timeout))
        give_up = time.monotonic() + STALL_BUDGET
        while True:
            sent = time.monotonic()
            try:
                reply = virt.agent_command(self._domain, json.dumps(message), seconds)
                break
            except virt.LibvirtError as exc:
                text = str(exc)
                now = time.monotonic()
                crash = self._crashed() if self._crashed and _STALLED in text else None
                if crash is not None:
                    raise GuestError(f"{self.name}: guest agent {execute}: the guest crashed "
                                     f"({crash})") from None
                if now < give_up and stall_retry(execute, text, now - sent, seconds):
                    log.warning("%s: guest agent stalled on %s after %.1fs (%s); asking again",
                                self.name, execute, now - sent, text)
                    time.sleep(1.0)
                    continue
                cls = GuestTimeout if "timeout" in text.lower() or "not responding" in text \
                    else GuestError
                raise cls(f"{self.name}: guest agent {execute}: {text}") from None
        if reply is None:
            raise GuestError(f"{self.name}: guest agent {execute}: empty reply")
        return json.loads(reply).get("return")


# How long an agent may stay stalled before a command that can be repeated gives up.
STALL_BUDGET = 120.0
# libvirt waits this long (QEMU_AGENT_WAIT_TIME) for the guest-sync it sends before a command
# whenever an earlier command timed out; a stall inside that wait means the command itself
# was never sent.
SYNC_WAIT = 5.0
# Commands that only read: sending one twice changes nothing in the guest.
REPEATABLE = frozenset({"guest-exec-status", "guest-info", "guest-get-osinfo",
                        "guest-get-time", "guest-network-get-interfaces"})
_STALLED = "not available for now"
# Seconds one guest-exec-status may take before it counts as a stall: generous, since the
# reply of a finished process carries its output (megabytes through virtio-serial) and qemu-ga
# forgets the process once it has sent it.
STATUS_WAIT = 20.0


def stall_retry(execute: str, error: str, elapsed: float, seconds: int) -> bool:
    """Whether a failed agent command may be sent again: the agent stalled (libvirt's
    "Guest agent not available for now"), and either ``execute`` only reads, or the failure
    came back so long before the command's own ``seconds`` that it can only have been
    libvirt's guest-sync timing out, before the command was sent. ``guest-ping`` is never
    repeated here: its callers poll it on their own clock."""
    if _STALLED not in error or execute == "guest-ping":
        return False
    if execute in REPEATABLE:
        return True
    return seconds >= 2 * SYNC_WAIT and elapsed < min(seconds - 1.0, SYNC_WAIT * 1.6)


@dataclass(frozen=True)
class ExecResult:
    """A finished guest process: exit code (or -signal), and exact output bytes."""

    exit_code: int
    stdout: bytes
    stderr: bytes
    truncated: bool = False

    @property
    def stdout_text(self) -> str:
        """Standard output as text (UTF-8, undecodable bytes replaced)."""
        return self.stdout.decode(errors="replace")

    @property
    def stderr_text(self) -> str:
        """Standard error as text (UTF-8, undecodable bytes replaced)."""
        return self.stderr.decode(errors="replace")


def guest_exec(agent: Agent, argv: list[str], *, timeout: float, stdin: bytes | None = None,
               env: dict[str, str] | None = None, name: str = "guest") -> ExecResult | None:
    """Run ``argv`` in the guest and wait at most ``timeout`` seconds.

    Returns None when the deadline passes (the process is then killed in the guest).
    """
    environment = {"PATH": GUEST_PATH, "LANG": "C.UTF-8", "HOME": "/root", "TERM": "dumb"}
    if env:
        environment.update(env)
    arguments: dict[str, Any] = {
        "path": argv[0], "arg": argv[1:], "capture-output": True,
        "env": [f"{k}={v}" for k, v in environment.items()],
    }
    if stdin is not None:
        arguments["input-data"] = base64.b64encode(stdin).decode()
    started = time.monotonic()
    # At least 2 x SYNC_WAIT, so that a stalled guest-sync is told apart from a stalled command.
    pid = agent.command("guest-exec", arguments,
                        timeout=max(2 * SYNC_WAIT, min(timeout, 30.0)))["pid"]
    deadline = started + timeout
    delay = 0.002
    while True:
        try:
            # a status query answers at once; a stalled agent is asked again (see command)
            status = agent.command("guest-exec-status", {"pid": pid}, timeout=STATUS_WAIT)
        except GuestError as exc:
            if "encode message payload" in str(exc) or "No complete agent response" in str(exc):
                raise GuestError(f"{name}: the output of `{' '.join(argv)[:80]}` is too large "
                                 "for one agent reply (about 3 MiB); run it with "
                                 "execute(..., spool=True)") from None
            if "Invalid parameter" in str(exc) and "pid" in str(exc):
                # qemu-ga forgets a finished process once it has sent its status: a reply
                # lost to a stall (asked again since) took the result with it
                raise GuestError(f"{name}: the guest agent stalled and lost the result of "
                                 f"`{' '.join(argv)[:80]}` ({exc})") from None
            raise
        if status.get("exited"):
            code = status.get("exitcode")
            if code is None:
                code = -int(status.get("signal", 0))
            return ExecResult(
                exit_code=int(code),
                stdout=base64.b64decode(status.get("out-data", "")),
                stderr=base64.b64decode(status.get("err-data", "")),
                truncated=bool(status.get("out-truncated") or status.get("err-truncated")),
            )
        if time.monotonic() >= deadline:
            _kill(agent, pid)
            return None
        time.sleep(min(delay, max(0.0, deadline - time.monotonic())))
        delay = min(delay * 2, 0.05)


# Stop the process and all its descendants first (so none forks or is reparented away while
# we work), then kill them all.
_KILL_TREE = """
tree() { for c in $(pgrep -P "$1"); do kill -STOP "$c" 2>/dev/null; tree "$c"; done; echo "$1"; }
kill -STOP "$1" 2>/dev/null
kill -KILL $(tree "$1") 2>/dev/null
true
"""
KILL_WAIT = 10.0


def _kill(agent: Agent, pid: int) -> None:
    """Kill the guest process ``pid`` and its descendants, and wait (bounded) until it is gone."""
    try:
        killer = agent.command("guest-exec", {"path": "/bin/sh",
                                              "arg": ["-c", _KILL_TREE, "kill", str(pid)]},
                               timeout=5)["pid"]
        deadline = time.monotonic() + KILL_WAIT
        for target in (killer, pid):
            while time.monotonic() < deadline:
                if agent.command("guest-exec-status", {"pid": target}, timeout=5).get("exited"):
                    break
                time.sleep(0.05)
    except GuestError as exc:
        log.warning("could not kill guest process %d: %s", pid, exc)
