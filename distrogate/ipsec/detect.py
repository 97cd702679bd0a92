"""Which IKE implementation an image has: strongSwan with swanctl, or libreswan's ``ipsec``.

One probe runs in the guest (:data:`PROBE`) and prints ``key=value`` lines; :func:`parse_probe`
turns them into an :class:`Implementation`. The systemd unit is detected among the unit files
the image ships (strongSwan's ``strongswan.service`` was ``strongswan-swanctl.service`` before
5.8; libreswan's is ``ipsec.service``), never assumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from distrogate.errors import InputError

STRONGSWAN, LIBRESWAN = "strongswan", "libreswan"
STRONGSWAN_UNITS = ("strongswan.service", "strongswan-swanctl.service", "charon-systemd.service")
LIBRESWAN_UNITS = ("ipsec.service",)

#: Prints what the image has: the tools, their versions and the unit files it ships.
PROBE = r"""
for tool in swanctl ipsec charon-systemd; do
  path=$(command -v $tool 2>/dev/null || ls /usr/sbin/$tool /usr/libexec/ipsec/$tool 2>/dev/null | head -n1)
  echo "tool.$tool=$path"
done
# (swanctl prints plugin load failures on stderr before its version)
command -v swanctl >/dev/null && echo "swanctl.version=$(swanctl --version 2>/dev/null | head -n1)"
command -v ipsec >/dev/null && echo "ipsec.version=$(ipsec --version 2>/dev/null | head -n1)"
# one systemctl for every unit (each systemctl start costs ~1 s of a TCG guest)
systemctl list-unit-files --no-legend --no-pager \
  """ + " ".join(STRONGSWAN_UNITS + LIBRESWAN_UNITS) + r""" 2>/dev/null \
  | while read -r unit state _; do [ -n "$state" ] && echo "unit.$unit=$state"; done
true
"""

_VERSION = re.compile(r"(\d+\.\d+(?:\.\d+)?)")


@dataclass(frozen=True)
class Implementation:
    """An image's IKE implementation: ``kind`` (strongswan, libreswan), its version, its
    systemd unit and the control tool (``swanctl`` or ``ipsec``)."""

    kind: str
    version: str
    unit: str
    tool: str

    def describe(self) -> str:
        """``strongSwan 6.0.1 (strongswan.service)``, for findings."""
        name = {STRONGSWAN: "strongSwan", LIBRESWAN: "libreswan"}.get(self.kind, self.kind)
        return f"{name} {self.version} ({self.unit})"


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            out[key.strip()] = value.strip()
    return out


def _unit(fields: dict[str, str], names: tuple[str, ...]) -> str:
    present = [u for u in names if fields.get(f"unit.{u}", "") not in ("", "not-found")]
    return present[0] if present else ""


def candidates(text: str) -> list[Implementation]:
    """Every IKE implementation the probe output ``text`` shows, strongSwan first."""
    fields = _fields(text)
    found: list[Implementation] = []
    swan_version = fields.get("swanctl.version", "")
    swan_unit = _unit(fields, STRONGSWAN_UNITS)
    if fields.get("tool.swanctl") and swan_unit:
        match = _VERSION.search(swan_version)
        found.append(Implementation(STRONGSWAN, match.group(1) if match else "unknown",
                                    swan_unit, fields["tool.swanctl"]))
    ipsec_version = fields.get("ipsec.version", "")
    lib_unit = _unit(fields, LIBRESWAN_UNITS)
    if fields.get("tool.ipsec") and "libreswan" in ipsec_version.lower() and lib_unit:
        match = _VERSION.search(ipsec_version)
        found.append(Implementation(LIBRESWAN, match.group(1) if match else "unknown",
                                    lib_unit, fields["tool.ipsec"]))
    return found


def parse_probe(text: str, wanted: str = "auto") -> Implementation | None:
    """The implementation to use by the probe output ``text``: ``wanted`` (``strongswan``,
    ``libreswan``) or, for ``auto``, the first found (strongSwan first); None if there is none."""
    if wanted not in ("auto", STRONGSWAN, LIBRESWAN):
        raise InputError(f"unknown IPsec implementation {wanted!r}")
    for found in candidates(text):
        if wanted in ("auto", found.kind):
            return found
    return None
