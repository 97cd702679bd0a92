"""The cluster network over IPsec, as on the fleet: host-to-host transport mode between every
pair of cluster nodes over IPv6, with one pre-shared key per cluster.

    mesh = IpsecMesh()                       # a fresh PSK (``secrets``), the suite's proposals
    mesh.join("db1", machine1, "fd00::11")
    mesh.join("db2", machine2, "fd00::12")   # db1 gets a connection to db2; the SA comes up
    mesh.after_reboot("db1")                 # after a crash or a reboot of db1
    mesh.leave("db2")                        # db1 forgets db2 (reloaded)

Each node gets one connection per peer (``dg-<peer>``), written the way a management agent
writes it with the IPsec suite's generators (:mod:`distrogate.ipsec.config`: strongSwan's
``start_action = trap``, libreswan's ``auto=ondemand``, so that the first packet brings an SA
back when it is gone) together with the suite's neighbour-discovery bypass unit. The IKE
implementation of each image is detected (:meth:`IkeNode.detect`), never assumed.

The policies are the daemons' host-to-host ones: node ↔ node ``/128`` pairs only. Traffic
between the host side of the lab bridge (``<prefix>::fa``: the client load, the backup
repository) and the nodes matches no policy and stays in clear.

Every wait is bounded: a pair whose SA does not come up within ``sa_up_seconds`` raises
:class:`MeshError` naming the pair, with :meth:`IpsecMesh.evidence` of both sides in its
``evidence``.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import secrets
import shlex
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TypeVar

from distrogate.errors import GuestError, ImageFault, InputError
from distrogate.guest.machine import Machine
from distrogate.ipsec.config import LIBRESWAN_CONF, SWANCTL_DIR, Connection, files_for
from distrogate.ipsec.detect import LIBRESWAN, STRONGSWAN
from distrogate.ipsec.node import IkeNode, Ran
from distrogate.ipsec.settings import IpsecSettings

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_R = TypeVar("_R")
_NAME = re.compile(r"[^a-z0-9]+")
#: libreswan's main configuration, which includes ``/etc/ipsec.d/*.conf`` (the incremental
#: update reads the connections through it)
_LIBRESWAN_INCLUDE = "/etc/ipsec.conf"


class MeshError(ImageFault):
    """A mesh operation failed (a statement about the image): a node's configuration did
    not load, or a pair's SA did not come up within the bound. ``evidence`` holds what
    :meth:`IpsecMesh.evidence` showed of the nodes involved."""

    def __init__(self, message: str, evidence: dict[str, dict[str, str]] | None = None) -> None:
        super().__init__(message)
        self.evidence = evidence or {}


def connection_name(peer: str) -> str:
    """The name of a node's connection to ``peer`` (``dg-db2``): lower-case letters, digits
    and dashes only, which both swanctl and libreswan accept."""
    clean = _NAME.sub("-", peer.lower()).strip("-")
    if not clean:
        raise InputError(f"mesh: node name {peer!r} has no usable characters")
    return f"dg-{clean}"


@dataclass
class Member:
    """One node of the mesh: its IKE node, its address, the connections loaded now."""

    name: str
    node: IkeNode
    address: ipaddress.IPv6Address
    loaded: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class PairUp:
    """An SA pair that came up: the two nodes and the seconds it took."""

    a: str
    b: str
    seconds: float


class IpsecMesh:
    """The cluster network's IPsec mesh (see the module).

    ``psk`` is the cluster's pre-shared key (a fresh one from :mod:`secrets` when None);
    ``ike_proposal``/``esp_proposal`` default to the IPsec suite's; ``sa_up_seconds`` bounds
    each pair's SA; ``implementation`` is ``auto`` (whatever each image has, strongSwan's
    swanctl first), ``strongswan`` or ``libreswan``.
    """

    def __init__(self, psk: str | None = None, *,
                 ike_proposal: str = IpsecSettings.ike_proposal,
                 esp_proposal: str = IpsecSettings.esp_proposal,
                 sa_up_seconds: float = IpsecSettings.sa_up_seconds,
                 implementation: str = IpsecSettings.implementation) -> None:
        self.psk = psk if psk is not None else secrets.token_hex(24)
        if not self.psk:
            raise InputError("mesh: the pre-shared key may not be empty")
        self.ike_proposal = ike_proposal
        self.esp_proposal = esp_proposal
        self.sa_up_seconds = sa_up_seconds
        self.implementation = implementation
        self.members: dict[str, Member] = {}
        #: every SA pair brought up, in order (for measurements)
        self.pairs_up: list[PairUp] = []
        #: seconds each join / after_reboot took, by node name (the last one)
        self.join_seconds: dict[str, float] = {}
        #: the last join's phases by node name, in seconds: ``configure`` (every machine's
        #: write and load, after detecting the new node's IKE daemon) and ``sa_up`` (the new
        #: pairs' SAs)
        self.join_phases: dict[str, dict[str, float]] = {}

    # -- configuration ---------------------------------------------------------------------
    def connections(self, name: str) -> list[Connection]:
        """The connections node ``name`` has: one per other member."""
        me = self._member(name)
        return [Connection(connection_name(peer.name), me.address, peer.address, "psk",
                           self.ike_proposal, self.esp_proposal, secret=self.psk)
                for peer in self.members.values() if peer.name != name]

    def _member(self, name: str) -> Member:
        try:
            return self.members[name]
        except KeyError:
            raise InputError(f"mesh has no node {name!r} "
                             f"(nodes: {', '.join(self.members) or 'none'})") from None

    def _configure(self, member: Member, *, fresh: bool = False) -> None:
        """Write ``member``'s configuration for the current membership and load it; a
        connection that is gone is unloaded (its SAs deleted), a new one added, the others
        (and their SAs) left alone. ``fresh``: the daemon's state is unknown (first join,
        after a reboot): write every file (the NDP bypass unit too) and load everything."""
        node = member.node
        if node.impl is None:
            raise MeshError(f"mesh: {member.name}: no IKE implementation in the image")
        impl = node.impl
        conns = self.connections(member.name)
        wanted = {c.name for c in conns}
        gone = member.loaded - wanted
        started = time.monotonic()
        ran: Ran | None = None
        if not fresh and impl.kind == STRONGSWAN:
            # only the connections change: the unit files and the daemon stay as they are
            # (a daemon-reload costs seconds under TCG)
            for path, text in files_for(impl.kind, conns).items():
                if path.startswith(SWANCTL_DIR):
                    node.machine.write_file(path, text.encode(), mode=0o600, timeout=60)
            written = time.monotonic()
            for conn in sorted(gone):  # swanctl --load-all unloads it; its SAs may linger
                node.run(f"swanctl --terminate --ike {shlex.quote(conn)} --force "
                         "--timeout 5", timeout=30)
            ran = node.run("swanctl --load-all --noprompt", timeout=120)
        else:
            if fresh:  # after a reboot or a crash: the unit files too, and systemd reloaded
                node.units_ready = False
            installed = node.install(conns)
            if not installed.ok:
                raise MeshError(f"mesh: {member.name}: {installed.output}",
                                {member.name: self._evidence(member)})
            written = time.monotonic()
            if impl.kind == LIBRESWAN and not fresh and member.loaded:
                ran = self._libreswan_update(node, sorted(wanted - member.loaded), sorted(gone))
                if not ran.ok:
                    log.warning("%s: libreswan's incremental update failed (%s); restarting %s",
                                member.name, ran.output[-200:], impl.unit)
                    ran = None
            if ran is None:
                ran = node.load() if wanted or impl.kind == STRONGSWAN else self._load_empty(node)
        if not ran.ok:
            raise MeshError(f"mesh: {member.name} ({impl.describe()}): the configuration "
                            f"did not load: {ran.output[-400:] or 'failed'}",
                            {member.name: self._evidence(member)})
        member.loaded = wanted
        log.info("mesh: %s loaded %d connection(s) %s (write %.1fs, load %.1fs)", member.name,
                 len(wanted), ", ".join(sorted(wanted)) or "(none)", written - started,
                 time.monotonic() - written)

    @staticmethod
    def _load_empty(node: IkeNode) -> Ran:
        """A libreswan node without peers: the NDP bypass and the daemon run, with no
        connection (``IkeNode.load`` would look for one)."""
        assert node.impl is not None
        return node.run_with_units(f"systemctl restart {shlex.quote(node.impl.unit)}")

    @staticmethod
    def _libreswan_update(node: IkeNode, added: list[str], gone: list[str]) -> Ran:
        """Add and remove libreswan connections without restarting ``ipsec.service`` (which
        would drop every SA of the node): ``whack --rereadsecrets``, ``whack --delete``,
        ``addconn`` and ``whack --route`` (4.x and 5.x alike)."""
        steps = ["ipsec whack --rereadsecrets"]
        steps += [f"ipsec whack --delete --name {shlex.quote(c)} >/dev/null" for c in gone]
        steps += [f"ipsec addconn --config {_LIBRESWAN_INCLUDE} {shlex.quote(c)} && "
                  f"ipsec whack --route --name {shlex.quote(c)}" for c in added]
        return node.run(f"grep -qs {shlex.quote(LIBRESWAN_CONF.rsplit('/', 1)[0])} "
                        f"{_LIBRESWAN_INCLUDE} && " + " && ".join(steps), timeout=120)

    # -- membership ------------------------------------------------------------------------
    def join(self, name: str, machine: Machine, address: str) -> None:
        """Add node ``name`` (``machine``, its IPv6 ``address`` on the cluster network):
        detect its IKE implementation, write and load its connections to every member and
        every member's connection to it, then bring each new pair's SA up (each member
        initiates towards the new node) and wait until the kernel has it on both sides,
        within ``sa_up_seconds`` per pair. Joining a name that is a member already (the same
        node after a reboot, or a replacement with the same address) re-applies its
        configuration, as :meth:`after_reboot` does."""
        started = time.monotonic()
        parsed = ipaddress.ip_address(address.split("%")[0])
        if not isinstance(parsed, ipaddress.IPv6Address):
            raise InputError(f"mesh: {name}: {address} is not an IPv6 address")
        known = self.members.get(name)
        if known is not None:
            if known.address != parsed:
                raise InputError(f"mesh: {name} is a member with address {known.address}, "
                                 f"not {parsed} (leave first)")
            known.node = IkeNode.detect(machine, self.implementation)
            self.after_reboot(name)
            return
        clash = [m.name for m in self.members.values() if m.address == parsed]
        if clash:
            raise InputError(f"mesh: {clash[0]} has address {parsed} already")
        connection_name(name)  # a usable name, before anything is written
        node = IkeNode.detect(machine, self.implementation)
        if node.impl is None:
            raise MeshError(f"mesh: {name}: no IKE implementation ({self.implementation}) in "
                            f"image {getattr(machine.image, 'name', '?')}")
        node.mark()
        configuring = time.monotonic()
        member = Member(name, node, parsed)
        peers = list(self.members.values())
        self.members[name] = member
        try:
            # every machine at once: the trap policies make the order irrelevant
            self._each([member, *peers], lambda m: self._configure(m, fresh=m is member))
            configured = time.monotonic()
            self._bring_up([(peer, member) for peer in peers])
        except BaseException:
            # the others must not keep a half-made pair: forget the node again
            self.members.pop(name, None)
            with contextlib.suppress(Exception):
                self._each(peers, self._configure)
            raise
        self.join_seconds[name] = round(time.monotonic() - started, 2)
        self.join_phases[name] = {"configure": round(configured - configuring, 2),
                                  "sa_up": round(time.monotonic() - configured, 2)}
        log.info("mesh: %s joined (%s) in %.1fs (configuration %.1fs, SAs %.1fs); members %s",
                 name, node.impl.describe(), self.join_seconds[name],
                 self.join_phases[name]["configure"], self.join_phases[name]["sa_up"],
                 ", ".join(self.members))

    def leave(self, name: str) -> None:
        """Remove node ``name``: every other member drops its connection to it (and the SAs),
        the mesh forgets it. The node itself is left as it is (it is usually being
        removed)."""
        member = self._member(name)
        del self.members[name]
        self._each(list(self.members.values()), self._configure)
        log.info("mesh: %s left; members %s", member.name, ", ".join(self.members) or "none")

    def after_reboot(self, name: str, *, timeout: float | None = None) -> None:
        """After a crash or a reboot of node ``name``: wait until the guest answers, make its
        daemon load the configuration again (and the NDP bypass), then bring its SA to every
        member back up (the node initiates; the peers' stale SAs are replaced) within the
        bound."""
        started = time.monotonic()
        member = self._member(name)
        member.node.since = 0.0  # the logs of this boot
        member.node.machine.wait_for_agent(timeout=timeout or 240)
        self._configure(member, fresh=True)
        self._bring_up([(member, peer) for peer in self.members.values() if peer is not member])
        self.join_seconds[name] = round(time.monotonic() - started, 2)
        log.info("mesh: %s back after a reboot in %.1fs", name, self.join_seconds[name])

    # -- SAs -------------------------------------------------------------------------------
    def _bring_up(self, pairs: list[tuple[Member, Member]], bound: float | None = None) -> None:
        """Each (initiator, responder) pair: initiate from the initiator (at most one
        initiation at a time per machine), then wait until both kernels hold an ESP SA pair.
        Raises :class:`MeshError` naming every pair that stayed down."""
        if not pairs:
            return
        bound = bound or self.sa_up_seconds

        def one(pair: tuple[Member, Member]) -> tuple[Member, Member, float | None, str]:
            a, b = pair
            started = time.monotonic()
            ran = a.node.initiate(connection_name(b.name), bound)
            deadline = started + bound
            while True:
                if self._sa_pair(a, b):
                    return a, b, time.monotonic() - started, ""
                if time.monotonic() >= deadline:
                    return a, b, None, ran.output[-300:]
                time.sleep(0.5)

        by_initiator: dict[str, list[tuple[Member, Member]]] = {}
        for pair in pairs:
            by_initiator.setdefault(pair[0].name, []).append(pair)

        def serial(group: list[tuple[Member, Member]]) -> list[tuple[Member, Member,
                                                                     float | None, str]]:
            return [one(pair) for pair in group]

        results = [r for group in self._each(list(by_initiator.values()), serial) for r in group]
        down = []
        for a, b, seconds, said in results:
            if seconds is None:
                down.append((a, b, said))
            else:
                self.pairs_up.append(PairUp(a.name, b.name, round(seconds, 2)))
                log.info("mesh: SA %s <-> %s up in %.1fs", a.name, b.name, seconds)
        if down:
            evidence = {}
            for a, b, _ in down:
                for m in (a, b):
                    if m.name not in evidence:
                        evidence[m.name] = self._evidence(m)
            raise MeshError("mesh: no SA within "
                            f"{bound:g}s between " + "; ".join(
                                f"{a.name} ({a.address}) and {b.name} ({b.address})"
                                f"{': ' + said if said else ''}" for a, b, said in down),
                            evidence)

    @staticmethod
    def _sa_pair(a: Member, b: Member) -> bool:
        try:
            return (a.node.sa_count(str(a.address), str(b.address)) >= 1
                    and b.node.sa_count(str(b.address), str(a.address)) >= 1)
        except GuestError:
            return False

    def sa_up(self, a: str, b: str) -> bool:
        """Whether both kernels hold an ESP SA pair between members ``a`` and ``b`` now."""
        return self._sa_pair(self._member(a), self._member(b))

    def verify(self, *, timeout: float | None = None) -> list[tuple[str, str]]:
        """Every pair of members whose SA pair is missing after ``timeout`` seconds (default
        ``sa_up_seconds``), triggering it from the first of the two (empty: all up)."""
        names = sorted(self.members)
        missing = [(a, b) for i, a in enumerate(names) for b in names[i + 1:]
                   if not self.sa_up(a, b)]
        if not missing:
            return []
        with contextlib.suppress(MeshError):
            self._bring_up([(self.members[a], self.members[b]) for a, b in missing], timeout)
        return [(a, b) for a, b in missing if not self.sa_up(a, b)]

    # -- findings --------------------------------------------------------------------------
    def evidence(self, name: str) -> dict[str, str]:
        """What a finding shows of node ``name``: its IKE implementation, the daemon's log
        tail (since its join or boot), ``ip -s xfrm state`` with the keys masked, ``ip xfrm
        policy`` and the SAs the daemon lists."""
        return self._evidence(self._member(name))

    @staticmethod
    def _evidence(member: Member) -> dict[str, str]:
        try:
            found = member.node.evidence()
        except GuestError as exc:
            found = {"node": member.name, "error": str(exc)}
        found["mesh_address"] = str(member.address)
        return found

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def _each(items: list[_T], work: Callable[[_T], _R]) -> list[_R]:
        """``work`` on every item at once (one thread each: each item is another machine);
        the first error is raised once every item is done."""
        if not items:
            return []
        if len(items) == 1:
            return [work(items[0])]
        with ThreadPoolExecutor(max_workers=len(items), thread_name_prefix="mesh") as pool:
            futures = [pool.submit(work, item) for item in items]
            errors = [f.exception() for f in futures]
        for error in errors:
            if error is not None:
                raise error
        return [f.result() for f in futures]
