"""The IPsec suite's settings: defaults, bounds, and bad keys named before anything boots."""

from __future__ import annotations

import pytest

from distrogate.errors import InputError
from distrogate.ipsec.settings import IpsecSettings, parse
from distrogate.policy import parse_policy
from distrogate.suites import find_suite, plain, validate_settings


def test_defaults() -> None:
    settings = parse({}, {}, "suites.ipsec")
    assert settings == IpsecSettings()
    assert settings.implementation == "auto" and settings.auth == "psk"
    assert settings.families == ("ipv6",)


def test_every_key() -> None:
    settings = parse({"implementation": "libreswan", "auth": "x509", "families": ["ipv4", "ipv6"],
                      "ike_proposal": "aes128-sha256-modp2048", "esp_proposal": "aes128-sha256",
                      "sa_up_seconds": 30, "rekey_seconds": 15, "packet_sizes": [1400]},
                     {}, "suites.ipsec")
    assert settings.implementation == "libreswan" and settings.auth == "x509"
    assert settings.families == ("ipv6", "ipv4")
    assert settings.sa_up_seconds == 30.0 and settings.rekey_seconds == 15
    assert settings.packet_sizes == (1400,)


@pytest.mark.parametrize(("raw", "problem"), [
    ({"implementation": "openswan"},
     "suites.ipsec.implementation: unknown implementation 'openswan' (expected one of auto, "
     "strongswan, libreswan)"),
    ({"auth": "eap"}, "suites.ipsec.auth: unknown auth 'eap' (expected one of psk, x509)"),
    ({"families": ["ipv4"]}, "suites.ipsec.families: ipv6 is required"),
    ({"families": ["ipx"]}, "suites.ipsec.families: unknown family 'ipx'"),
    ({"families": "ipv6"}, "suites.ipsec.families: expected a list"),
    ({"sa_up_seconds": 0}, "suites.ipsec.sa_up_seconds: expected a number from 5 to 600"),
    ({"sa_up_seconds": True}, "suites.ipsec.sa_up_seconds: expected a number"),
    ({"rekey_seconds": 5}, "suites.ipsec.rekey_seconds: expected a number from 10 to 300"),
    ({"packet_sizes": [1400, "big"]}, "suites.ipsec.packet_sizes: expected a list"),
    ({"ike_proposal": "aes256;sha"}, "suites.ipsec.ike_proposal: expected a strongSwan proposal"),
    ({"proposals": "x"}, "suites.ipsec: unknown key 'proposals'"),
])
def test_bad_settings_name_the_key(raw: dict[str, object], problem: str) -> None:
    with pytest.raises(InputError) as raised:
        parse(raw, {}, "suites.ipsec")
    assert problem in str(raised.value)


def test_the_registry_validates_the_section_when_the_policy_loads() -> None:
    suite = find_suite("ipsec")
    assert suite is not None and suite.test_file == "test_ipsec.py"
    policy = parse_policy("suites:\n  ipsec: {implementation: openswan}\n", source="p.yaml")
    with pytest.raises(InputError) as raised:
        validate_settings(policy, ["ipsec"])
    assert str(raised.value).startswith("p.yaml: suites.ipsec.implementation: unknown")
    policy = parse_policy("suites:\n  ipsec: {auth: x509, absolute: true}\n", source="p.yaml")
    typed = validate_settings(policy, ["ipsec"])["ipsec"]
    assert isinstance(typed, IpsecSettings) and typed.auth == "x509"
    assert plain(typed)["families"] == ["ipv6"]


def test_steps_keep_their_order_and_the_preconditions() -> None:
    settings = parse({"steps": ["ping6", "kernel_sa"]}, {}, "suites.ipsec")
    assert settings.steps == ("kernel_sa", "config_loads", "sa_up", "ping6")
    assert parse({}, {}, "suites.ipsec").steps[-1] == "peer_reboot"
    with pytest.raises(InputError, match=r"suites.ipsec.steps: unknown step 'reboot'"):
        parse({"steps": ["reboot"]}, {}, "suites.ipsec")
    with pytest.raises(InputError, match=r"suites.ipsec.steps: expected a non-empty list"):
        parse({"steps": "ping6"}, {}, "suites.ipsec")
