"""A lab topology: networks and nodes declared as data, realised by a run in one call.

    spec = TopologySpec(
        networks=(NetworkSpec("cluster"), NetworkSpec("backup", ipv4=True)),
        nodes=(NodeSpec("db1", "baseline", ("cluster", "backup"), (DataDisk("pgdata"),)),
               NodeSpec("db2", "candidate", ("cluster",))))
    topology = realise(lab_run, spec, images={"baseline": ..., "candidate": ...})
    topology.node("db1").ip("backup", family=4)
    with topology.link("db2", "cluster").loss(30): ...

Nodes of different images on one network make a mixed cluster (a roll-forward's middle).
Faults act on the host side of a node's link, inside the lab's network namespace
(:mod:`distrogate.lab.linkfault`); the image under test is never touched.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from distrogate.errors import InputError, LabError
from distrogate.guest.machine import Machine
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.capture import Capture
from distrogate.lab.linkfault import Link
from distrogate.lab.network import LabNetwork
from distrogate.lab.run import DataDisk, LabRun
from distrogate.logsteps import step

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NetworkSpec:
    """An isolated network; IPv6 always unless ``ipv6=False``, IPv4 when ``ipv4``."""

    name: str
    ipv6: bool = True
    ipv4: bool = False


@dataclass(frozen=True)
class NodeSpec:
    """A node: the image it runs (a key of the images given to :func:`realise`), the networks
    it has an interface on, in order, and its own data disks."""

    name: str
    image: str
    networks: tuple[str, ...]
    data_disks: tuple[DataDisk, ...] = ()
    memory_mib: int = 1024
    vcpus: int = 2


@dataclass(frozen=True)
class TopologySpec:
    """Networks and nodes."""

    networks: tuple[NetworkSpec, ...]
    nodes: tuple[NodeSpec, ...] = field(default_factory=tuple)

    def check(self, images: Mapping[str, ImageArtifact]) -> None:
        """Raise :class:`InputError` naming the first thing that cannot be realised."""
        nets = [n.name for n in self.networks]
        for name in {n for n in nets if nets.count(n) > 1}:
            raise InputError(f"topology: network {name!r} is declared twice")
        nodes = [n.name for n in self.nodes]
        for name in {n for n in nodes if nodes.count(n) > 1}:
            raise InputError(f"topology: node {name!r} is declared twice")
        for node in self.nodes:
            if node.image not in images:
                raise InputError(f"topology: node {node.name!r}: no image {node.image!r} "
                                 f"(have: {', '.join(sorted(images)) or 'none'})")
            if not node.networks:
                raise InputError(f"topology: node {node.name!r} is on no network")
            for net in node.networks:
                if net not in nets:
                    raise InputError(f"topology: node {node.name!r}: no network {net!r}")
            serials = [d.serial for d in node.data_disks]
            if len(set(serials)) != len(serials):
                raise InputError(f"topology: node {node.name!r}: two data disks share a serial")


class Topology:
    """A realised topology: its networks and machines, link faults, captures, replacement."""

    def __init__(self, lab_run: LabRun, spec: TopologySpec,
                 networks: dict[str, LabNetwork]) -> None:
        self.lab_run = lab_run
        self.spec = spec
        self.networks = networks
        self.nodes: dict[str, Machine] = {}
        self._links: list[Link] = []

    def node(self, name: str) -> Machine:
        """The machine of node ``name`` (the current one, after a replacement)."""
        try:
            return self.nodes[name]
        except KeyError:
            raise LabError(f"topology has no node {name!r}") from None

    def network(self, name: str) -> LabNetwork:
        """The realised network ``name``."""
        try:
            return self.networks[name]
        except KeyError:
            raise LabError(f"topology has no network {name!r}") from None

    def link(self, node: str, network: str) -> Link:
        """The host side of ``node``'s interface on ``network``, to put faults on."""
        vm, nets = self.lab_run.node_of(self.node(node))
        index = [n.name for n in nets].index(network) if network in [n.name for n in nets] \
            else None
        if index is None:
            raise LabError(f"node {node!r} has no interface on network {network!r}")
        link = Link(self.lab_run.lab, vm, index, self.network(network), label=f"{node}/{network}")
        self._links.append(link)
        return link

    @contextlib.contextmanager
    def capture(self, network: str, pcap: Path, *, filter_expr: str = "") -> Iterator[Capture]:
        """Capture every frame on ``network``'s bridge into ``pcap`` for the body."""
        capture = Capture(self.lab_run.lab, self.network(network).bridge, pcap,
                          filter_expr=filter_expr)
        capture.start()
        try:
            yield capture
        finally:
            capture.stop()

    def replace(self, node: str, image: ImageArtifact, *, keep_data: bool = True) -> Machine:
        """Stop ``node`` and boot ``image`` in its place (same addresses; its data disks kept
        unless ``keep_data=False``). Returns the new machine."""
        self._clear_links(self.node(node))
        machine = self.lab_run.replace(self.node(node), image, keep_data=keep_data, role=node)
        self.nodes[node] = machine
        return machine

    def _clear_links(self, machine: Machine | None = None) -> None:
        for link in list(self._links):
            if machine is None or link.vm.name == machine.name:
                link.clear()
                self._links.remove(link)

    def close(self) -> None:
        """Undo every link fault and remove every node (the run removes the networks when it
        closes)."""
        self._clear_links()
        for machine in self.nodes.values():
            self.lab_run.destroy(machine)
        self.nodes.clear()


def realise(lab_run: LabRun, spec: TopologySpec, images: Mapping[str, ImageArtifact], *,
            template: bool = True) -> Topology:
    """Create the networks and boot the nodes of ``spec`` (warm where the image allows)."""
    spec.check(images)
    with step("realise topology: %d networks, %d nodes", len(spec.networks), len(spec.nodes)):
        networks = {n.name: lab_run.network(n.name, ipv6=n.ipv6, ipv4=n.ipv4)
                    for n in spec.networks}
        topology = Topology(lab_run, spec, networks)
        try:
            for node in spec.nodes:
                topology.nodes[node.name] = lab_run.boot(
                    images[node.image], role=node.name,
                    networks=[networks[n] for n in node.networks],
                    data_disks=node.data_disks, memory_mib=node.memory_mib, vcpus=node.vcpus,
                    template=template)
        except BaseException:
            topology.close()
            raise
    return topology
