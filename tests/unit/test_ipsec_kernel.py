"""The kernel-only SA pair: mirrored ``ip xfrm`` commands with static keys."""

from __future__ import annotations

import ipaddress

from distrogate.ipsec.kernel import AEAD, REQID, StaticSa, commands, flush_script, script

A, B = ipaddress.IPv6Address("fd00:1::2"), ipaddress.IPv6Address("fd00:1::3")


def test_both_sides_install_the_same_states_and_mirrored_policies() -> None:
    sa = StaticSa.new(A, B)
    on_a, on_b = commands(sa, A), commands(sa, B)
    assert on_a[:2] == on_b[:2]  # the same two states, with the same keys and SPIs
    assert f"spi {sa.spi_ab:#x}" in on_a[0] and f"0x{sa.key_ab} 128" in on_a[0]
    assert f"reqid {REQID} mode transport aead {AEAD} " in on_a[0]
    assert on_a[2] == (f"xfrm policy add src {A}/128 dst {B}/128 dir out tmpl proto esp "
                       f"reqid {REQID} mode transport")
    assert on_b[2].startswith(f"xfrm policy add src {B}/128 dst {A}/128 dir out")
    assert len(bytes.fromhex(sa.key_ab)) == 36  # AES-256 key + 4 bytes of salt
    assert sa.spi_ab != sa.spi_ba or sa.key_ab != sa.key_ba


def test_scripts() -> None:
    sa = StaticSa.new(A, B)
    assert script(sa, A).startswith("ip -batch - <<'EOF'\nxfrm state add")
    assert f"spi {sa.spi_ba:#x}" in flush_script(sa, B)
    v4 = StaticSa.new(ipaddress.IPv4Address("10.0.0.1"), ipaddress.IPv4Address("10.0.0.2"))
    assert "/32" in commands(v4, v4.a)[2]
