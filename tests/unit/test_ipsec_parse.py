"""Parsers of swanctl --list-sas, ip -s xfrm state and ip xfrm policy output."""

from __future__ import annotations

from pathlib import Path

from distrogate.ipsec.parse import established, list_sas, protects, xfrm_policies, xfrm_states

DATA = Path(__file__).resolve().parent / "data" / "ipsec"
# hand-written from the tools' formats (strongSwan 5.9 swanctl, iproute2 6.1 with -s)
LIST_SAS = (DATA / "sample-list-sas.txt").read_text()

XFRM_STATE = (DATA / "sample-xfrm-state.txt").read_text()

XFRM_POLICY = (DATA / "sample-xfrm-policy.txt").read_text()


def test_list_sas() -> None:
    sas = list_sas(LIST_SAS)
    assert [(s.name, s.id, s.state) for s in sas] == [("dg-ipv6", 1, "ESTABLISHED"),
                                                      ("other", 2, "CONNECTING")]
    ike = sas[0]
    assert ike.version == "IKEv2"
    assert ike.proposal == "AES_CBC-256/HMAC_SHA2_256_128/PRF_HMAC_SHA2_256/CURVE_25519"
    first = ike.children[0]
    assert (first.reqid, first.state, first.mode, first.proposal) == (
        1, "INSTALLED", "TRANSPORT", "ESP:AES_GCM_16-256")
    assert (first.spi_in, first.spi_out) == ("c1a2b3c4", "c5d6e7f8")
    assert (first.bytes_in, first.packets_out) == (312, 3)
    newest = established(sas, "dg-ipv6")
    assert newest is not None and newest.id == 2 and newest.spi_out == "c9000002"
    assert established(sas, "nope") is None
    assert list_sas("") == []


def test_xfrm_states_with_counters() -> None:
    states = xfrm_states(XFRM_STATE)
    assert len(states) == 3
    out = states[0]
    assert (out.src, out.dst, out.proto, out.spi, out.reqid, out.mode) == (
        "fd00:1::2", "fd00:1::3", "esp", "0xc5d6e7f8", 1, "transport")
    assert out.algorithms == ["aead rfc4106(gcm(aes))"]
    assert (out.bytes, out.packets) == (312, 3) and out.live
    assert states[1].spi == "0xc1a2b3c4" and states[1].packets == 0
    assert not states[2].live  # a larval acquire state


def test_xfrm_policies() -> None:
    policies = xfrm_policies(XFRM_POLICY)
    assert [(p.dir, p.proto, p.mode) for p in policies[:2]] == [
        ("out", "esp", "transport"), ("in", "esp", "transport")]
    assert policies[3].action == "allow"
    assert protects(policies, "fd00:1::2", "fd00:1::3")
    assert not protects(policies, "fd00:1::3", "fd00:1::2")


def test_real_outputs_of_both_releases() -> None:
    """Taken from a candidate↔baseline pair (trixie strongSwan 6.0.1 initiating, bookworm
    5.9.8 responding; keys replaced)."""
    for version in ("5.9.8", "6.0.1"):
        sas = list_sas((DATA / f"strongswan-{version}-list-sas.txt").read_text())
        child = established(sas, "dg-ipv6")
        assert child is not None and child.mode == "TRANSPORT", version
        assert child.proposal == "ESP:AES_GCM_16-256"
        assert sas[0].proposal.endswith("/CURVE_25519")
    trixie, bookworm = ("fd42:ec8c:1::1", "fd42:ec8c:1::2")
    for release, local, remote in (("trixie", trixie, bookworm), ("bookworm", bookworm, trixie)):
        states = xfrm_states((DATA / f"{release}-ip-s-xfrm-state.txt").read_text())
        assert {(s.src, s.dst) for s in states if s.live and s.reqid == 1} == {
            (local, remote), (remote, local)}
        assert all(s.algorithms == ["aead rfc4106(gcm(aes))"] for s in states)
        policies = xfrm_policies((DATA / f"{release}-ip-xfrm-policy.txt").read_text())
        assert protects(policies, local, remote), release
