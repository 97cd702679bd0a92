"""The cluster network over IPsec (:mod:`distrogate.scenario.mesh`).

Without VMs: each node's generated configuration has one host-to-host connection per peer,
the same secret everywhere, and nothing about the host side's address.

On VMs: three nodes of the promoted image (strongSwan with swanctl) on one IPv6 lab network
join the mesh one by one; ping6 passes between every pair, the ESP SAs' counters grow, a TCP
connection goes through, the host side of the bridge reaches the nodes in clear while the
node-to-node traffic is ESP on the wire; after a reboot the node's SAs come back; after one
node leaves the other two still talk and no longer have a policy for it.
"""

from __future__ import annotations

import ipaddress
import re
import time
from pathlib import Path

import pytest

from distrogate import proc
from distrogate.images.artifact import ImageArtifact
from distrogate.ipsec import parse
from distrogate.ipsec.config import Connection, swanctl_conf
from distrogate.ipsec.node import IkeNode
from distrogate.ipsec.wire import summarize
from distrogate.lab import pcap
from distrogate.lab.capture import Capture
from distrogate.lab.run import LabRun
from distrogate.scenario.backup import bridge_address6
from distrogate.scenario.mesh import IpsecMesh, Member, connection_name
from fixtures.recording import Recorder

NAMES = ("m1", "m2", "m3")
PORT = 7777


# -- without VMs ------------------------------------------------------------------------------
def _offline_mesh() -> IpsecMesh:
    mesh = IpsecMesh()
    for i, name in enumerate(NAMES, start=1):
        node = IkeNode.__new__(IkeNode)  # no machine: only the configuration is generated
        mesh.members[name] = Member(name, node, ipaddress.IPv6Address(f"fd00::{i}"))
    return mesh


def test_connections_one_per_peer() -> None:
    """Each node has a connection to each other node, all with the cluster's one secret."""
    mesh = _offline_mesh()
    conns = mesh.connections("m1")
    assert [c.name for c in conns] == ["dg-m2", "dg-m3"]
    assert {str(c.remote) for c in conns} == {"fd00::2", "fd00::3"}
    assert all(str(c.local) == "fd00::1" and c.secret == mesh.psk for c in conns)
    assert len(mesh.psk) >= 32 and IpsecMesh().psk != mesh.psk
    text = swanctl_conf(conns)
    assert text.count("mode = transport") == 2 and text.count("start_action = trap") == 2
    assert "::fa" not in text and "/" not in text  # /128 selectors only: no subnets


def test_connection_names() -> None:
    """Node names become connection names both daemons accept."""
    assert connection_name("db1") == "dg-db1"
    assert connection_name("Node_2") == "dg-node-2"
    assert isinstance(_offline_mesh().connections("m2")[0], Connection)


# -- on VMs ---------------------------------------------------------------------------------
def _ping(machine_node: IkeNode, address: ipaddress.IPv6Address, count: int = 3) -> bool:
    return machine_node.run(f"ping -6 -n -c {count} -i 0.3 -W 2 {address}", timeout=30).ok


