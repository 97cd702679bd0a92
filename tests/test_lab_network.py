"""Isolated networks: VMs on one network reach each other over IPv6, and a guest has no route
out of the lab (shown from inside the guest, without sending anything)."""

from __future__ import annotations

import subprocess

import pytest

from distrogate.images.artifact import ImageArtifact
from distrogate.lab.lab import Lab
from distrogate.lab.run import LabRun

pytestmark = pytest.mark.vm


def test_two_vms_ping_over_ipv6_and_host_reaches_neither(
        lab_run: LabRun, lab: Lab, baseline_image: ImageArtifact) -> None:
    first, second = lab_run.cluster(baseline_image, 2)
    try:
        a, b = str(first.ip()), str(second.ip())
        first.succeed(f"ping -6 -c 2 -W 5 {b}", timeout=60)
        second.succeed(f"ping -6 -c 2 -W 5 {a}", timeout=60)
        # no route out of the lab: the kernel of the guest has no route to any address outside
        # its own network (documentation addresses; `ip route get` sends nothing)
        assert "default" not in first.succeed("ip -6 route; ip -4 route")
        for outside in ("192.0.2.1", "2001:db8::1", "198.51.100.7"):
            said = first.fail(["ip", "route", "get", outside], timeout=30)
            assert "unreachable" in said.lower(), f"{outside}: {said!r}"
        first.succeed(["ip", "route", "get", b], timeout=30)  # while its neighbour is routable
        bridges = subprocess.run(["ip", "-o", "link", "show", "type", "bridge"],
                                 capture_output=True, text=True, timeout=30, check=True).stdout
        if lab.state.netns:
            assert "dgb" not in bridges, "a lab bridge leaked into the host namespace"
    finally:
        lab_run.destroy(first)
        lab_run.destroy(second)
