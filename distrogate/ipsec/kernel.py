"""A kernel-only SA pair: ``ip xfrm`` states and policies with static keys, no IKE daemon.

It separates kernel regressions (``esp6`` missing or blacklisted, an algorithm gone) from IKE
daemon regressions: when the kernel-only pair passes and the IKE pair fails, the daemon broke.
Both sides get the same keys and SPIs, mirrored.
"""

from __future__ import annotations

import ipaddress
import secrets
from dataclasses import dataclass

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
REQID = 4242  # apart from the reqids the IKE daemons use
AEAD = "rfc4106(gcm(aes))"


@dataclass(frozen=True)
class StaticSa:
    """Keys and SPIs of a static transport-mode SA pair between ``a`` and ``b``."""

    a: IPAddress
    b: IPAddress
    spi_ab: int
    spi_ba: int
    key_ab: str  # hex: 32 bytes of AES-256 key and 4 bytes of salt
    key_ba: str

    @classmethod
    def new(cls, a: IPAddress, b: IPAddress) -> StaticSa:
        """Fresh random SPIs and keys."""
        def spi() -> int:
            return 0x1000 + secrets.randbelow(0x7FFF0000)

        return cls(a, b, spi(), spi(), secrets.token_hex(36), secrets.token_hex(36))


def commands(sa: StaticSa, local: IPAddress) -> list[str]:
    """The ``ip xfrm`` commands that install the pair on the side whose address is ``local``
    (``ip -batch`` lines, without the leading ``ip``)."""
    remote = sa.b if local == sa.a else sa.a
    plen = 128 if local.version == 6 else 32
    lines = []
    for src, dst, spi, key in ((sa.a, sa.b, sa.spi_ab, sa.key_ab),
                               (sa.b, sa.a, sa.spi_ba, sa.key_ba)):
        lines.append(f"xfrm state add src {src} dst {dst} proto esp spi {spi:#x} reqid {REQID} "
                     f"mode transport aead {AEAD} 0x{key} 128 sel src {src} dst {dst}")
    lines.append(f"xfrm policy add src {local}/{plen} dst {remote}/{plen} dir out "
                 f"tmpl proto esp reqid {REQID} mode transport")
    lines.append(f"xfrm policy add src {remote}/{plen} dst {local}/{plen} dir in "
                 f"tmpl proto esp reqid {REQID} mode transport")
    return lines


def script(sa: StaticSa, local: IPAddress) -> str:
    """A shell script installing the pair on ``local`` with one ``ip -batch`` (exit code and
    the kernel's error message, such as "Protocol not supported", are the observation)."""
    batch = "\n".join(commands(sa, local))
    return f"ip -batch - <<'EOF'\n{batch}\nEOF\n"


def flush_script(sa: StaticSa, local: IPAddress) -> str:
    """A shell script removing the pair from ``local`` again (errors ignored)."""
    remote = sa.b if local == sa.a else sa.a
    plen = 128 if local.version == 6 else 32
    return (f"ip xfrm state delete src {sa.a} dst {sa.b} proto esp spi {sa.spi_ab:#x} ; "
            f"ip xfrm state delete src {sa.b} dst {sa.a} proto esp spi {sa.spi_ba:#x} ; "
            f"ip xfrm policy delete src {local}/{plen} dst {remote}/{plen} dir out ; "
            f"ip xfrm policy delete src {remote}/{plen} dst {local}/{plen} dir in ; true")
