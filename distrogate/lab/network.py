"""Lab networks: isolated bridges (no forwarding, no host address, no DHCP) with an address
plan, so that every machine gets typed, predictable addresses on every network it joins."""

from __future__ import annotations

import hashlib
import ipaddress
from dataclasses import dataclass, field

from distrogate.guest.addresses import NicAddress


@dataclass
class LabNetwork:
    """One network of a run: the name a suite gave it, libvirt's name, the bridge in the lab
    namespace, and its IPv6 and IPv4 prefixes (either may be off)."""

    name: str
    libvirt_name: str
    bridge: str
    ipv6: ipaddress.IPv6Network | None
    ipv4: ipaddress.IPv4Network | None
    _next_host: int = field(default=1, repr=False)

    @classmethod
    def plan(cls, name: str, libvirt_name: str, index: int, *, ipv6: bool = True,
             ipv4: bool = False) -> LabNetwork:
        """A network's prefixes: ULA ``fd42:<hash>:<index>::/64`` and ``10.<index>.<hash>.0/24``
        (unique among one run's networks, so a machine on several never sees one twice)."""
        digest = hashlib.sha256(libvirt_name.encode()).digest()
        bridge = "dgb" + hashlib.sha256(libvirt_name.encode()).hexdigest()[:10]
        v6 = ipaddress.IPv6Network(f"fd42:{digest[0]:02x}{digest[1]:02x}:{index:x}::/64")
        v4 = ipaddress.IPv4Network(f"10.{index % 250}.{digest[2] % 250}.0/24")
        return cls(name, libvirt_name, bridge, v6 if ipv6 else None, v4 if ipv4 else None)

    def allocate(self) -> int:
        """The next free host number on this network."""
        host = self._next_host
        self._next_host += 1
        if host > 250:
            raise ValueError(f"network {self.name}: more than 250 machines")
        return host

    def addresses(self, host: int, mac: str) -> tuple[NicAddress, ...]:
        """The addresses host number ``host`` gets on this network."""
        found: list[NicAddress] = []
        if self.ipv6 is not None:
            found.append(NicAddress(self.name, mac, ipaddress.IPv6Interface(
                f"{self.ipv6.network_address + host}/{self.ipv6.prefixlen}")))
        if self.ipv4 is not None:
            found.append(NicAddress(self.name, mac, ipaddress.IPv4Interface(
                f"{self.ipv4.network_address + host}/{self.ipv4.prefixlen}")))
        return tuple(found)
