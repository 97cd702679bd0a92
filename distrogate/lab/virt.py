"""The one place that imports libvirt: what the lab and the guest agent use of it.

The rest of distrogate imports this module, never ``libvirt`` or ``libvirt_qemu``, so that the
binding's surface (connections, domains, its error type, guest agent commands) is named once.
Importing it also silences libvirt's default error handler, which would print every error to
stderr on top of the exception that carries it.

Every call is bounded. Connections run libvirt's keepalive (an event loop thread runs
libvirt's default event implementation), so when the daemon stops answering (hung, or
stopped with SIGSTOP) every call on the connection, including one already waiting for its
reply, fails within about ``KEEPALIVE_INTERVAL * (KEEPALIVE_COUNT + 1)`` seconds. Opening a
connection, which keepalive does not cover yet, and the long calls (create, save, restore)
run with a timeout of their own besides (:func:`bounded`).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any, TypeAlias, TypeVar

import libvirt
import libvirt_qemu

from distrogate.errors import LabError

log = logging.getLogger(__name__)
T = TypeVar("T")

KEEPALIVE_INTERVAL = 3  # seconds between pings while the daemon is silent
KEEPALIVE_COUNT = 3  # unanswered pings before the connection is closed
OPEN_TIMEOUT = 30.0
CREATE_TIMEOUT = 180.0
SAVE_TIMEOUT = 300.0
RESTORE_TIMEOUT = 180.0

#: A connection to a libvirt daemon.
Connection: TypeAlias = libvirt.virConnect
#: A libvirt domain (a VM, running or not).
Domain: TypeAlias = libvirt.virDomain
#: What every libvirt call raises.
LibvirtError: TypeAlias = libvirt.libvirtError

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


class LibvirtTimeout(LabError):
    """A libvirt call did not return within its bound (the message names the call)."""


_loop_lock = threading.Lock()
_loop_running = False


def _event_loop() -> None:
    while True:
        libvirt.virEventRunDefaultImpl()


def ensure_event_loop() -> None:
    """Register libvirt's default event implementation and run it in a daemon thread (once
    per process): what keepalive and domain events need."""
    global _loop_running
    with _loop_lock:
        if not _loop_running:
            libvirt.virEventRegisterDefaultImpl()
            threading.Thread(target=_event_loop, name="libvirt-events", daemon=True).start()
            _loop_running = True


def bounded(what: str, timeout: float, call: Callable[[], T]) -> T:
    """``call()`` within ``timeout`` seconds, else :class:`LibvirtTimeout` naming ``what``.

    The call runs in a daemon thread; one that never returns is left behind (it ends when the
    daemon or its connection goes), and the caller tears down.
    """
    box: dict[str, Any] = {}
    done = threading.Event()

    def target() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:
            box["error"] = exc
        finally:
            done.set()

    threading.Thread(target=target, name=f"libvirt {what}"[:60], daemon=True).start()
    if not done.wait(timeout):
        raise LibvirtTimeout(f"libvirt {what}: no answer within {timeout:g}s (libvirtd hung?)")
    if "error" in box:
        raise box["error"]
    return box["value"]  # type: ignore[no-any-return]


def connect(uri: str, timeout: float = OPEN_TIMEOUT) -> Connection:
    """Open a read-write connection to the daemon at ``uri``, with keepalive (raises
    :data:`LibvirtError`, or :class:`LibvirtTimeout` if the daemon does not answer)."""
    ensure_event_loop()
    conn: Connection = bounded(f"open {uri}", timeout, lambda: libvirt.open(uri))
    try:
        conn.setKeepAlive(KEEPALIVE_INTERVAL, KEEPALIVE_COUNT)
    except libvirt.libvirtError as exc:  # a driver without keepalive (test://)
        log.debug("no keepalive on %s: %s", uri, exc)
    return conn


def can_connect(uri: str, timeout: float = 10.0) -> bool:
    """Whether the daemon at ``uri`` answers a connection (which is closed again)."""
    try:
        connect(uri, timeout).close()
    except (libvirt.libvirtError, LibvirtTimeout):
        return False
    return True


def create(conn: Connection, xml: str, timeout: float = CREATE_TIMEOUT) -> Domain:
    """Start a transient domain from ``xml``, bounded."""
    return bounded("create", timeout, lambda: conn.createXML(xml, 0))


def save(domain: Domain, path: str, timeout: float = SAVE_TIMEOUT) -> None:
    """Save ``domain``'s state to ``path`` (the domain stops), bounded."""
    bounded(f"save of {domain.name()}", timeout, lambda: domain.save(path))


def restore(conn: Connection, path: str, timeout: float = RESTORE_TIMEOUT) -> None:
    """Restore a domain from the state file ``path``, bounded."""
    bounded(f"restore of {path}", timeout, lambda: conn.restore(path))


def library_version() -> int:
    """The version of the libvirt library this process uses (major * 1e6 + minor * 1e3 +
    release)."""
    return int(libvirt.getVersion())


def agent_command(domain: Domain, message: str, timeout: int) -> Any:
    """Send one JSON ``message`` to the QEMU guest agent of ``domain``; its JSON reply text
    (raises :data:`LibvirtError`)."""
    return libvirt_qemu.qemuAgentCommand(domain, message, timeout, 0)
