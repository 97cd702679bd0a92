"""Configuration generated as a management agent would: swanctl.conf, libreswan files."""

from __future__ import annotations

import ipaddress

import pytest

from distrogate.errors import InputError
from distrogate.ipsec.config import (
    LIBRESWAN_CONF,
    LIBRESWAN_SECRETS,
    NDP_UNIT_PATH,
    Connection,
    files_for,
    libreswan_conf,
    libreswan_proposal,
    libreswan_secrets,
    ndp_bypass_unit,
    start_timeout_dropin,
    swanctl_conf,
)

A, B = ipaddress.IPv6Address("fd00:1::2"), ipaddress.IPv6Address("fd00:1::3")


def psk(rekey: int = 0) -> Connection:
    return Connection("dg-ipv6", A, B, "psk", "aes256-sha256-x25519", "aes256gcm16",
                      secret="s3cret", rekey_seconds=rekey)


def test_swanctl_transport_psk() -> None:
    text = swanctl_conf([psk()])
    assert "local_addrs = fd00:1::2" in text and "remote_addrs = fd00:1::3" in text
    assert "mode = transport" in text and "start_action = trap" in text
    assert "proposals = aes256-sha256-x25519" in text
    assert "esp_proposals = aes256gcm16" in text
    assert 'secret = "s3cret"' in text and "id-remote = fd00:1::3" in text
    assert "rekey_time" not in text
    assert text.count("{") == text.count("}")


def test_swanctl_short_lifetimes_for_the_rekey_check() -> None:
    text = swanctl_conf([psk(rekey=20)])
    assert "rekey_time = 20s" in text and "life_time = 40s" in text


def test_swanctl_x509() -> None:
    conn = Connection("dg-ipv6", A, B, "x509", "aes256-sha256-x25519", "aes256gcm16",
                      cert="a.pem", ca="ca.pem")
    text = swanctl_conf([conn])
    assert "auth = pubkey" in text and "certs = a.pem" in text and "cacerts = ca.pem" in text
    assert "secret" not in text.split("secrets {")[1]


def test_the_same_connection_gives_the_same_text() -> None:
    assert swanctl_conf([psk()]) == swanctl_conf([psk()])


@pytest.mark.parametrize(("strongswan", "libreswan"), [
    ("aes256-sha256-x25519", "aes256-sha2_256;dh31"),
    ("aes128-sha256-modp2048", "aes128-sha2_256;modp2048"),
    ("aes256gcm16", "aes_gcm256"),
    ("aes256gcm16-prfsha384-ecp384", "aes_gcm256-sha2_384;dh20"),
])
def test_proposals_in_libreswans_syntax(strongswan: str, libreswan: str) -> None:
    assert libreswan_proposal(strongswan) == libreswan


def test_an_algorithm_without_a_libreswan_spelling_is_named() -> None:
    with pytest.raises(InputError, match="'camellia256'"):
        libreswan_proposal("camellia256-sha256")


def test_libreswan_conf_and_secrets() -> None:
    text = libreswan_conf([psk()])
    assert "conn dg-ipv6" in text and "type=transport" in text and "authby=secret" in text
    assert "left=fd00:1::2" in text and "right=fd00:1::3" in text
    assert "ike=aes256-sha2_256;dh31" in text and "esp=aes_gcm256" in text
    assert "pfs=no" in text  # aes256gcm16 names no DH group: no PFS, as strongSwan reads it
    with_pfs = Connection("dg-ipv6", A, B, "psk", "aes256-sha256-x25519",
                          "aes256gcm16-x25519", secret="s3cret")
    assert "pfs=yes" in libreswan_conf([with_pfs])
    assert libreswan_secrets([psk()]) == 'fd00:1::2 fd00:1::3 : PSK "s3cret"\n'
    assert set(files_for("libreswan", [psk()])) == {LIBRESWAN_CONF, LIBRESWAN_SECRETS,
                                                    NDP_UNIT_PATH}


def test_neighbour_discovery_bypasses_the_ipsec_policies() -> None:
    """Without it a rebooted peer never learns the other's link-layer address (the other
    answers its neighbour solicitations through the old SA): seen on the default pair."""
    unit = files_for("strongswan", [psk()])[NDP_UNIT_PATH]
    assert unit == ndp_bypass_unit()
    for kind in (135, 136):
        for direction in ("out", "in", "fwd"):
            assert (f"proto 58 type {kind} dir {direction} priority 1 action allow"
                    in unit)
    assert "Before=strongswan.service" in unit and "PartOf=ipsec.service" in unit


def test_bad_connections() -> None:
    with pytest.raises(InputError, match="unknown auth method 'eap'"):
        Connection("c", A, B, "eap", "aes256", "aes256")
    with pytest.raises(InputError, match="needs a secret"):
        Connection("c", A, B, "psk", "aes256", "aes256")
    with pytest.raises(InputError, match="different families"):
        Connection("c", A, ipaddress.IPv4Address("10.0.0.1"), "psk", "a", "b", secret="x")
    with pytest.raises(InputError, match="quotes"):
        swanctl_conf([Connection("c", A, B, "psk", "aes256", "aes256", secret='a"b')])
    with pytest.raises(InputError, match="unknown IPsec implementation"):
        files_for("openswan", [psk()])


def test_one_connection_per_family_when_the_policy_asks_for_ipv4() -> None:
    a4, b4 = ipaddress.IPv4Address("10.1.1.2"), ipaddress.IPv4Address("10.1.1.3")
    v4 = Connection("dg-ipv4", a4, b4, "psk", "aes256-sha256-x25519", "aes256gcm16",
                    secret="s3cret")
    text = swanctl_conf([psk(), v4])
    assert "  dg-ipv6 {" in text and "  dg-ipv4 {" in text
    assert "local_addrs = 10.1.1.2" in text and "id-remote = 10.1.1.3" in text
    libreswan = libreswan_conf([psk(), v4])
    assert "conn dg-ipv4" in libreswan and "left=10.1.1.2" in libreswan
    assert "10.1.1.2 10.1.1.3 : PSK" in libreswan_secrets([psk(), v4])


def test_the_daemon_gets_the_suites_start_bound_not_systemds_default() -> None:
    path, text = start_timeout_dropin("ipsec.service", 300)
    assert path == "/etc/systemd/system/ipsec.service.d/distrogate-start-timeout.conf"
    assert "[Service]\nTimeoutStartSec=300\n" in text
