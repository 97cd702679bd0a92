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

    def __init__(self, domain: virt.Domain, name: str) -> None:
        self._domain = domain
        self.name = name

    def command(self, execute: str, arguments: dict[str, Any] | None = None, *,
                timeout: float = 10) -> Any:
        """Send ``execute`` with ``arguments``; raise :class:`GuestError` if the agent fails."""
        message: dict[str, Any] = {"execute": execute}
        if arguments is not None:
            message["arguments"] = arguments
        try:
            reply = virt.agent_command(self._domain, json.dumps(message),
                                       max(1, math.ceil(timeout)))
        except virt.LibvirtError as exc:
            text = str(exc)
            cls = GuestTimeout if "timeout" in text.lower() or "not responding" in text else GuestError
            raise cls(f"{self.name}: guest agent {execute}: {text}") from None
        if reply is None:
            raise GuestError(f"{self.name}: guest agent {execute}: empty reply")
        return json.loads(reply).get("return")


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
    pid = agent.command("guest-exec", arguments, timeout=max(5.0, min(timeout, 30.0)))["pid"]
    deadline = started + timeout
    delay = 0.002
    while True:
        try:
            status = agent.command("guest-exec-status", {"pid": pid}, timeout=30)
        except GuestError as exc:
            if "encode message payload" in str(exc) or "No complete agent response" in str(exc):
                raise GuestError(f"{name}: the output of `{' '.join(argv)[:80]}` is too large "
                                 "for one agent reply (about 3 MiB); run it with "
                                 "execute(..., spool=True)") from None
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
