"""One PostgreSQL node of a roll-forward cluster, in a lab VM.

Two modes behind one interface:

- ``container`` (the fleet's way): PostgreSQL and pgBackRest come from the nspawn container
  tree (:mod:`distrogate.nspawn.tree`, built on the host, the same on every image), installed
  under ``/var/lib/machines/<name>``. The container shares the VM's network (``Private=no``,
  ``VirtualEthernet=no`` in its ``.nspawn`` file), so PostgreSQL listens on the VM's lab
  addresses; the data directory is in the container's data volume (``/srv/<name>/data`` on
  the VM). Commands run inside it with ``systemd-run --machine=<name> --wait --pipe``.
- ``image``: PostgreSQL and pgBackRest come from the image itself; commands run in the VM
  with ``systemd-run --wait --pipe``. The major version is detected
  (``/usr/lib/postgresql/*/bin``), never assumed.

Every command is bounded twice: the guest-agent call has a timeout and the transient unit
has ``RuntimeMaxSec``, so nothing keeps running in the guest after the harness gave up.

The layout is Debian's postgresql-common in both modes: the cluster ``<version>/main`` with its
configuration in ``/etc/postgresql/<version>/main`` (our settings in ``conf.d/``), its data in
``/var/lib/postgresql/<version>/main`` and its log in ``/var/log/postgresql``; the unit is
``postgresql@<version>-main``. pgBackRest's configuration, certificates and keys live in
``/etc/postgresql/pgbackrest/`` (the container's root is read-only; the config volume is not).
"""

from __future__ import annotations

import logging
import re
import shlex
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from distrogate.errors import GuestCommandFailed, GuestCommandTimeout, GuestError, InputError
from distrogate.guest.agent import ExecResult
from distrogate.guest.machine import Machine
from distrogate.logsteps import step
from distrogate.nspawn.install import install, nspawn_settings
from distrogate.nspawn.tree import ContainerArtifact, ContainerSpec

log = logging.getLogger(__name__)

Mode = Literal["container", "image"]
PG_PORT = 5432
BACKREST_PORT = 8432
SOCKET_DIR = "/var/run/postgresql"
REPLICATION_USER = "replicator"
BACKREST_DIR = "/etc/postgresql/pgbackrest"
BACKREST_CONF = f"{BACKREST_DIR}/pgbackrest.conf"
BACKREST_LOG = "/var/log/pgbackrest"
# WAL segments of 4 MiB, not 16: a clean shutdown with archiving on switches to a new segment,
# and every standby must receive the zero-filled rest of the old one before the primary is
# down (measured here: 3 standbys x ~15 MiB over the IPsec mesh under TCG took 19-25 s of a
# switchover's ~29 s window). The rest is at most 4 MiB now; archiving pushes a segment more
# often, each a quarter of the size.
WAL_SEGMENT_MIB = 4
BACKREST_STATE = "/var/lib/postgresql/pgbackrest"  # lock and spool (writable in both modes)
BACKREST_UNIT = "dg-pgbackrest-server"
CONF_FILE = "zz-distrogate.conf"  # in conf.d: our settings, the same on every node
FOLLOW_FILE = "zz-distrogate-primary.conf"  # in conf.d: primary_conninfo of a standby
STATEMENT_TIMEOUT_MS = 30_000
COMMAND_TIMEOUT = 60.0
START_TIMEOUT = 300.0
RESTORE_TIMEOUT = 900.0
LOG_LINES = 80
VOLUME_SERIAL = "pgdata"  # the node's data volume: /dev/disk/by-id/virtio-pgdata, ext4
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")


def container_spec(base: ContainerSpec | None = None) -> ContainerSpec:
    """The container tree a PostgreSQL node needs: ``base`` (the default tree) plus
    ``pgbackrest`` and ``locales-all`` (initdb in any locale the scenario names)."""
    base = base or ContainerSpec()
    extra = tuple(p for p in ("pgbackrest", "locales-all") if p not in base.packages)
    return ContainerSpec(machine=base.machine, release=base.release,
                         packages=base.packages + extra, volumes=base.volumes)


# Every cluster's start.conf under the configuration directory $1 set to manual.
MANUAL_START = """
for f in "$1"/*/*/start.conf; do [ -e "$f" ] && echo manual > "$f"; done
true
"""


