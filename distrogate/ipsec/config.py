"""IPsec configuration as a fleet's management agent writes it: one host-to-host transport
connection per address family between two nodes, for strongSwan (swanctl.conf) and libreswan
(ipsec.conf + ipsec.secrets).

The texts depend only on the :class:`Connection` (addresses, auth, proposals, lifetimes): the
configuration made for the promoted image is the one the candidate gets, unchanged.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from distrogate.errors import InputError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

#: Files each implementation's configuration goes to (relative names → guest paths).
SWANCTL_DIR = "/etc/swanctl"
LIBRESWAN_CONF = "/etc/ipsec.d/distrogate.conf"
LIBRESWAN_SECRETS = "/etc/ipsec.d/distrogate.secrets"
NDP_UNIT = "distrogate-ipsec-ndp.service"
NDP_UNIT_PATH = f"/etc/systemd/system/{NDP_UNIT}"
#: ICMPv6 neighbour solicitation and advertisement
NDP_TYPES = (135, 136)


@dataclass(frozen=True)
class Connection:
    """One side's view of a host-to-host connection: ``name`` (``dg-ipv6``), the local and
    remote addresses, auth (``psk`` with ``secret``; ``x509`` with the local certificate's
    file name ``cert`` and the CA's ``ca``), the proposals (strongSwan syntax) and the
    CHILD_SA rekey time (seconds; 0: the daemon's default)."""

    name: str
    local: IPAddress
    remote: IPAddress
    auth: str
    ike_proposal: str
    esp_proposal: str
    secret: str = ""
    cert: str = ""
    ca: str = ""
    rekey_seconds: int = 0

    def __post_init__(self) -> None:
        if self.auth not in ("psk", "x509"):
            raise InputError(f"unknown auth method {self.auth!r} (expected psk or x509)")
        if self.auth == "psk" and not self.secret:
            raise InputError(f"connection {self.name}: psk auth needs a secret")
        if self.auth == "x509" and not (self.cert and self.ca):
            raise InputError(f"connection {self.name}: x509 auth needs a certificate and a CA")
        if self.local.version != self.remote.version:
            raise InputError(f"connection {self.name}: local {self.local} and remote "
                             f"{self.remote} are of different families")


def _quote(secret: str) -> str:
    if '"' in secret or "\n" in secret:
        raise InputError("a pre-shared key may not contain quotes or newlines")
    return f'"{secret}"'


def swanctl_conf(conns: list[Connection]) -> str:
    """``/etc/swanctl/conf.d/distrogate.conf`` for ``conns``: connections and their secrets."""
    lines = ["# written by distrogate's IPsec suite, as a management agent would", "connections {"]
    for c in conns:
        auth = "psk" if c.auth == "psk" else "pubkey"
        lines += [
            f"  {c.name} {{",
            "    version = 2",
            f"    local_addrs = {c.local}",
            f"    remote_addrs = {c.remote}",
            f"    proposals = {c.ike_proposal}",
            "    dpd_delay = 10s",
            "    local {",
            f"      auth = {auth}",
            f"      id = {c.local}",
            *([f"      certs = {c.cert}"] if c.auth == "x509" else []),
            "    }",
            "    remote {",
            f"      auth = {auth}",
            f"      id = {c.remote}",
            *([f"      cacerts = {c.ca}"] if c.auth == "x509" else []),
            "    }",
            "    children {",
            f"      {c.name} {{",
            "        mode = transport",
            f"        esp_proposals = {c.esp_proposal}",
            "        start_action = trap",
            "        dpd_action = restart",
            *([f"        rekey_time = {c.rekey_seconds}s",
               f"        life_time = {c.rekey_seconds * 2}s",
               f"        rand_time = {max(1, c.rekey_seconds // 4)}s"] if c.rekey_seconds else []),
            "      }",
            "    }",
            "  }",
        ]
    lines += ["}", "secrets {"]
    for c in conns:
        if c.auth == "psk":
            lines += [f"  ike-{c.name} {{", f"    id-local = {c.local}",
                      f"    id-remote = {c.remote}", f"    secret = {_quote(c.secret)}", "  }"]
    lines += ["}", ""]
    return "\n".join(lines)


_LIBRESWAN_ALGS = {
    "aes128": "aes128", "aes192": "aes192", "aes256": "aes256",
    "aes128gcm16": "aes_gcm128", "aes256gcm16": "aes_gcm256", "chacha20poly1305": "chacha20_poly1305",
    "sha1": "sha1", "sha256": "sha2_256", "sha384": "sha2_384", "sha512": "sha2_512",
    "prfsha256": "sha2_256", "prfsha384": "sha2_384", "prfsha512": "sha2_512",
}
_LIBRESWAN_GROUPS = {"modp2048": "modp2048", "modp3072": "modp3072", "modp4096": "modp4096",
                     "ecp256": "dh19", "ecp384": "dh20", "ecp521": "dh21", "x25519": "dh31",
                     "curve25519": "dh31"}


def libreswan_proposal(proposal: str) -> str:
    """A strongSwan proposal (``aes256-sha256-x25519``) in libreswan's syntax
    (``aes256-sha2_256;dh31``); an algorithm without a known spelling is an InputError."""
    algs, groups = [], []
    for token in proposal.split("-"):
        if token in _LIBRESWAN_GROUPS:
            groups.append(_LIBRESWAN_GROUPS[token])
        elif token in _LIBRESWAN_ALGS:
            algs.append(_LIBRESWAN_ALGS[token])
        else:
            raise InputError(f"proposal {proposal!r}: no libreswan spelling for {token!r}")
    return "-".join(algs) + (";" + "-".join(groups) if groups else "")


def _has_group(proposal: str) -> bool:
    return any(token in _LIBRESWAN_GROUPS for token in proposal.split("-"))


def libreswan_conf(conns: list[Connection]) -> str:
    """``/etc/ipsec.d/distrogate.conf`` for ``conns`` (PSK only)."""
    lines = ["# written by distrogate's IPsec suite, as a management agent would"]
    for c in conns:
        if c.auth != "psk":
            raise InputError(f"connection {c.name}: the libreswan configuration supports psk "
                             f"only, got {c.auth}")
        lines += [
            f"conn {c.name}",
            "    type=transport",
            "    ikev2=insist",
            "    authby=secret",
            f"    left={c.local}",
            f"    right={c.remote}",
            f"    ike={libreswan_proposal(c.ike_proposal)}",
            f"    esp={libreswan_proposal(c.esp_proposal)}",
            # strongSwan's ESP proposal asks for PFS exactly when it names a DH group;
            # libreswan's default is pfs=yes, which a strongSwan peer refuses at the first
            # CHILD_SA rekey (seen: libreswan 4.10 ↔ strongSwan 5.9.8, no new SPI)
            f"    pfs={'yes' if _has_group(c.esp_proposal) else 'no'}",
            "    dpddelay=10",
            "    auto=ondemand",
            *([f"    salifetime={c.rekey_seconds * 2}s", f"    rekeymargin={c.rekey_seconds}s",
               "    rekeyfuzz=0%"] if c.rekey_seconds else []),
            "",
        ]
    return "\n".join(lines)


def libreswan_secrets(conns: list[Connection]) -> str:
    """``/etc/ipsec.d/distrogate.secrets`` for ``conns``."""
    return "".join(f"{c.local} {c.remote} : PSK {_quote(c.secret)}\n" for c in conns
                   if c.auth == "psk")


def ndp_bypass_unit() -> str:
    """A systemd unit that lets IPv6 neighbour discovery bypass the IPsec policies.

    A host-to-host transport policy covers every packet between the two addresses, neighbour
    advertisements included: after one peer reboots, the other answers its neighbour
    solicitations through the old SA (or holds them in an acquire), the rebooted peer never
    learns the link-layer address and IKE cannot come back (strongSwan's "IPv6 and the Neighbor
    Discovery Protocol", libreswan's "IPv6 IPsec failure on host reboot"). The agent installs
    kernel bypass policies at a priority above the daemon's, before the daemon starts (and
    again after libreswan's unit, whose stop flushes every policy)."""
    # proto by number: a minimal image may lack /etc/protocols (netbase), and iproute2 6.1
    # resolves names through it
    commands = [f"ExecStart=ip -6 xfrm policy update src ::/0 dst ::/0 proto 58 "
                f"type {t} dir {d} priority 1 action allow"
                for t in NDP_TYPES for d in ("out", "in", "fwd")]
    return "\n".join([
        "# written by distrogate's IPsec suite, as a management agent would",
        "[Unit]",
        "Description=IPv6 neighbour discovery bypasses the IPsec policies",
        "Before=strongswan.service strongswan-swanctl.service",
        "After=ipsec.service",
        "PartOf=ipsec.service",
        "[Service]",
        "Type=oneshot",
        "RemainAfterExit=yes",
        *commands,
        "[Install]",
        "WantedBy=multi-user.target ipsec.service",
        "",
    ])


def start_timeout_dropin(unit: str, seconds: int) -> tuple[str, str]:
    """The path and text of a drop-in that gives the IKE daemon's ``unit`` ``seconds`` to
    start: the suite's own bound then judges a slow start (against the baseline), not
    systemd's default 90 s, which libreswan's ``ipsec.service`` (NSS checks, the stack
    manager) ran past under TCG on a loaded host, on both images alike."""
    return (f"/etc/systemd/system/{unit}.d/distrogate-start-timeout.conf",
            "# written by distrogate's IPsec suite\n[Service]\n"
            f"TimeoutStartSec={int(seconds)}\n")


def files_for(kind: str, conns: list[Connection]) -> dict[str, str]:
    """Guest path → content of every configuration file ``kind`` (strongswan, libreswan) needs
    (certificates and keys come from :mod:`distrogate.ipsec.pki`)."""
    if kind == "strongswan":
        return {f"{SWANCTL_DIR}/conf.d/distrogate.conf": swanctl_conf(conns),
                NDP_UNIT_PATH: ndp_bypass_unit()}
    if kind == "libreswan":
        return {LIBRESWAN_CONF: libreswan_conf(conns),
                LIBRESWAN_SECRETS: libreswan_secrets(conns), NDP_UNIT_PATH: ndp_bypass_unit()}
    raise InputError(f"unknown IPsec implementation {kind!r}")
