"""A replicated PostgreSQL cluster on lab VMs: boot, back up, restore, switch over, break.

    with Cluster(lab_run, {"baseline": promoted, "candidate": cand}, tree=tree) as cluster:
        cluster.start({"db1": "baseline", "db2": "baseline"})  # db1 primary, db2 restored
        cluster.add("db3", "candidate")                         # restored from the backup
        cluster.catch_up("db3", max_lag_bytes=0, timeout=300)
        cluster.switchover("db3")
        cluster.remove("db1")

One isolated IPv6 network (``cluster``) carries replication, the archive and the client load;
the host side takes an address on its bridge (``<prefix>::fa``) inside the lab's namespace,
where the pgBackRest repository's server (:mod:`.backup`) listens and where a client load
connects from (:meth:`Cluster.hosts`). Nothing is sent to any other address.

The network setup of a node is one method (:meth:`Cluster._network_setup`): with ``ipsec``
every node joins the cluster's IPsec mesh there (host-to-host transport mode over IPv6 to
every other node, as on the fleet; the host side's address stays in clear). With
``volume_gib`` every node has a data volume of that size for the service's state (data,
configuration, logs; :func:`~.pgnode.volume_script`). Every step's duration is kept in
:attr:`Cluster.steps`. :meth:`Cluster.close` removes everything (nodes, the repository and
its address), also on an interrupt.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from distrogate.errors import GuestCommandTimeout, InputError, LabError
from distrogate.guest.machine import Machine
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.run import DataDisk, LabRun, boot_judged
from distrogate.lab.topology import NetworkSpec, Topology, TopologySpec
from distrogate.logsteps import step
from distrogate.nspawn.install import tree_disk
from distrogate.nspawn.tree import ContainerArtifact
from distrogate.scenario.backup import BackupInfo, BackupRepository
from distrogate.scenario.mesh import IpsecMesh
from distrogate.scenario.pgnode import PG_PORT, VOLUME_SERIAL, AmcheckResult, Mode, PgNode

log = logging.getLogger(__name__)

NETWORK = "cluster"
APP_USER = "distrogate"
APP_DATABASE = "distrogate"


@dataclass(frozen=True)
class StepTime:
    """One step of the cluster's life and how long it took."""

    name: str
    seconds: float
    detail: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class Switchover:
    """A controlled switchover: from, to, the lag before it, how long it took and how long
    of that the old primary took to stop cleanly (its standbys receive its last WAL)."""

    old: str
    new: str
    lag_bytes_before: int
    seconds: float
    stop_seconds: float = 0.0


def backup_is_due(age_s: float | None, every_s: float) -> bool:
    """Whether a fresh backup is due before a new node restores: there is none yet (or none
    since a switchover began a new timeline: ``age_s`` None), the newest is older than
    ``every_s``, or the schedule is 0 (a backup before every add)."""
    return age_s is None or every_s <= 0 or age_s > every_s


