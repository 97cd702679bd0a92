"""Parsers for what the guest's IPsec tools print: ``swanctl --list-sas``, ``ip -s xfrm
state`` and ``ip xfrm policy``. Pure functions of text, so that they are tested without a VM."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_IKE = re.compile(r"^(?P<name>[^\s:]+): #(?P<id>\d+), (?P<state>[A-Z_]+), (?P<version>IKEv\d)")
_CHILD = re.compile(r"^\s+(?P<name>[^\s:]+): #(?P<id>\d+), reqid (?P<reqid>\d+), "
                    r"(?P<state>[A-Z_]+), (?P<mode>[A-Z_]+)(?:-[A-Z_]+)?, (?P<proposal>\S+)")
_TRAFFIC = re.compile(r"^\s+(?P<dir>in|out)\s+(?P<spi>[0-9a-f]+)(?:_i)?(?:\s*\([^)]*\))?,"
                      r"\s*(?P<bytes>\d+) bytes,\s*(?P<packets>\d+) packets")


@dataclass
class ChildSa:
    """A CHILD_SA as swanctl lists it."""

    name: str
    id: int
    reqid: int
    state: str
    mode: str
    proposal: str
    spi_in: str = ""
    spi_out: str = ""
    bytes_in: int = 0
    bytes_out: int = 0
    packets_in: int = 0
    packets_out: int = 0


@dataclass
class IkeSa:
    """An IKE_SA as swanctl lists it, with its CHILD_SAs."""

    name: str
    id: int
    state: str
    version: str
    proposal: str = ""
    children: list[ChildSa] = field(default_factory=list)


def list_sas(text: str) -> list[IkeSa]:
    """The IKE_SAs (and CHILD_SAs) in ``swanctl --list-sas`` output (strongSwan 5.9 and 6.0)."""
    sas: list[IkeSa] = []
    child: ChildSa | None = None
    for line in text.splitlines():
        ike = _IKE.match(line)
        if ike:
            sas.append(IkeSa(ike["name"], int(ike["id"]), ike["state"], ike["version"]))
            child = None
            continue
        if not sas:
            continue
        match = _CHILD.match(line)
        if match:
            child = ChildSa(match["name"], int(match["id"]), int(match["reqid"]), match["state"],
                            match["mode"], match["proposal"])
            sas[-1].children.append(child)
            continue
        traffic = _TRAFFIC.match(line)
        if traffic and child is not None:
            if traffic["dir"] == "in":
                child.spi_in, child.bytes_in = traffic["spi"], int(traffic["bytes"])
                child.packets_in = int(traffic["packets"])
            else:
                child.spi_out, child.bytes_out = traffic["spi"], int(traffic["bytes"])
                child.packets_out = int(traffic["packets"])
            continue
        stripped = line.strip()
        if (child is None and not sas[-1].proposal and "/" in stripped and " " not in stripped):
            sas[-1].proposal = stripped  # AES_CBC-256/HMAC_SHA2_256_128/PRF_.../CURVE_25519
    return sas


def established(sas: list[IkeSa], name: str) -> ChildSa | None:
    """The installed CHILD_SA ``name`` of an established IKE_SA, if any (the newest)."""
    found = [c for sa in sas if sa.state == "ESTABLISHED" for c in sa.children
             if c.name == name and c.state == "INSTALLED"]
    return max(found, key=lambda c: c.id) if found else None


@dataclass
class XfrmState:
    """One kernel SA (``ip -s xfrm state``)."""

    src: str
    dst: str
    proto: str = ""
    spi: str = ""
    reqid: int = 0
    mode: str = ""
    algorithms: list[str] = field(default_factory=list)
    bytes: int = 0
    packets: int = 0

    @property
    def live(self) -> bool:
        """An ESP/AH SA with an SPI (a larval acquire state has SPI 0)."""
        try:
            return self.proto in ("esp", "ah") and int(self.spi, 16) != 0
        except ValueError:
            return False


def _bare(word: str) -> str:
    """A number without what ``ip -s`` appends in parentheses."""
    return word.split("(", 1)[0]


_CURRENT = re.compile(r"^\s*(\d+)\(bytes\),\s*(\d+)\(packets\)")


def xfrm_states(text: str) -> list[XfrmState]:
    """The SAs in ``ip -s xfrm state`` output (``ip xfrm state`` without counters too)."""
    states: list[XfrmState] = []
    in_current = False
    for line in text.splitlines():
        words = line.split()
        if line.startswith("src ") and len(words) >= 4 and words[2] == "dst":
            states.append(XfrmState(words[1], words[3]))
            in_current = False
            continue
        if not states or not words:
            continue
        state = states[-1]
        if words[0] == "proto" and "spi" in words:
            # ``ip -s`` adds the decimal: spi 0xc9c1a83b(3385960507) reqid 1(0x00000001)
            state.proto = words[1]
            state.spi = _bare(words[words.index("spi") + 1])
            if "reqid" in words:
                state.reqid = int(_bare(words[words.index("reqid") + 1]), 0)
            if "mode" in words:
                state.mode = words[words.index("mode") + 1]
        elif words[0] in ("aead", "enc", "auth", "auth-trunc", "comp") and len(words) > 1:
            state.algorithms.append(f"{words[0]} {words[1]}")
        elif words[0] == "lifetime" and words[1:2] == ["current:"]:
            in_current = True
        elif in_current:
            match = _CURRENT.match(line)
            if match:
                state.bytes, state.packets = int(match[1]), int(match[2])
            in_current = False
    return states


@dataclass
class XfrmPolicy:
    """One kernel policy (``ip xfrm policy``): selector, direction and template."""

    src: str
    dst: str
    dir: str = ""
    proto: str = ""
    mode: str = ""
    action: str = ""


def xfrm_policies(text: str) -> list[XfrmPolicy]:
    """The policies in ``ip xfrm policy`` output (socket policies included)."""
    policies: list[XfrmPolicy] = []
    for line in text.splitlines():
        words = line.split()
        if line.startswith("src ") and len(words) >= 4 and words[2] == "dst":
            policies.append(XfrmPolicy(words[1], words[3]))
            continue
        if not policies or not words:
            continue
        policy = policies[-1]
        if words[0] == "dir" and len(words) > 1:
            policy.dir = words[1]
            if "action" in words:
                policy.action = words[words.index("action") + 1]
        elif words[0] == "proto" and len(words) > 1 and not policy.proto:
            policy.proto = words[1]
            if "mode" in words:
                policy.mode = words[words.index("mode") + 1]
    return policies


def protects(policies: list[XfrmPolicy], local: str, remote: str) -> bool:
    """Whether an ESP policy covers traffic from ``local`` to ``remote`` (``out``) and back."""
    def covered(src: str, dst: str, direction: str) -> bool:
        return any(p.dir == direction and p.proto == "esp" and p.src.split("/")[0] == src
                   and p.dst.split("/")[0] == dst for p in policies)
    return covered(local, remote, "out") and covered(remote, local, "in")