def volume_script(target: str) -> str:
    """Shell that puts ``target`` on the node's data volume (the disk with serial
    :data:`VOLUME_SERIAL`, an ext4 file system the lab made): what ``target`` holds copied
    over, mounted at ``target`` and listed in ``/etc/fstab``, so that it is there again after
    a reboot or a crash (before the service's units start)."""
    q = shlex.quote
    device = f"/dev/disk/by-id/virtio-{VOLUME_SERIAL}"
    staging = f"/run/distrogate-{VOLUME_SERIAL}"
    return "\n".join([
        "set -e",
        f"for _ in $(seq 50); do [ -b {q(device)} ] && break; sleep 0.2; done",
        f"[ -b {q(device)} ] || {{ echo 'no data volume {device}' >&2; exit 1; }}",
        f"mkdir -p {q(target)} {staging}",
        f"mount -t ext4 {q(device)} {staging}",
        f"cp -a {q(target)}/. {staging}/",
        f"umount {staging}",
        f"echo '{device} {target} ext4 defaults,nofail 0 2' >> /etc/fstab",
        f"mount {q(target)}",
        f"findmnt -n -o SOURCE,SIZE --target {q(target)}",
    ])


def shared_network_settings(spec: ContainerSpec) -> str:
    """The ``.nspawn`` file of a PostgreSQL container: the locked-down container of
    :func:`~distrogate.nspawn.install.nspawn_settings`, but on the VM's own network
    (``Private=no``, ``VirtualEthernet=no``), so that it listens on the lab addresses."""
    text = nspawn_settings(spec)
    if "Private=yes" not in text:
        raise InputError("nspawn settings changed: no 'Private=yes' to turn off")
    return text.replace("Private=yes", "Private=no")


@dataclass(frozen=True)
class AmcheckResult:
    """``pg_amcheck --all --heapallindexed`` on one node: its exit code and output."""

    node: str
    exit_code: int
    output: str

    @property
    def clean(self) -> bool:
        """Exit code 0 and nothing reported (``NOTICE`` lines, such as "extension amcheck
        already exists", are not findings)."""
        return self.exit_code == 0 and not self.findings

    @property
    def findings(self) -> list[str]:
        """The output's lines that report something (NOTICE lines left out)."""
        return [line for line in self.output.splitlines()
                if line.strip() and not line.startswith("NOTICE:")]


@dataclass(frozen=True)
class CollationVersion:
    """A collation's recorded and actual version on one node (``datcollversion`` and
    ``pg_database_collation_actual_version`` for a database; ``collversion`` and
    ``pg_collation_actual_version`` for a ``pg_collation`` row)."""

    kind: Literal["database", "collation"]
    name: str
    locale: str
    recorded: str
    actual: str

    @property
    def mismatch(self) -> bool:
        """Whether the version the objects were built with differs from the library's."""
        return bool(self.recorded) and self.recorded != self.actual


