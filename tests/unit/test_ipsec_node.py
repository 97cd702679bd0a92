"""What an IPsec node's first load runs before the IKE daemon, and what a later one leaves out
(distrogate.ipsec.node.IkeNode.unit_setup)."""

from __future__ import annotations

from typing import Any, cast

from distrogate.ipsec.config import NDP_UNIT
from distrogate.ipsec.detect import STRONGSWAN, Implementation
from distrogate.ipsec.node import IkeNode


def _node() -> IkeNode:
    impl = Implementation(kind=STRONGSWAN, version="6.0.1", unit="strongswan.service",
                          tool="swanctl")
    return IkeNode(cast(Any, None), impl)


def test_the_first_load_reloads_systemd_once_after_enabling_the_ndp_unit() -> None:
    setup = _node().unit_setup()
    commands = [c.strip() for c in setup.split("&&") if c.strip()]
    assert commands == [f"systemctl enable -q --no-reload {NDP_UNIT}", "systemctl daemon-reload",
                        f"systemctl restart {NDP_UNIT}"]


def test_a_later_load_only_loads() -> None:
    node = _node()
    node.units_ready = True
    assert node.unit_setup() == ""
