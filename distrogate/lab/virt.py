"""The one place that imports libvirt: what the lab and the guest agent use of it.

The rest of distrogate imports this module, never ``libvirt`` or ``libvirt_qemu``, so that the
binding's surface (connections, domains, its error type, guest agent commands) is named once.
Importing it also silences libvirt's default error handler, which would print every error to
stderr on top of the exception that carries it.
"""

from __future__ import annotations

from typing import Any, TypeAlias

import libvirt
import libvirt_qemu

#: A connection to a libvirt daemon.
Connection: TypeAlias = libvirt.virConnect
#: A libvirt domain (a VM, running or not).
Domain: TypeAlias = libvirt.virDomain
#: What every libvirt call raises.
LibvirtError: TypeAlias = libvirt.libvirtError

libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def connect(uri: str) -> Connection:
    """Open a read-write connection to the daemon at ``uri`` (raises :data:`LibvirtError`)."""
    return libvirt.open(uri)


def can_connect(uri: str) -> bool:
    """Whether the daemon at ``uri`` answers a connection (which is closed again)."""
    try:
        libvirt.open(uri).close()
    except libvirt.libvirtError:
        return False
    return True


def library_version() -> int:
    """The version of the libvirt library this process uses (major * 1e6 + minor * 1e3 +
    release)."""
    return int(libvirt.getVersion())


def agent_command(domain: Domain, message: str, timeout: int) -> Any:
    """Send one JSON ``message`` to the QEMU guest agent of ``domain``; its JSON reply text
    (raises :data:`LibvirtError`)."""
    return libvirt_qemu.qemuAgentCommand(domain, message, timeout, 0)
