"""Reading a guest's serial console capture for signs that it cannot come up."""

from __future__ import annotations

import re
import shutil
import time
from pathlib import Path

_FATAL = [
    (re.compile(rb"Kernel panic - not syncing[^\r\n]*"), "kernel panic"),
    (re.compile(rb"No bootable option or device was found"), "firmware found nothing to boot"),
    (re.compile(rb"BdsDxe: failed to load Boot[^\r\n]*"), "firmware could not load a boot entry"),
    (re.compile(rb"You are in emergency mode"), "systemd emergency mode"),
    (re.compile(rb"ALERT! [^\r\n]* does not exist"), "initramfs could not find the root disk"),
]
_LOGIN = re.compile(rb"login: ")
AGENT_GRACE = 30.0  # seconds after a login prompt before a silent agent counts as missing


def tail(path: Path, size: int = 65536, start: int = 0) -> bytes:
    """The last ``size`` bytes of ``path`` after offset ``start`` (all of them if the file is
    now shorter than ``start``: it was truncated); empty if it does not exist yet."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            end = handle.tell()
            if end < start:
                start = 0
            handle.seek(max(start, end - size))
            return handle.read()
    except OSError:
        return b""


def keep(console_log: Path, directory: Path, name: str) -> Path | None:
    """Copy the console log ``console_log`` of the VM ``name`` to ``directory/consoles/<name>.log``
    (somewhere that outlives the lab) and return the copy's path; None if there is no log."""
    if not console_log.exists():
        return None
    target = directory / "consoles" / f"{name}.log"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(console_log, target)
    return target


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class ConsoleWatch:
    """Scans a console log for fatal boot messages and for a login prompt without an agent."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._login_seen: float | None = None
        self._start = 0

    def reset(self) -> None:
        """Forget what was seen: a new boot begins (a reboot, a start after a crash), and only
        what the console prints from now on counts."""
        self._login_seen = None
        self._start = _size(self.path)

    def fatal(self) -> str | None:
        """A one-line fatal message (a kernel panic, emergency mode, ...) the console showed
        since this boot began, or None. Unlike :meth:`problem`, safe to ask at any time of a
        running guest's life."""
        data = tail(self.path, start=self._start)
        for pattern, what in _FATAL:
            match = pattern.search(data)
            if match:
                line = match.group(0).decode(errors="replace").strip()
                if not line:
                    return what
                return line if what in line.lower() else f"{what}: {line}"
        return None

    def problem(self) -> str | None:
        """A one-line reason the guest cannot come up, or None (ask it while it boots)."""
        fatal = self.fatal()
        if fatal is not None:
            return fatal
        data = tail(self.path, start=self._start)
        if _LOGIN.search(data):
            now = time.monotonic()
            if self._login_seen is None:
                self._login_seen = now
            elif now - self._login_seen > AGENT_GRACE:
                return (f"booted to a login prompt but the guest agent did not answer for "
                        f"{AGENT_GRACE:g}s: the image lacks qemu-guest-agent or it is disabled")
        return None
