"""The IPsec suite's settings: the policy's ``suites: {ipsec: {...}}`` section.

Keys (all optional):

``implementation``
    ``auto`` (default: whatever IKE daemon each image has, strongSwan's swanctl first),
    ``strongswan`` or ``libreswan`` (an image without it fails the pair).
``auth``
    ``psk`` (default) or ``x509`` (a CA made by the suite with openssl on the host).
``families``
    Address families the pairs talk over: ``[ipv6]`` (default) or ``[ipv6, ipv4]``; IPv6 is
    always among them (the cluster network is IPv6).
``ike_proposal`` / ``esp_proposal``
    The proposals the generated (promoted) configuration pins, in strongSwan's syntax
    (default ``aes256-sha256-x25519`` and ``aes256gcm16``); the libreswan configuration says
    the same in its own syntax.
``sa_up_seconds``
    Bound on establishing an SA (default 60); judged against the baseline pair's time.
``rekey_seconds``
    The CHILD_SA rekey time of the rekey check (default 10; at least 10; the lifetime is
    twice that).
``steps``
    The steps to run and judge (default: all of :data:`STEPS`, in that order);
    ``config_loads`` and ``sa_up`` always run, every later step needs them. A quick run leaves
    out the slow ones (``peer_reboot`` is a cold boot under TCG, ``rekey`` waits out a
    lifetime).
``packet_sizes``
    ICMPv6 payload sizes of the large-packet check (default ``[1300, 1400, 1410, 1420, 1432]``:
    around the 1500-byte path MTU with ESP overhead).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from distrogate.errors import InputError
from distrogate.settingfields import choice, names, number, section

IMPLEMENTATIONS = ("auto", "strongswan", "libreswan")
AUTH_METHODS = ("psk", "x509")
FAMILIES = ("ipv6", "ipv4")
KEYS = ("implementation", "auth", "families", "ike_proposal", "esp_proposal", "sa_up_seconds",
        "rekey_seconds", "packet_sizes", "steps")
#: Every step a pair runs, in order (:mod:`distrogate.ipsec.pair`)
STEPS = ("kernel_sa", "config_loads", "sa_up", "ping6", "esp_on_wire", "xfrm_counters",
         "large_packets", "daemon_restart", "rekey", "peer_reboot")
ALWAYS = ("config_loads", "sa_up")
_PROPOSAL_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class IpsecSettings:
    """Typed settings of the IPsec suite (see the module)."""

    implementation: str = "auto"
    auth: str = "psk"
    families: tuple[str, ...] = ("ipv6",)
    ike_proposal: str = "aes256-sha256-x25519"
    esp_proposal: str = "aes256gcm16"
    sa_up_seconds: float = 60.0
    rekey_seconds: int = 10
    packet_sizes: tuple[int, ...] = (1300, 1400, 1410, 1420, 1432)
    steps: tuple[str, ...] = STEPS




def _proposal(raw: Mapping[str, Any], key: str, default: str, where: str) -> str:
    value = raw.get(key, default)
    if not isinstance(value, str) or not value or not set(value) <= _PROPOSAL_CHARS:
        raise InputError(f"{where}.{key}: expected a strongSwan proposal such as {default!r}, "
                         f"got {value!r}")
    return value


def parse(raw: Mapping[str, Any], options: Mapping[str, Any], where: str) -> IpsecSettings:
    """The typed settings from the policy section ``raw``; raises :class:`InputError` naming
    the key (``where`` is its place in the policy, ``suites.ipsec``)."""
    raw = section(raw, KEYS, where)
    families = raw.get("families", ["ipv6"])
    if not isinstance(families, list | tuple) or not families:
        raise InputError(f"{where}.families: expected a list such as [ipv6, ipv4], "
                         f"got {families!r}")
    for family in families:
        if family not in FAMILIES:
            raise InputError(f"{where}.families: unknown family {family!r} "
                             f"(expected {' or '.join(FAMILIES)})")
    if "ipv6" not in families:
        raise InputError(f"{where}.families: ipv6 is required (the cluster network is IPv6)")
    sizes = raw.get("packet_sizes", list(IpsecSettings.packet_sizes))
    if (not isinstance(sizes, list | tuple) or not sizes
            or not all(isinstance(s, int) and not isinstance(s, bool) and 8 <= s <= 65000
                       for s in sizes)):
        raise InputError(f"{where}.packet_sizes: expected a list of payload sizes from 8 to "
                         f"65000 bytes, got {sizes!r}")
    steps = names(raw, "steps", STEPS, where)
    return IpsecSettings(
        steps=tuple(s for s in STEPS if s in steps or s in ALWAYS),
        implementation=choice(raw, "implementation", IMPLEMENTATIONS, "auto", where),
        auth=choice(raw, "auth", AUTH_METHODS, "psk", where),
        families=tuple(f for f in FAMILIES if f in families),
        ike_proposal=_proposal(raw, "ike_proposal", IpsecSettings.ike_proposal, where),
        esp_proposal=_proposal(raw, "esp_proposal", IpsecSettings.esp_proposal, where),
        sa_up_seconds=number(raw, "sa_up_seconds", IpsecSettings.sa_up_seconds, 5, 600, where),
        rekey_seconds=int(number(raw, "rekey_seconds", IpsecSettings.rekey_seconds, 10, 300,
                                  where)),
        packet_sizes=tuple(int(s) for s in sizes),
    )
