"""Detecting the IKE implementation from the guest probe's output."""

from __future__ import annotations

import pytest

from distrogate.errors import InputError
from distrogate.ipsec.detect import LIBRESWAN, STRONGSWAN, candidates, parse_probe

BOOKWORM_STRONGSWAN = """\
tool.swanctl=/usr/sbin/swanctl
tool.ipsec=
tool.charon-systemd=/usr/sbin/charon-systemd
swanctl.version=strongSwan swanctl 5.9.8
unit.strongswan.service=enabled
"""
TRIXIE_LIBRESWAN = """\
tool.swanctl=
tool.ipsec=/usr/sbin/ipsec
tool.charon-systemd=
ipsec.version=Libreswan 5.2
unit.ipsec.service=enabled
"""
BOTH = BOOKWORM_STRONGSWAN + "tool.ipsec=/usr/sbin/ipsec\nipsec.version=Libreswan 4.10\n" \
    "unit.ipsec.service=disabled\n"


def test_strongswan_with_its_unit_and_version() -> None:
    impl = parse_probe(BOOKWORM_STRONGSWAN)
    assert impl is not None and impl.kind == STRONGSWAN
    assert (impl.version, impl.unit, impl.tool) == ("5.9.8", "strongswan.service",
                                                    "/usr/sbin/swanctl")
    assert impl.describe() == "strongSwan 5.9.8 (strongswan.service)"


def test_libreswan() -> None:
    impl = parse_probe(TRIXIE_LIBRESWAN)
    assert impl is not None and impl.kind == LIBRESWAN and impl.version == "5.2"
    assert impl.unit == "ipsec.service"


def test_auto_prefers_strongswan_and_a_wanted_one_is_taken() -> None:
    assert [c.kind for c in candidates(BOTH)] == [STRONGSWAN, LIBRESWAN]
    assert parse_probe(BOTH).kind == STRONGSWAN  # type: ignore[union-attr]
    assert parse_probe(BOTH, "libreswan").version == "4.10"  # type: ignore[union-attr]
    assert parse_probe(BOOKWORM_STRONGSWAN, "libreswan") is None


def test_a_renamed_unit_is_detected_not_assumed() -> None:
    old = BOOKWORM_STRONGSWAN.replace("unit.strongswan.service", "unit.strongswan-swanctl.service")
    assert parse_probe(old).unit == "strongswan-swanctl.service"  # type: ignore[union-attr]
    assert parse_probe(BOOKWORM_STRONGSWAN.replace("unit.strongswan.service=enabled", "")) is None


def test_strongswans_own_ipsec_script_is_not_libreswan() -> None:
    starter = "tool.ipsec=/usr/sbin/ipsec\nipsec.version=Linux strongSwan U5.9.8/K6.1.0\n" \
              "unit.ipsec.service=enabled\n"
    assert parse_probe(starter) is None


def test_an_unknown_implementation_is_bad_input() -> None:
    with pytest.raises(InputError):
        parse_probe(BOTH, "openswan")