class Cluster:
    """The cluster (see the module). ``images`` maps image keys (``baseline``,
    ``candidate``) to images; ``tree`` is the container tree (container mode)."""

    def __init__(self, lab_run: LabRun, images: Mapping[str, ImageArtifact], *,
                 mode: Mode = "container", tree: ContainerArtifact | None = None,
                 locale: str = "C.UTF-8", stanza: str = "main", workdir: Path | None = None,
                 memory_mib: int = 1024, vcpus: int = 2, ipsec: bool = False,
                 volume_gib: int = 0, backup_every_s: float = 0) -> None:
        if mode == "container" and tree is None:
            raise InputError("cluster: container mode needs the container tree")
        self.lab_run = lab_run
        self.images = dict(images)
        self.mode = mode
        self.tree = tree
        self.locale = locale
        self.stanza = stanza
        self.workdir = workdir
        self.memory_mib = memory_mib
        self.vcpus = vcpus
        self.volume_gib = volume_gib  # each node's data volume (0: none, state on the root)
        self.backup_every_s = backup_every_s  # the backup schedule (0: before every add)
        self._backed_up_at: float | None = None  # when the newest backup finished (monotonic)
        self.mesh = IpsecMesh() if ipsec else None  # the cluster network over IPsec
        self._mesh_lock = threading.Lock()  # joins change every member: one at a time
        self.replication_password = secrets.token_hex(12)
        self.app_password = secrets.token_hex(12)
        self.nodes: dict[str, PgNode] = {}
        self.steps: list[StepTime] = []
        self.switchovers: list[Switchover] = []
        self._primary: str | None = None
        self._topology: Topology | None = None
        self._repo: BackupRepository | None = None

    # -- life --------------------------------------------------------------------------------
    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def topology(self) -> Topology:
        """The realised network and the nodes' machines (made on first use)."""
        if self._topology is None:
            network = self.lab_run.network(NETWORK, ipv6=True)
            self._topology = Topology(self.lab_run, TopologySpec(networks=(NetworkSpec(NETWORK),)),
                                      {NETWORK: network})
        return self._topology

    @property
    def repo(self) -> BackupRepository:
        """The pgBackRest repository (started on first use)."""
        if self._repo is None:
            repo = BackupRepository(self.lab_run.lab, self.topology.network(NETWORK),
                                    stanza=self.stanza, workdir=self.workdir)
            repo.start()
            self._repo = repo
        return self._repo

    @property
    def primary(self) -> PgNode:
        """The node that is the primary now."""
        if self._primary is None:
            raise LabError("the cluster has no primary yet")
        return self.nodes[self._primary]

    def node(self, name: str) -> PgNode:
        """Node ``name``."""
        try:
            return self.nodes[name]
        except KeyError:
            raise InputError(f"cluster has no node {name!r} "
                             f"(nodes: {', '.join(self.nodes) or 'none'})") from None

    def replicas(self) -> list[PgNode]:
        """Every node but the primary."""
        return [n for n in self.nodes.values() if n.name != self._primary]

    def close(self) -> None:
        """Remove everything: the repository (server, address, files) and every node."""
        try:
            if self._repo is not None:
                self._repo.close()
        finally:
            self._repo = None
            if self._topology is not None:
                self._topology.close()
            self.nodes.clear()
            self._primary = None

    @contextlib.contextmanager
    def _timed(self, name: str, **detail: object) -> Iterator[dict[str, object]]:
        started = time.monotonic()
        extra: dict[str, object] = dict(detail)
        with step("cluster: %s", name):
            yield extra
        self.steps.append(StepTime(name, round(time.monotonic() - started, 2), extra))

    def step_seconds(self, name: str) -> float:
        """The duration of the last step called ``name``."""
        for found in reversed(self.steps):
            if found.name == name:
                return found.seconds
        raise KeyError(name)

    # -- nodes -------------------------------------------------------------------------------
    def _image(self, image: str | ImageArtifact) -> ImageArtifact:
        if isinstance(image, ImageArtifact):
            return image
        try:
            return self.images[image]
        except KeyError:
            raise InputError(f"cluster: no image {image!r} "
                             f"(have: {', '.join(sorted(self.images))})") from None

    def _boot(self, name: str, image: str | ImageArtifact) -> PgNode:
        if name in self.nodes or name in self.topology.nodes:
            raise InputError(f"cluster: node {name!r} exists already")
        artifact = self._image(image)
        network = self.topology.network(NETWORK)
        disks = [tree_disk(self.tree)] if self.mode == "container" and self.tree else []
        volumes = ([DataDisk(VOLUME_SERIAL, self.volume_gib * 1024, fmt="raw",
                             filesystem="ext4")] if self.volume_gib else [])
        # a guest that does not come up is judged as a first boot is: the candidate boots
        # again with the baseline booting between, so a one-off crash of an emulated guest
        # is the lab's (LabError: inconclusive), only a candidate failing twice is the image's
        control = self.images.get("baseline", artifact)
        machine = boot_judged(self.lab_run, artifact, control=control, role=name,
                              networks=[network], extra_disks=disks, data_disks=volumes,
                              memory_mib=self.memory_mib, vcpus=self.vcpus)
        self.topology.nodes[name] = machine
        assert network.ipv6 is not None
        node = PgNode(name, machine, str(machine.ip(NETWORK, family=6)), mode=self.mode,
                      tree=self.tree, stanza=self.stanza, networks=[str(network.ipv6)],
                      replication_password=self.replication_password,
                      volume=bool(self.volume_gib))
        self.nodes[name] = node
        return node

    def _prepare(self, node: PgNode) -> None:
        """The node's network (the IPsec mesh) and its service (the container) at the same
        time: neither needs the other, and each is mostly waiting on a TCG guest."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"mesh-{node.name}") as pool:
            joined = pool.submit(self._network_setup, node)
            node.prepare()
            joined.result()

    def _network_setup(self, node: PgNode) -> None:
        """Everything about the network a node needs before PostgreSQL uses it. The lab
        gives the addresses; with ``ipsec`` the node joins the cluster's IPsec mesh
        (transport mode to every other node, :class:`~.mesh.IpsecMesh`), or rejoins it after
        a crash or a reboot."""
        if self.mesh is None:
            return
        with self._mesh_lock, self._timed(f"ipsec join {node.name}"):
            self.mesh.join(node.name, node.machine, node.address)

    def start(self, nodes: Mapping[str, str | ImageArtifact]) -> None:
        """Boot the initial ``nodes`` (name → image key), the first as the primary: init the
        primary in the cluster's locale, create the stanza, take a full backup, then make
        every other node a standby restored from that backup."""
        if len(nodes) < 1:
            raise InputError("cluster: no nodes to start")
        names = list(nodes)
        with self._timed("boot", nodes=names):
            booted = [self._boot(name, nodes[name]) for name in names]
        with self._timed("prepare", nodes=names), \
                ThreadPoolExecutor(max_workers=len(booted), thread_name_prefix="pg") as pool:
            for done in [pool.submit(self._prepare, node) for node in booted]:
                done.result()
        primary = booted[0]
        with self._timed("init primary", node=primary.name, locale=self.locale):
            self.repo.attach(primary)
            primary.init_primary(self.locale)
            primary.sql(f"CREATE ROLE {APP_USER} LOGIN PASSWORD '{self.app_password}'")
            primary.sql(f"CREATE DATABASE {APP_DATABASE} OWNER {APP_USER}")
            self._primary = primary.name
        with self._timed("stanza-create"):
            self.repo.stanza_create(primary)
        self.backup()
        if booted[1:]:
            with ThreadPoolExecutor(max_workers=len(booted) - 1,
                                    thread_name_prefix="restore") as pool:
                for done in [pool.submit(self._restore, node) for node in booted[1:]]:
                    done.result()

    def backup(self, type: str = "full") -> BackupInfo:
        """Take a backup of the primary into the repository."""
        with self._timed(f"backup {type}") as detail:
            found = self.repo.backup(self.primary, type=type)
            detail["label"] = found.label
        self._backed_up_at = time.monotonic()
        return found

    def backup_due(self) -> bool:
        """Whether the schedule wants a fresh backup before a node restores (see
        :func:`backup_is_due`)."""
        age = None if self._backed_up_at is None else time.monotonic() - self._backed_up_at
        due = backup_is_due(age, self.backup_every_s)
        if not due:
            log.info("newest backup %.0fs old (schedule: every %gs): the new node restores "
                     "from it and the archived WAL since", age, self.backup_every_s)
        return due

    def _restore(self, node: PgNode, *, attached: bool = False) -> None:
        with self._timed(f"restore {node.name}", node=node.name):
            if not attached:
                self.repo.attach(node)
            node.restore_from_backup_and_follow(self.primary)

    def add(self, name: str, image: str | ImageArtifact) -> PgNode:
        """Boot a new node of ``image``, restore it from the repository's latest backup and
        make it follow the primary."""
        with self._timed(f"add {name}", image=self._image(image).name):
            # as a fleet's schedule keeps one recent backup, a fresh incremental one is taken
            # (while the new node boots) when the newest is older than the schedule: the new
            # node then replays minutes of WAL, not everything since the full backup
            with ThreadPoolExecutor(max_workers=1, thread_name_prefix="backup") as pool:
                backup = pool.submit(self.backup, "incr") if self.backup_due() else None
                node = self._boot(name, image)
                self._prepare(node)
                self.repo.attach(node)
                if backup is not None:
                    backup.result()
            self._restore(node, attached=True)
        return node

    def catch_up(self, name: str, *, max_lag_bytes: int = 0, timeout: float = 300) -> int:
        """Wait until standby ``name`` is at most ``max_lag_bytes`` behind the primary;
        returns the lag it reached. Running out of time raises
        :class:`GuestCommandTimeout`."""
        node = self.node(name)
        deadline = time.monotonic() + timeout
        with self._timed(f"catch up {name}", max_lag_bytes=max_lag_bytes) as detail:
            while True:
                lag = node.lag_bytes(self.primary)
                detail["lag_bytes"] = lag
                if lag <= max_lag_bytes:
                    return lag
                if time.monotonic() > deadline:
                    raise GuestCommandTimeout(f"{name}: still {lag} bytes behind the primary "
                                              f"after {timeout:g}s")
                time.sleep(1)

    def switchover(self, to: str, *, rejoin: bool = True, timeout: float = 300) -> Switchover:
        """A controlled switchover to standby ``to`` while clients keep writing: checkpoint
        the primary, stop it cleanly (its last WAL goes to the standbys), wait until ``to``
        has replayed the shutdown checkpoint, promote it, re-point the other standbys; the
        old primary rejoins as a standby (``rejoin``) or stays down for removal."""
        target = self.node(to)
        old = self.primary
        if target is old:
            raise InputError(f"switchover: {to} is the primary already")
        lag = target.lag_bytes(old)
        started = time.monotonic()
        with self._timed(f"switchover {old.name} -> {to}", lag_bytes_before=lag) as detail:
            with step("%s: checkpoint", old.name):
                old.sql("CHECKPOINT", timeout=120)
            with step("%s: stop (shutdown checkpoint)", old.name):
                stopping = time.monotonic()
                old.stop()
                stop_seconds = round(time.monotonic() - stopping, 2)
                detail["stop_seconds"] = stop_seconds
                shutdown_lsn = old.checkpoint_lsn()
            with step("%s: replay %s's shutdown checkpoint %s", to, old.name, shutdown_lsn):
                deadline = time.monotonic() + timeout
                while not target.replayed_past(shutdown_lsn):
                    if time.monotonic() > deadline:
                        raise GuestCommandTimeout(
                            f"{to}: did not replay {old.name}'s shutdown checkpoint "
                            f"{shutdown_lsn} within {timeout:g}s")
                    time.sleep(0.5)
            target.promote()
            self._primary = target.name
            self._backed_up_at = None  # a new timeline: its first backup is due at once
            for other in self.replicas():
                if other is not old:
                    other.follow(target)
            if rejoin:
                old.follow(target)
        found = Switchover(old.name, to, lag, round(time.monotonic() - started, 2), stop_seconds)
        self.switchovers.append(found)
        return found

    def remove(self, name: str) -> None:
        """Stop node ``name`` (a standby) and remove its VM."""
        node = self.node(name)
        if name == self._primary:
            raise InputError(f"remove: {name} is the primary (switch over first)")
        with self._timed(f"remove {name}"):
            with contextlib.suppress(Exception):
                node.stop(timeout=60)
            if self.mesh is not None:
                with self._mesh_lock:
                    self.mesh.leave(name)
            machine = self.topology.nodes.pop(name)
            self.lab_run.destroy(machine)
            del self.nodes[name]

    # -- faults ------------------------------------------------------------------------------
    def kill_primary(self, *, restart: bool = True) -> float:
        """``kill -9`` of the primary's postmaster; with ``restart`` start it again (crash
        recovery) and return the seconds until it accepts connections."""
        primary = self.primary
        with self._timed(f"kill -9 {primary.name}") as detail:
            primary.kill_postgres()
            started = time.monotonic()
            if restart:
                primary.start()
            down = round(time.monotonic() - started, 2)
            detail["down_seconds"] = down
        return down

    def crash(self, name: str) -> None:
        """Cut node ``name``'s power, boot it again and wait until PostgreSQL is back."""
        node = self.node(name)
        with self._timed(f"crash {name}"):
            node.machine.crash()
            node.machine.start()
            self._network_setup(node)
            node.after_boot()

    def reboot(self, name: str) -> None:
        """Reboot node ``name`` cleanly and wait until PostgreSQL is back."""
        node = self.node(name)
        with self._timed(f"reboot {name}"):
            node.machine.reboot()
            self._network_setup(node)
            node.after_boot()

    def partition(self, name: str, seconds: float) -> None:
        """Cut node ``name`` off the cluster network for ``seconds`` (its link down, from the
        host side), then bring it back."""
        self.node(name)
        with self._timed(f"partition {name}", seconds=seconds), \
                self.topology.link(name, NETWORK) as link:
            link.down()
            time.sleep(seconds)

    def link_loss(self, name: str, percent: int, seconds: float) -> None:
        """Drop ``percent`` % of node ``name``'s frames for ``seconds``."""
        self.node(name)
        with self._timed(f"loss {percent}% {name}", seconds=seconds), \
                self.topology.link(name, NETWORK) as link:
            link.loss(percent)
            time.sleep(seconds)

    def flush_archive(self, *, timeout: float = 300) -> str:
        """Switch the primary to a new WAL segment and wait until the finished one is in the
        archive (so that a point-in-time restore sees every write acknowledged so far);
        returns that segment's name."""
        primary = self.primary
        with self._timed("flush archive") as detail:
            segment = primary.sql("SELECT pg_walfile_name(pg_switch_wal())")[0][0]
            detail["segment"] = segment
            deadline = time.monotonic() + timeout
            while True:
                rows = primary.sql("SELECT coalesce(last_archived_wal, '') FROM pg_stat_archiver")
                if rows and rows[0][0] >= segment:
                    return segment
                if time.monotonic() > deadline:
                    raise GuestCommandTimeout(f"{primary.name}: WAL segment {segment} not "
                                              f"archived within {timeout:g}s")
                time.sleep(1)

    def amcheck(self, *, timeout: float = 300) -> dict[str, AmcheckResult]:
        """``pg_amcheck --all --heapallindexed`` on every node: the primary first (it
        installs the extension where missing), then each standby once it has replayed
        that."""
        found = {self.primary.name: self.primary.amcheck()}
        for node in self.replicas():
            if node.is_running():
                self.catch_up(node.name, max_lag_bytes=0, timeout=timeout)
            found[node.name] = node.amcheck()
        return found

    # -- for clients and checks --------------------------------------------------------------
    def hosts(self) -> list[tuple[str, int]]:
        """Every node's (address, port), the primary first: for a client's multi-host
        connection string (``target_session_attrs=read-write`` finds the primary)."""
        ordered = sorted(self.nodes.values(), key=lambda n: n.name != self._primary)
        return [(n.address, PG_PORT) for n in ordered]

    def conninfo(self, *, read_write: bool = True, connect_timeout: int = 5) -> str:
        """A libpq connection string to the application database on every node."""
        hosts = self.hosts()
        text = (f"host={','.join(a for a, _ in hosts)} "
                f"port={','.join(str(p) for _, p in hosts)} dbname={APP_DATABASE} "
                f"user={APP_USER} password={self.app_password} "
                f"connect_timeout={connect_timeout}")
        return text + (" target_session_attrs=read-write" if read_write else "")

    @property
    def client_address(self) -> str:
        """The host side's address on the cluster network (clients connect from there)."""
        return self.repo.address

    def logs(self, names: list[str] | None = None) -> dict[str, dict[str, str]]:
        """Each node's logs (postgres, pgBackRest, journal) and the repository's."""
        found = {name: self.nodes[name].logs() for name in (names or list(self.nodes))
                 if name in self.nodes}
        if self.mesh is not None:
            for name in found:
                with contextlib.suppress(Exception):
                    found[name].update({f"ipsec {k}": v
                                        for k, v in self.mesh.evidence(name).items()})
        if self._repo is not None:
            found["repository"] = {"pgbackrest": self._repo.log_tail()}
        return found

    def machines(self) -> dict[str, Machine]:
        """Each node's machine."""
        return {name: node.machine for name, node in self.nodes.items()}
