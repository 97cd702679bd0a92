"""A lab topology, realised for real: 2 networks, 4 warm nodes of 2 images (one with 2 NICs and
a data disk); link loss, delay, down and TCP reset take effect and are undone; a capture shows traffic;
a node is replaced by one of the other image keeping its data disk; nothing is left."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from distrogate import proc
from distrogate.guest.machine import Machine
from distrogate.images.artifact import ImageArtifact
from distrogate.lab import pcap
from distrogate.lab.lab import Lab
from distrogate.lab.run import DataDisk, LabRun
from distrogate.lab.topology import NetworkSpec, NodeSpec, TopologySpec, realise

pytestmark = pytest.mark.vm

SPEC = TopologySpec(
    networks=(NetworkSpec("front", ipv4=True), NetworkSpec("back")),
    nodes=(
        NodeSpec("db1", "baseline", ("front", "back"), (DataDisk("pgdata", 256),)),
        NodeSpec("db2", "candidate", ("front",)),
        NodeSpec("db3", "baseline", ("back",)),
        NodeSpec("db4", "candidate", ("back",)),
    ),
)
MARKER = "distrogate-data-disk-marker"


def _ping(machine: Machine, target: str, count: int, interval: float = 0.05) -> tuple[int, float]:
    """Loss percentage and average RTT (ms; 0 when nothing came back) of a ping burst."""
    out = machine.execute(["ping", "-n", "-q", "-c", str(count), "-i", str(interval), "-W", "2",
                           target], timeout=count * interval + 60).stdout_text
    loss = re.search(r"([\d.]+)% packet loss", out)
    rtt = re.search(r"= [\d.]+/([\d.]+)/", out)
    assert loss is not None, f"ping said: {out!r}"
    return round(float(loss.group(1))), float(rtt.group(1)) if rtt else 0.0


def _host(lab: Lab, *argv: str) -> str:
    return proc.run(lab.host_argv(list(argv)), timeout=30).text


def test_topology_faults_capture_and_replacement(lab: Lab, baseline_image: ImageArtifact,
                                                 candidate_image: ImageArtifact,
                                                 tmp_path: Path) -> None:
    images = {"baseline": baseline_image, "candidate": candidate_image}
    with LabRun(lab) as run:
        topology = realise(run, SPEC, images)
        db1, db2, db3, db4 = (topology.node(n) for n in ("db1", "db2", "db3", "db4"))
        assert all(m.restored for m in (db1, db2, db3, db4)), "a node booted cold"
        # typed addresses: db1 has an interface on each network, IPv4 only on "front"
        assert db1.ip("front").version == 6 and db1.ip("front", family=4).version == 4
        assert db1.ip("back") in topology.network("back").ipv6  # type: ignore[operator]
        with pytest.raises(LookupError):
            db3.ip("back", family=4)
        assert "trixie" in db2.succeed("cat /etc/os-release")  # a mixed network

        front1, back1 = str(db1.ip("front")), str(db1.ip("back"))
        assert _ping(db2, front1, 5)[0] == 0
        assert _ping(db2, str(db1.ip("front", family=4)), 5)[0] == 0
        assert _ping(db3, back1, 5)[0] == 0
        _, rtt_before = _ping(db2, front1, 10)

        # loss: 40 % each way, so a round trip survives 0.6^2 = 36 % of the time
        with topology.link("db1", "front").loss(40):
            lost, _ = _ping(db2, front1, 100, 0.02)
            assert 35 <= lost <= 90, f"{lost} % lost under 40 % loss each way"
            assert _ping(db3, back1, 10)[0] == 0, "loss on 'front' leaked onto 'back'"
        assert _ping(db2, front1, 20)[0] == 0, "loss not undone"

        # delay: every frame to db1 on "front" waits 300 ms
        with topology.link("db1", "front").delay(300):
            lost, rtt = _ping(db2, front1, 5, 0.5)
            assert lost == 0 and rtt >= rtt_before + 250, f"rtt {rtt} ms (before {rtt_before})"
        lost, rtt = _ping(db2, front1, 5, 0.2)
        assert lost == 0 and rtt < rtt_before + 150, f"delay not undone: {rtt} ms"

        # down: nothing passes; up again: everything does
        with topology.link("db1", "front").down():
            assert _ping(db2, front1, 3, 0.2)[0] == 100
            assert _ping(db3, back1, 3, 0.2)[0] == 0, "down on 'front' took 'back' down"
        db2.wait_until_succeeds(["ping", "-n", "-c", "1", "-W", "1", front1], timeout=60)

        # reset: TCP to db1 on "front" is answered with a reset while the fault holds
        db1.succeed(["systemd-run", "--unit", "dg-listen", "python3", "-m", "http.server", "8080",
                     "--bind", "::"], timeout=60)
        probe = ["python3", "-c", "import socket, sys; "
                 "socket.create_connection((sys.argv[1], 8080), timeout=10).close()", front1]
        db2.wait_until_succeeds(probe, timeout=60)
        with topology.link("db1", "front").reset():
            said = db2.fail(probe, timeout=60)
            assert "ConnectionRefusedError" in said or "ConnectionResetError" in said, said
        db2.succeed(probe, timeout=60)

        # a capture on "back" shows db3 and db4 talking
        capture = tmp_path / "back.pcap"
        with topology.capture("back", capture):
            _ping(db3, str(db4.ip("back")), 5, 0.1)
        seen = [p for p in pcap.packets(capture) if p.protocol == pcap.ICMPV6
                and {p.src, p.dst} == {db3.ip("back"), db4.ip("back")}]
        requests = [p for p in seen if p.payload[:1] == b"\x80"]
        replies = [p for p in seen if p.payload[:1] == b"\x81"]
        assert len(requests) >= 5 and len(replies) >= 5, f"{len(seen)} ICMPv6 packets captured"

        # replace db1 by a candidate node keeping its data disk and addresses
        db1.succeed(f"printf {MARKER} | dd of=/dev/disk/by-id/virtio-pgdata conv=fsync "
                    "status=none")
        new = topology.replace("db1", candidate_image, keep_data=True)
        assert new.name != db1.name and new.restored
        assert "trixie" in new.succeed("cat /etc/os-release")
        assert new.succeed(f"head -c {len(MARKER)} /dev/disk/by-id/virtio-pgdata") == MARKER
        assert str(new.ip("front")) == front1 and str(new.ip("back")) == back1
        db2.wait_until_succeeds(["ping", "-n", "-c", "1", "-W", "1", front1], timeout=60)
        db3.wait_until_succeeds(["ping", "-n", "-c", "1", "-W", "1", back1], timeout=60)
        fresh = topology.replace("db1", baseline_image, keep_data=False)
        assert fresh.succeed(f"head -c {len(MARKER)} /dev/disk/by-id/virtio-pgdata | "
                             "tr -d '\\0'") == ""
        prefix = run.prefix
        topology.close()
    # nothing left: no domain, network, VM directory, relay, capture, veth or nft table
    conn = lab.conn()
    assert [d.name() for d in conn.listAllDomains() if d.name().startswith(prefix)] == []
    assert [n.name() for n in conn.listAllNetworks() if n.name().startswith(prefix)] == []
    vms = lab.directory / "vms"
    assert [p.name for p in vms.glob(f"{prefix}*")] == []
    assert "dgi" not in _host(lab, "ip", "-o", "link")
    assert "dg_" not in _host(lab, "nft", "list", "tables")
    if lab.state.netns:
        pids = proc.run(["ip", "netns", "pids", lab.state.netns], timeout=30).text.split()
        commands = [Path(f"/proc/{p}/comm").read_text().strip() for p in pids
                    if Path(f"/proc/{p}/comm").exists()]
        assert not {"tcpdump", "python3", "python"} & set(commands), commands