class PgNode:
    """One PostgreSQL node in a VM (see the module). Create, then :meth:`prepare`."""

    def __init__(self, name: str, machine: Machine, address: str, *, mode: Mode = "container",
                 tree: ContainerArtifact | None = None, stanza: str = "main",
                 networks: Sequence[str] = (), replication_password: str,
                 volume: bool = False) -> None:
        if mode == "container" and tree is None:
            raise InputError(f"node {name}: container mode needs a container tree")
        self.name = name
        self.machine = machine
        self.address = address
        self.mode = mode
        self.tree = tree
        self.stanza = stanza
        self.networks = tuple(networks)  # prefixes allowed in pg_hba (the lab networks)
        self.replication_password = replication_password
        self.volume = volume  # the VM has a data volume (VOLUME_SERIAL) for the service's state
        self.version = ""  # the PostgreSQL major version, known after prepare()
        self.following: str | None = None  # the address of the primary it streams from

    def __repr__(self) -> str:
        return f"<PgNode {self.name} {self.mode} {self.address}>"

    # -- where and how commands run ----------------------------------------------------------
    @property
    def container(self) -> str | None:
        """The container's machine name (None in image mode)."""
        return self.tree.machine if self.mode == "container" and self.tree else None

    @property
    def unit(self) -> str:
        """The cluster's systemd unit."""
        return f"postgresql@{self.version}-main"

    @property
    def data_dir(self) -> str:
        """The data directory (as PostgreSQL sees it)."""
        return f"/var/lib/postgresql/{self.version}/main"

    @property
    def config_dir(self) -> str:
        """The cluster's configuration directory (as PostgreSQL sees it)."""
        return f"/etc/postgresql/{self.version}/main"

    def bin(self, program: str) -> str:
        """The path of one of the server's programs (``pg_amcheck``, ``pg_controldata``...)."""
        return f"/usr/lib/postgresql/{self.version}/bin/{program}"

    def vm_path(self, path: str) -> str:
        """Where ``path`` (as PostgreSQL sees it) is on the VM: in a container volume in
        container mode, the same path in image mode."""
        if self.container is None or self.tree is None:
            return path
        for volume in self.tree.spec.volumes:
            if path == volume.target or path.startswith(volume.target + "/"):
                return f"/srv/{self.container}/{volume.name}{path[len(volume.target):]}"
        raise InputError(f"{path}: not in a writable volume of container {self.container}")

    def argv(self, argv: Sequence[str], *, user: str | None = "postgres",
             timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None) -> list[str]:
        """``argv`` run where PostgreSQL lives, as ``user`` (root when None), bounded by a
        transient unit's ``RuntimeMaxSec``."""
        command = ["systemd-run"]
        if self.container:
            command += ["-M", self.container]
        command += ["--wait", "--pipe", "--quiet", "--collect",
                    f"--property=RuntimeMaxSec={max(1, int(timeout))}"]
        if user:
            command.append(f"--uid={user}")
        for key, value in (env or {}).items():
            command.append(f"--setenv={key}={value}")
        return [*command, "--", *argv]

    def execute(self, argv: Sequence[str], *, user: str | None = "postgres",
                timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None
                ) -> ExecResult:
        """Run ``argv`` where PostgreSQL lives; report, never raise for an exit code."""
        return self.machine.execute(self.argv(argv, user=user, timeout=timeout, env=env),
                                    timeout=timeout + 15)

    def run(self, argv: Sequence[str], *, user: str | None = "postgres",
            timeout: float = COMMAND_TIMEOUT, env: dict[str, str] | None = None) -> str:
        """Run ``argv`` where PostgreSQL lives; require exit 0; return its output."""
        result = self.execute(argv, user=user, timeout=timeout, env=env)
        if result.exit_code != 0:
            raise GuestCommandFailed(
                f"{self.name}: `{shlex.join(argv)[:200]}` exited {result.exit_code}: "
                f"{_tail(result.stderr_text or result.stdout_text)!r}")
        return result.stdout_text

    def sh(self, script: str, *, user: str | None = "postgres",
           timeout: float = COMMAND_TIMEOUT) -> str:
        """Run a shell ``script`` where PostgreSQL lives (exit 0 required)."""
        return self.run(["/bin/sh", "-c", script], user=user, timeout=timeout)

    def systemctl(self, *args: str, timeout: float = COMMAND_TIMEOUT) -> ExecResult:
        """``systemctl`` of the system PostgreSQL runs in (the container's in container
        mode)."""
        command = ["systemctl"] + (["-M", self.container] if self.container else [])
        return self.machine.execute([*command, *args], timeout=timeout)

    def put(self, path: str, data: bytes, *, mode: int = 0o640) -> None:
        """Write ``path`` (as PostgreSQL sees it), owned like its directory (postgres)."""
        target = self.vm_path(path)
        parent = target.rsplit("/", 1)[0]
        self.machine.succeed(["mkdir", "-p", parent], timeout=30)
        self.machine.write_file(target, data, mode=mode, timeout=60)
        self.machine.succeed(["chown", f"--reference={parent}", target], timeout=30)

    # -- setting up --------------------------------------------------------------------------
    def prepare(self, *, timeout: float = START_TIMEOUT) -> None:
        """Make the node ready to hold a cluster: in container mode install the tree with a
        shared network, enable and start the container and wait until it has booted; in
        both modes detect the PostgreSQL major version (an image without PostgreSQL or
        pgBackRest in image mode is :class:`InputError`). With a data volume, the service's
        state goes on it first: ``/srv/<container>`` (the container's data, configuration and
        log volumes) or, in image mode, ``/var/lib/postgresql``."""
        if self.volume:
            target = f"/srv/{self.container}" if self.container else "/var/lib/postgresql"
            with step("%s: data volume at %s", self.name, target):
                mounted = self.machine.succeed(["sh", "-c", volume_script(target)],
                                               timeout=120)
            log.info("%s: data volume %s", self.name, " ".join(mounted.split()))
        if self.container and self.tree is not None:
            with step("%s: container %s", self.name, self.container):
                install(self.machine, self.tree, copy=False)
                self.machine.write_file(f"/etc/systemd/nspawn/{self.container}.nspawn",
                                        shared_network_settings(self.tree.spec).encode(),
                                        mode=0o644)
                # the tree's default cluster is replaced before it serves: its boot need
                # not start it (a restore sets its own start.conf back to auto)
                self.machine.succeed(["sh", "-c", MANUAL_START, "manual-start",
                                      self.vm_path("/etc/postgresql")], timeout=30)
                self.machine.succeed(["machinectl", "enable", self.container], timeout=60)
                self.machine.succeed(["machinectl", "start", self.container], timeout=timeout)
                self.wait_booted(timeout=timeout)
        self.version = self.detect_version()
        found = self.execute(["pgbackrest", "version"], user=None, timeout=30)
        if found.exit_code != 0:
            raise InputError(f"node {self.name} ({self._where()}): no pgBackRest "
                             f"({_tail(found.stderr_text)})")
        log.info("%s: PostgreSQL %s, %s (%s)", self.name, self.version,
                 found.stdout_text.strip(), self._where())

    def _where(self) -> str:
        return f"container {self.container}" if self.container else \
            f"image {getattr(self.machine.image, 'name', '?')}"

    def wait_booted(self, *, timeout: float = START_TIMEOUT) -> None:
        """Wait until the container's systemd has finished booting (running or degraded)."""
        if not self.container:
            return
        self.machine.wait_until_succeeds(
            f"systemctl -M {shlex.quote(self.container)} is-system-running "
            "| grep -qx -e running -e degraded", timeout=timeout)

    def detect_version(self) -> str:
        """The PostgreSQL major version installed where the node runs it (the highest
        ``/usr/lib/postgresql/<v>/bin/postgres``). :class:`InputError` if there is none."""
        found = self.execute(["/bin/sh", "-c", "ls -d /usr/lib/postgresql/*/bin/postgres"],
                             user=None, timeout=30)
        versions = sorted((int(m.group(1)) for m in
                           re.finditer(r"/usr/lib/postgresql/(\d+)/bin/postgres",
                                       found.stdout_text)), reverse=True)
        if not versions:
            elsewhere = self.execute(["/bin/sh", "-c", "command -v postgres || "
                                      "ls /usr/pgsql-*/bin/postgres 2>/dev/null"],
                                     user=None, timeout=30).stdout_text.split()
            if elsewhere:
                raise InputError(f"node {self.name} ({self._where()}): PostgreSQL at "
                                 f"{elsewhere[0]}, not in Debian's postgresql-common layout "
                                 "(/usr/lib/postgresql/<major>), the only one image mode runs "
                                 "(use source: container)")
            raise InputError(f"node {self.name} ({self._where()}): no PostgreSQL server "
                             "(/usr/lib/postgresql/*/bin/postgres)")
        return str(versions[0])

    def configure(self, backrest_conf: str, files: dict[str, bytes]) -> None:
        """Write pgBackRest's configuration and its certificates and keys (``files``: names
        in ``BACKREST_DIR``) and (re)start the node's pgBackRest TLS server, through which
        the repository host takes backups."""
        self.sh(f"mkdir -p {BACKREST_DIR} {BACKREST_STATE} {BACKREST_LOG} && "
                f"chown postgres: {BACKREST_DIR} {BACKREST_STATE} {BACKREST_LOG} && "
                f"chmod 0750 {BACKREST_DIR}", user=None)
        for name, data in files.items():
            self.put(f"{BACKREST_DIR}/{name}", data, mode=0o600)
        self.put(BACKREST_CONF, backrest_conf.encode(), mode=0o640)
        self.start_backrest_server()

    def start_backrest_server(self) -> None:
        """(Re)start ``pgbackrest server`` as a transient unit (after every boot too)."""
        self.systemctl("stop", f"{BACKREST_UNIT}.service", timeout=30)
        self.systemctl("reset-failed", f"{BACKREST_UNIT}.service", timeout=30)
        command = ["systemd-run"] + (["-M", self.container] if self.container else [])
        self.machine.succeed([*command, f"--unit={BACKREST_UNIT}", "--uid=postgres",
                              "--property=Restart=always", "--property=RestartSec=1",
                              "--", "pgbackrest", f"--config={BACKREST_CONF}", "server"],
                             timeout=60)

    def settings(self) -> str:
        """Our ``conf.d`` settings: listen on every address, streaming replication, WAL
        archiving through pgBackRest, checksums-independent ``wal_log_hints`` (for
        pg_rewind), a 1 s WAL source retry."""
        backrest = f"pgbackrest --config={BACKREST_CONF} --stanza={self.stanza}"
        return "\n".join([
            "# written by distrogate (roll-forward scenario)",
            "listen_addresses = '*'",
            f"port = {PG_PORT}",
            "wal_level = replica",
            "max_wal_senders = 10",
            "max_replication_slots = 10",
            "wal_keep_size = '512MB'",
            "hot_standby = on",
            "hot_standby_feedback = on",
            "wal_log_hints = on",
            "archive_mode = on",
            f"archive_command = '{backrest} archive-push %p'",
            f"restore_command = '{backrest} archive-get %f \"%p\"'",
            "recovery_target_timeline = 'latest'",
            # a standby whose primary went away (a switchover) or whose archive ran out (a
            # restore catching up) tries its WAL sources again after 1 s, not the default 5 s
            "wal_retrieve_retry_interval = '1s'",
            "log_line_prefix = '%m [%p] %q%u@%d '",
            "log_min_messages = info",
            "",
        ])

    def hba(self) -> str:
        """``pg_hba.conf``: peer locally, password (SCRAM) from the lab networks only."""
        lines = ["# written by distrogate (roll-forward scenario)",
                 "local all postgres peer",
                 "local all all peer",
                 "host all all 127.0.0.1/32 scram-sha-256",
                 "host all all ::1/128 scram-sha-256"]
        for net in self.networks:
            lines += [f"host replication {REPLICATION_USER} {net} scram-sha-256",
                      f"host all all {net} scram-sha-256"]
        return "\n".join(lines) + "\n"

    def write_config(self) -> None:
        """Write :meth:`settings` and :meth:`hba` into the cluster's configuration."""
        self.put(f"{self.config_dir}/conf.d/{CONF_FILE}", self.settings().encode())
        self.put(f"{self.config_dir}/pg_hba.conf", self.hba().encode())

    # -- the cluster's life ------------------------------------------------------------------
    def init_primary(self, locale: str, *, timeout: float = START_TIMEOUT) -> None:
        """Make this node a new primary: a fresh cluster initialised in ``locale`` (LC_COLLATE
        and LC_CTYPE; ``initdb --data-checksums``), our settings, started; and the
        replication role. The tree's or image's default cluster is dropped first."""
        with step("%s: init primary (PostgreSQL %s, locale %s)", self.name, self.version,
                  locale):
            if self._cluster_exists():
                self.run(["pg_dropcluster", "--stop", self.version, "main"], user=None,
                         timeout=120)
            self.run(["pg_createcluster", f"--locale={locale}", "--start-conf=auto",
                      self.version, "main", "--", "--data-checksums",
                      f"--wal-segsize={WAL_SEGMENT_MIB}"], user=None, timeout=300)
            self.write_config()
            self.start(timeout=timeout)
            self.sql(f"CREATE ROLE {REPLICATION_USER} WITH REPLICATION LOGIN PASSWORD "
                     f"{_literal(self.replication_password)}")
            self.following = None

    def _cluster_exists(self) -> bool:
        return self.execute(["test", "-d", self.config_dir], user=None, timeout=30).exit_code == 0

    def start(self, *, timeout: float = START_TIMEOUT) -> None:
        """Start the cluster's unit and wait until it accepts connections."""
        self.systemctl("reset-failed", f"{self.unit}.service", timeout=30)
        started = self.systemctl("start", f"{self.unit}.service", timeout=timeout)
        if started.exit_code != 0:
            raise GuestCommandFailed(f"{self.name}: systemctl start {self.unit} exited "
                                     f"{started.exit_code}: {_tail(started.stderr_text)}; "
                                     f"log: {_tail(self.postgres_log(20), 600)}")
        self.wait_ready(timeout=timeout)

    def wait_ready(self, *, timeout: float = START_TIMEOUT) -> None:
        """Wait until the server accepts connections (``pg_isready``)."""
        deadline = time.monotonic() + timeout
        while True:
            got = self.execute([self.bin("pg_isready"), "-q", "-h", SOCKET_DIR,
                                "-p", str(PG_PORT)], timeout=30)
            if got.exit_code == 0:
                return
            if time.monotonic() > deadline:
                raise GuestCommandTimeout(f"{self.name}: PostgreSQL not ready within "
                                          f"{timeout:g}s; log: {_tail(self.postgres_log(20))}")
            time.sleep(1)

    def stop(self, *, timeout: float = 120) -> None:
        """Stop the cluster cleanly (fast shutdown: a shutdown checkpoint, every WAL record
        sent to the connected standbys)."""
        got = self.systemctl("stop", f"{self.unit}.service", timeout=timeout)
        if got.exit_code != 0:
            raise GuestCommandFailed(f"{self.name}: systemctl stop {self.unit}: "
                                     f"{_tail(got.stderr_text)}")

    def is_running(self) -> bool:
        """Whether the server accepts connections now."""
        try:
            return self.execute([self.bin("pg_isready"), "-q", "-h", SOCKET_DIR,
                                 "-p", str(PG_PORT)], timeout=20).exit_code == 0
        except GuestError:
            return False

    def primary_conninfo(self, primary: PgNode) -> str:
        """How a standby of ``primary`` connects to it (over the lab network)."""
        return (f"host={primary.address} port={PG_PORT} user={REPLICATION_USER} "
                f"password={self.replication_password} application_name={self.name} "
                "connect_timeout=10")

    def _write_follow(self, primary: PgNode) -> None:
        conninfo = self.primary_conninfo(primary).replace("'", "''")
        self.put(f"{self.config_dir}/conf.d/{FOLLOW_FILE}",
                 f"primary_conninfo = '{conninfo}'\n".encode(), mode=0o600)

    def restore_from_backup_and_follow(self, primary: PgNode, *,
                                       timeout: float = RESTORE_TIMEOUT) -> None:
        """Make this node a standby of ``primary``: stop its cluster, empty its data
        directory, ``pgbackrest restore --type=standby`` from the repository (the restored
        WAL comes from the archive), our settings with ``primary_conninfo``, start, and wait
        until it streams from ``primary``."""
        with step("%s: restore from backup and follow %s", self.name, primary.name):
            if self._cluster_exists():
                self.systemctl("stop", f"{self.unit}.service", timeout=120)
            else:
                self.run(["pg_createcluster", self.version, "main"], user=None, timeout=300)
            self.write_config()
            self.put(f"{self.config_dir}/start.conf", b"auto\n", mode=0o644)
            self._write_follow(primary)
            self.sh(f"find {shlex.quote(self.data_dir)} -mindepth 1 -delete", timeout=300)
            restore_command = (f"pgbackrest --config={BACKREST_CONF} --stanza={self.stanza} "
                               "archive-get %f \"%p\"")
            self.run(["pgbackrest", f"--config={BACKREST_CONF}", f"--stanza={self.stanza}",
                      "--type=standby", f"--recovery-option=restore_command={restore_command}",
                      "--log-level-console=warn", "restore"], timeout=timeout)
            self.start(timeout=timeout)
            self.following = primary.address
            # the restore's bound covers the copy and the archive's WAL; a standby that has
            # started and does not stream within START_TIMEOUT will not (its log says why)
            self.wait_streaming(timeout=min(timeout, START_TIMEOUT))

    def wait_streaming(self, *, timeout: float = START_TIMEOUT) -> None:
        """Wait until this standby's WAL receiver streams from its primary."""
        deadline = time.monotonic() + timeout
        status = ""
        while time.monotonic() < deadline:
            try:
                rows = self.sql("SELECT status FROM pg_stat_wal_receiver")
                status = rows[0][0] if rows else "no WAL receiver"
            except GuestCommandFailed as exc:
                status = str(exc)
            if status == "streaming":
                return
            time.sleep(1)
        raise GuestCommandTimeout(f"{self.name}: not streaming from its primary within "
                                  f"{timeout:g}s ({status}); log: "
                                  f"{_tail(self.postgres_log(20), 600)}")

    def follow(self, primary: PgNode, *, timeout: float = START_TIMEOUT) -> None:
        """Stream from ``primary`` from now on: a running standby gets the new
        ``primary_conninfo`` by a reload (its WAL receiver restarts and follows the new
        timeline); a stopped node (an old primary shut down cleanly) is started as a
        standby (``standby.signal``)."""
        with step("%s: follow %s", self.name, primary.name):
            self._write_follow(primary)
            if self.is_running() and self.in_recovery():
                self.sql("SELECT pg_reload_conf()")
            else:
                if self.is_running():
                    self.stop()
                self.sh(f"touch {shlex.quote(self.data_dir)}/standby.signal")
                self.start(timeout=timeout)
            self.following = primary.address
            self.wait_streaming(timeout=timeout)

    def in_recovery(self) -> bool:
        """Whether the server is a standby (``pg_is_in_recovery()``)."""
        return self.sql("SELECT pg_is_in_recovery()")[0][0] == "t"

    def promote(self, *, timeout: float = 120) -> None:
        """Promote this standby to primary (``pg_promote``, waiting until it is done)."""
        with step("%s: promote", self.name):
            rows = self.sql(f"SELECT pg_promote(true, {int(timeout)})",
                            timeout=timeout + 10)
            if rows != [["t"]]:
                raise GuestCommandFailed(f"{self.name}: pg_promote returned {rows}")
            self.execute(["rm", "-f", f"{self.config_dir}/conf.d/{FOLLOW_FILE}"], timeout=30)
            self.following = None

    def kill_postgres(self) -> None:
        """``kill -9`` of the postmaster (its children die with it): a crashed server,
        down until it is started again (then it runs crash recovery)."""
        with step("%s: kill -9 postgres", self.name):
            self.sh(f"kill -9 \"$(head -n1 {shlex.quote(self.data_dir)}/postmaster.pid)\"",
                    user=None, timeout=30)

    def checkpoint_lsn(self) -> str:
        """The latest checkpoint's location from ``pg_controldata`` (after a clean shutdown:
        the shutdown checkpoint, which a standby must have replayed before it is promoted)."""
        text = self.run([self.bin("pg_controldata"), "-D", self.data_dir], timeout=30)
        match = re.search(r"^Latest checkpoint location:\s*(\S+)$", text, re.M)
        if not match:
            raise GuestCommandFailed(f"{self.name}: no checkpoint location in pg_controldata")
        return match.group(1)

    def replay_lsn(self) -> str:
        """The last WAL location this standby replayed (or the current one on a primary)."""
        return self.sql("SELECT coalesce(pg_last_wal_replay_lsn(), pg_current_wal_lsn()) "
                        "WHERE pg_is_in_recovery() UNION ALL SELECT pg_current_wal_lsn() "
                        "WHERE NOT pg_is_in_recovery()")[0][0]

    def current_lsn(self) -> str:
        """The primary's current WAL write location."""
        return self.sql("SELECT pg_current_wal_lsn()")[0][0]

    def replayed_past(self, lsn: str) -> bool:
        """Whether this standby has replayed WAL up to ``lsn`` or further."""
        return self.sql(f"SELECT pg_wal_lsn_diff(pg_last_wal_replay_lsn(), "
                        f"{_literal(lsn)}) >= 0")[0][0] == "t"

    def lag_bytes(self, primary: PgNode) -> int:
        """How many bytes of WAL this standby has still to replay behind ``primary``."""
        lsn = primary.current_lsn()
        rows = self.sql(f"SELECT pg_wal_lsn_diff({_literal(lsn)}, pg_last_wal_replay_lsn())")
        value = rows[0][0] if rows else ""
        if not value:
            raise GuestCommandFailed(f"{self.name}: no replay location (not a standby?)")
        return max(0, int(float(value)))

    # -- reading -----------------------------------------------------------------------------
    def sql(self, query: str, *, database: str = "postgres", port: int = PG_PORT,
            timeout: float = COMMAND_TIMEOUT) -> list[list[str]]:
        """Run ``query`` with ``psql -At`` as postgres over the local socket, with a
        statement timeout below ``timeout``; return the rows, each a list of fields (NULL is
        ''). Fields must not hold newlines. A failed query raises
        :class:`GuestCommandFailed` with psql's error."""
        statement_ms = max(1000, min(STATEMENT_TIMEOUT_MS, int((timeout - 5) * 1000)))
        got = self.execute([self.bin("psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                            "-F", "\x1f", "-h", SOCKET_DIR, "-p", str(port), "-d", database,
                            "-c", query], timeout=timeout,
                           env={"PGOPTIONS": f"-c statement_timeout={statement_ms}"})
        if got.exit_code != 0:
            raise GuestCommandFailed(f"{self.name}: SQL failed ({_tail(query, 120)}): "
                                     f"{_tail(got.stderr_text or got.stdout_text)}")
        return [line.split("\x1f") for line in got.stdout_text.splitlines() if line != ""]

    def table_checksum(self, table: str, *, database: str = "postgres") -> tuple[int, str]:
        """The row count and the md5 of every row as text, in byte order (``COLLATE "C"``,
        so that the database's collation cannot change the order): equal on nodes holding
        the same rows."""
        if not _IDENT.match(table):
            raise InputError(f"table name {table!r}: use [schema.]name")
        rows = self.sql(f"SELECT count(*), md5(coalesce(string_agg(t::text, E'\\n' "
                        f"ORDER BY t::text COLLATE \"C\"), '')) FROM {table} t",
                        database=database, timeout=300)
        return int(rows[0][0]), rows[0][1]

    def amcheck(self, *, timeout: float = 900) -> AmcheckResult:
        """``pg_amcheck --all --heapallindexed`` (B-tree indexes checked against their
        tables, in every database). On a primary the ``amcheck`` extension is installed
        where missing (``--install-missing``; it reaches the standbys by replication)."""
        argv = [self.bin("pg_amcheck"), "--all", "--heapallindexed", "-h", SOCKET_DIR,
                "-p", str(PG_PORT)]
        if not self.in_recovery():
            argv.append("--install-missing")
        got = self.execute(argv, timeout=timeout)
        return AmcheckResult(self.name, got.exit_code,
                             (got.stdout_text + got.stderr_text).strip())

    def collation_versions(self) -> list[CollationVersion]:
        """Each database's collation version as recorded (``datcollversion``) and as the C
        library reports it now, and every ``pg_collation`` row that records a version."""
        found: list[CollationVersion] = []
        if int(self.version) >= 15:
            for name, locale, recorded, actual in self.sql(
                    "SELECT datname, datcollate, coalesce(datcollversion, ''), "
                    "coalesce(pg_database_collation_actual_version(oid), '') "
                    "FROM pg_database WHERE datallowconn ORDER BY datname"):
                found.append(CollationVersion("database", name, locale, recorded, actual))
        for name, locale, recorded, actual in self.sql(
                "SELECT collname, coalesce(collcollate, ''), collversion, "
                "coalesce(pg_collation_actual_version(oid), '') FROM pg_collation "
                "WHERE collversion IS NOT NULL ORDER BY collname"):
            found.append(CollationVersion("collation", name, locale, recorded, actual))
        return found

    # -- logs --------------------------------------------------------------------------------
    def postgres_log(self, lines: int = LOG_LINES) -> str:
        """The tail of the cluster's log file (never raises)."""
        return self._best_effort(["tail", "-n", str(lines),
                                  f"/var/log/postgresql/postgresql-{self.version}-main.log"])

    def logs(self, lines: int = LOG_LINES) -> dict[str, str]:
        """The tails of the postgres log, pgBackRest's logs and the journal (the
        container's and the VM's), for a finding. Never raises."""
        journal = ["journalctl", "--no-pager", "-q", "-n", str(lines)]
        found = {
            "postgres": self.postgres_log(lines),
            "pgbackrest": self._best_effort(
                ["/bin/sh", "-c", f"for f in {BACKREST_LOG}/*.log; do echo \"== $f\"; "
                 f"tail -n {lines} \"$f\"; done"]),
            "journal": self._best_effort_vm(journal),
        }
        if self.container:
            found["container_journal"] = self._best_effort_vm(
                ["journalctl", "-M", self.container, "--no-pager", "-q", "-n", str(lines)])
        return found

    def _best_effort(self, argv: list[str]) -> str:
        try:
            got = self.execute(argv, user=None, timeout=30)
            return got.stdout_text + got.stderr_text
        except GuestError as exc:
            return f"(unavailable: {exc})"

    def _best_effort_vm(self, argv: list[str]) -> str:
        try:
            got = self.machine.execute(argv, timeout=30)
            return got.stdout_text + got.stderr_text
        except GuestError as exc:
            return f"(unavailable: {exc})"

    def after_boot(self, *, timeout: float = START_TIMEOUT) -> None:
        """After the VM booted again (reboot, crash): wait for the container, restart the
        pgBackRest server, wait until PostgreSQL (started by its unit) is ready."""
        self.wait_booted(timeout=timeout)
        self.start_backrest_server()
        self.start(timeout=timeout)


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _tail(text: str, limit: int = 300) -> str:
    text = text.strip()
    return text if len(text) <= limit else "..." + text[-limit:]