def _esp_packets(node: IkeNode) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for s in node.xfrm_states():
        if s.proto == "esp" and s.live:
            found[(s.src, s.dst)] = found.get((s.src, s.dst), 0) + s.packets
    return found


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.nightly  # roll-forward VM runs take 5-30 min here: make nightly
def test_three_node_mesh(lab_run: LabRun, baseline_image: ImageArtifact, record: Recorder,
                         tmp_path: Path) -> None:
    """Join three nodes, traffic through every pair, host side in clear, reboot, leave."""
    network = lab_run.network("cluster", ipv6=True)
    started = time.monotonic()
    machines = {name: lab_run.boot(baseline_image, role=name, networks=[network])
                for name in NAMES}
    record.measure("mesh_boot_3", time.monotonic() - started, "s")
    mesh = IpsecMesh()
    try:
        started = time.monotonic()
        for name, machine in machines.items():
            mesh.join(name, machine, str(machine.ip("cluster", family=6)))
        record.measure("mesh_join_3", time.monotonic() - started, "s")
        for name, seconds in mesh.join_seconds.items():
            record.measure(f"mesh_join_{name}", seconds, "s")
            for phase, took in mesh.join_phases[name].items():
                record.measure(f"mesh_join_{name}_{phase}", took, "s")
        for pair in mesh.pairs_up:
            record.measure(f"mesh_sa_{pair.a}_{pair.b}", pair.seconds, "s")
        m = mesh.members
        assert all(m[n].node.impl is not None and m[n].node.impl.kind == "strongswan"
                   for n in NAMES), {n: m[n].node.impl for n in NAMES}
        pairs = [(a, b) for i, a in enumerate(NAMES) for b in NAMES[i + 1:]]
        assert all(mesh.sa_up(a, b) for a, b in pairs)

        # ping6 every pair (both ways), the ESP counters grow, on the wire it is ESP
        before = {n: _esp_packets(m[n].node) for n in NAMES}
        capture_file = tmp_path / "mesh.pcap"
        capture = Capture(lab_run.lab, network.bridge, capture_file)
        capture.start()
        try:
            with bridge_address6(lab_run.lab, network) as host:
                for a, b in pairs:
                    assert _ping(m[a].node, m[b].address), (a, b, mesh.evidence(a))
                    assert _ping(m[b].node, m[a].address), (b, a, mesh.evidence(b))
                # the host side (client load, backup repository) reaches the nodes in clear
                for n in NAMES:
                    said = proc.run(lab_run.lab.host_argv(
                        ["ping", "-6", "-n", "-c", "2", "-i", "0.3", "-W", "2",
                         str(m[n].address)]), timeout=30, check=False)
                    assert said.returncode == 0, (n, said.text, mesh.evidence(n))
                time.sleep(0.5)
        finally:
            capture.stop()
        after = {n: _esp_packets(m[n].node) for n in NAMES}
        for a, b in pairs:
            for src, dst, on in ((a, b, a), (b, a, a), (a, b, b), (b, a, b)):
                key = (str(m[src].address), str(m[dst].address))
                assert after[on].get(key, 0) > before[on].get(key, 0), (on, key, before, after)
        seen = list(pcap.packets(capture_file))
        for a, b in pairs:
            wire = summarize(seen, m[a].address, m[b].address, b"")
            assert wire.esp > 0 and wire.clear == 0, (a, b, wire.describe())
        host_address = ipaddress.IPv6Address(host)
        clear_to_host = [p for p in seen if p.protocol == pcap.ICMPV6
                         and host_address in (p.src, p.dst) and p.payload[:1] in (b"\x80",
                                                                                  b"\x81")]
        assert len(clear_to_host) >= 2 * len(NAMES), len(clear_to_host)
        assert not any(p.protocol == pcap.ESP and host_address in (p.src, p.dst) for p in seen)
        for n in NAMES:
            policies = parse.xfrm_policies(m[n].node.run("ip xfrm policy", timeout=30).output)
            assert not any(str(host_address) in (p.src.split("/")[0], p.dst.split("/")[0])
                           for p in policies), n
            esp = [p for p in policies if p.proto == "esp"]
            assert esp and all(p.src.endswith("/128") and p.dst.endswith("/128")
                               for p in esp), (n, esp)

        # TCP from m1 to m3
        listen = ("import socket; s=socket.socket(socket.AF_INET6); "
                  "s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); "
                  f"s.bind(('::', {PORT})); s.listen(1); s.settimeout(60); c, _ = s.accept(); "
                  "c.sendall(b'pong:' + c.recv(64)); c.close()")
        assert m["m3"].node.run(f"systemd-run --collect --unit dg-mesh-listen "
                                f"timeout 90 python3 -c \"{listen}\"", timeout=30).ok
        m["m3"].node.wait(f"ss -Htln 'sport = :{PORT}' | grep -q {PORT}", timeout=30)
        talk = ("import socket,sys; c=socket.create_connection((sys.argv[1], "
                f"{PORT}), timeout=15); c.sendall(b'hello'); print(c.recv(64).decode())")
        said = m["m1"].node.run(f"python3 -c \"{talk}\" {m['m3'].address}", timeout=40)
        assert said.ok and "pong:hello" in said.output, said

        # evidence: logs, states with the keys masked, policies
        found = mesh.evidence("m1")
        assert {"ike_log", "xfrm_state", "xfrm_policy"} <= set(found)
        assert "esp" in found["xfrm_state"] and "<key>" in found["xfrm_state"]
        assert not re.search(r"0x[0-9a-f]{32,}", found["xfrm_state"])

        # a reboot of m2: its SAs come back
        started = time.monotonic()
        machines["m2"].reboot(timeout=300)
        mesh.after_reboot("m2")
        record.measure("mesh_after_reboot", time.monotonic() - started, "s")
        for peer in ("m1", "m3"):
            assert m["m2"].node.wait(f"ping -6 -n -c 1 -W 2 {m[peer].address}", timeout=60).ok
            assert _ping(m[peer].node, m["m2"].address), (peer, mesh.evidence(peer))

        # m3 leaves: m1 and m2 still talk, and have no policy for m3
        gone = m["m3"].address
        started = time.monotonic()
        mesh.leave("m3")
        record.measure("mesh_leave", time.monotonic() - started, "s")
        assert set(mesh.members) == {"m1", "m2"}
        assert _ping(m["m1"].node, m["m2"].address) and _ping(m["m2"].node, m["m1"].address)
        assert mesh.sa_up("m1", "m2")
        for n in ("m1", "m2"):
            policies = parse.xfrm_policies(m[n].node.run("ip xfrm policy", timeout=30).output)
            assert not any(p.dst.split("/")[0] == str(gone) for p in policies), (n, policies)
        print({"join": mesh.join_seconds, "phases": mesh.join_phases, "pairs": mesh.pairs_up})
    finally:
        for machine in machines.values():
            lab_run.destroy(machine)
