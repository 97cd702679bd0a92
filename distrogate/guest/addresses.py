"""Typed addresses of a machine's network interfaces."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

IPInterface = ipaddress.IPv4Interface | ipaddress.IPv6Interface
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass(frozen=True)
class NicAddress:
    """One address of one interface: the lab network it is on (by its declared name), the
    interface's MAC, and the address with its prefix."""

    network: str
    mac: str
    interface: IPInterface

    @property
    def ip(self) -> IPAddress:
        """The address without its prefix length."""
        return self.interface.ip

    @property
    def family(self) -> int:
        """4 or 6."""
        return self.interface.version


def pick(addresses: tuple[NicAddress, ...], network: str | None, family: int,
         owner: str) -> IPAddress:
    """The ``family`` address on ``network`` (any network when None) among ``addresses``."""
    for address in addresses:
        if address.family == family and network in (None, address.network):
            return address.ip
    where = f" on network {network!r}" if network else ""
    have = ", ".join(f"{a.network}:{a.interface}" for a in addresses) or "none"
    raise LookupError(f"{owner}: no IPv{family} address{where} (has: {have})")
