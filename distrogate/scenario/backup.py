"""The pgBackRest repository of a roll-forward cluster, standing for object storage.

The repository is a directory on the host; ``pgbackrest server`` (TLS, pgBackRest >= 2.37)
serves it on an address the host side takes on the cluster network's bridge, inside the lab's
network namespace (like the DNF mirror): guests reach it over the lab network only, and it
reaches nothing else. Every node runs a pgBackRest TLS server too (inside its container),
because pgBackRest takes backups *from the repository host*: ``stanza-create`` and ``backup``
run here, on the host side, and reach the primary's PostgreSQL through its node's server;
``archive-push``, ``archive-get`` and ``restore`` run on the nodes and reach this repository.

Certificates (a throwaway CA, :mod:`distrogate.ipsec.pki`): pgBackRest 2.45 checks a server's
name against the certificate's common name and DNS names only, never an IP address SAN, so
each server certificate carries its address as a DNS name. Client certificates are
authorised by common name (``tls-server-auth``): ``distrogate-repo`` (this side, for backups)
and ``distrogate-pg`` (the nodes, for the archive and restores).

The host's and the nodes' pgBackRest must be the same version (its protocol checks it):
Debian 12's and the bookworm container tree's are both 2.45.

Everything started here (the address, the server, the repository's files) is gone when
:meth:`BackupRepository.close` returns (also on an interrupt; use it as a context manager).
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from distrogate import proc
from distrogate.errors import CommandError, GuestCommandFailed, GuestCommandTimeout, InfraError
from distrogate.ipsec.pki import issue_signed
from distrogate.lab.lab import Lab
from distrogate.lab.network import LabNetwork
from distrogate.logsteps import step
from distrogate.scenario.pgnode import (
    BACKREST_CONF,
    BACKREST_DIR,
    BACKREST_LOG,
    BACKREST_PORT,
    BACKREST_STATE,
    PG_PORT,
    SOCKET_DIR,
    PgNode,
)

log = logging.getLogger(__name__)

REPO_HOST = 0xFA  # the host side's address on the cluster network: <prefix>::fa
REPO_CN = "distrogate-repo"
NODE_CN = "distrogate-pg"
START_TIMEOUT = 20.0
BACKUP_TIMEOUT = 1200.0
PITR_PORT = 5499
PITR_UNIT = "dg-pitr"


@contextlib.contextmanager
def bridge_address6(lab: Lab, network: LabNetwork, host: int = REPO_HOST) -> Iterator[str]:
    """The host side's IPv6 address on ``network``'s bridge (inside the lab's namespace)
    for the body; removed afterwards. IPv6 is switched on for the bridge (libvirt leaves it
    off on a network it gave no IPv6 address)."""
    if network.ipv6 is None:
        raise InfraError(f"network {network.name} has no IPv6 prefix")
    address = ipaddress.IPv6Interface(
        f"{network.ipv6.network_address + host}/{network.ipv6.prefixlen}")
    proc.run(lab.host_argv(["sysctl", "-qw",
                            f"net.ipv6.conf.{network.bridge}.disable_ipv6=0"]), timeout=30)
    proc.run(lab.host_argv(["ip", "addr", "add", str(address), "dev", network.bridge,
                            "nodad"]), timeout=30)
    try:
        yield str(address.ip)
    finally:
        proc.run(lab.host_argv(["ip", "addr", "del", str(address), "dev", network.bridge]),
                 timeout=30, check=False)


def issue_named(directory: Path, name: str, common_name: str, dns_name: str) -> tuple[Path, Path]:
    """A key and certificate with ``common_name`` (the identity ``tls-server-auth``
    authorises) and ``dns_name`` as its one DNS SAN (the name a client checks: an address
    written as text), signed by the CA in ``directory``; (key, cert). One at a time: the CA's
    serial file is shared."""
    with _ISSUE_LOCK:
        return _issue_named(directory, name, common_name, dns_name)


_ISSUE_LOCK = threading.Lock()


def _issue_named(directory: Path, name: str, common_name: str, dns_name: str
                 ) -> tuple[Path, Path]:
    key, cert, _ = issue_signed(directory, name, common_name, f"DNS:{dns_name}",
                         "digitalSignature,keyEncipherment")
    return key, cert


@dataclass(frozen=True)
class BackupInfo:
    """One backup the repository took: its label, type and how long it took."""

    label: str
    type: str
    seconds: float


class BackupRepository:
    """The repository and its TLS server on the host side (see the module)."""

    def __init__(self, lab: Lab, network: LabNetwork, *, stanza: str = "main",
                 workdir: Path | None = None, pg_version: str = "15") -> None:
        self.lab = lab
        self.network = network
        self.stanza = stanza
        self.pg_version = pg_version
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="distrogate-pgbackrest-"))
        self.address = ""
        self._stack = contextlib.ExitStack()
        self._server: subprocess.Popen[bytes] | None = None
        self.backups: list[BackupInfo] = []

    # -- life --------------------------------------------------------------------------------
    def __enter__(self) -> BackupRepository:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()

    @property
    def pki(self) -> Path:
        """The CA, keys and certificates."""
        return self.workdir / "pki"

    @property
    def repo_path(self) -> Path:
        """The repository's directory."""
        return self.workdir / "repo"

    @property
    def config(self) -> Path:
        """The host side's pgBackRest configuration (server and backups)."""
        return self.workdir / "pgbackrest.conf"

    @property
    def log_dir(self) -> Path:
        """pgBackRest's logs on the host side."""
        return self.workdir / "log"

    def start(self) -> None:
        """Take the address, make the certificates and the configuration, start the server
        and wait until it accepts connections."""
        try:
            with step("pgBackRest repository on the host side (TLS server)"):
                for sub in (self.repo_path, self.log_dir, self.workdir / "lock", self.pki):
                    sub.mkdir(parents=True, exist_ok=True)
                self.address = self._stack.enter_context(bridge_address6(self.lab,
                                                                         self.network))
                issue_named(self.pki, "repo", REPO_CN, self.address)
                self.config.write_text(self.host_config())
                server_log = self.log_dir / "server.out"
                self._server = proc.spawn(self.lab.host_argv(
                    ["pgbackrest", f"--config={self.config}", "server"]), log_file=server_log)
                self._stack.callback(self._stop_server)
                self._wait_listening()
        except BaseException:
            self.close()
            raise

    def _wait_listening(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        probe = self.lab.host_argv(["ss", "-Htln", f"sport = :{BACKREST_PORT}"])
        while time.monotonic() < deadline:
            if self._server is not None and self._server.poll() is not None:
                raise InfraError(f"pgbackrest server exited {self._server.returncode}: "
                                 f"{self._server_log()}")
            if self.address.split("%")[0] in proc.run(probe, timeout=10, check=False).text \
                    or f"[{self.address}]" in proc.run(probe, timeout=10, check=False).text:
                return
            time.sleep(0.2)
        raise InfraError(f"pgbackrest server not listening on [{self.address}]:{BACKREST_PORT} "
                         f"within {START_TIMEOUT:g}s: {self._server_log()}")

    def _server_log(self) -> str:
        try:
            return (self.log_dir / "server.out").read_text(errors="replace")[-500:]
        except OSError:
            return ""

    def _stop_server(self) -> None:
        server, self._server = self._server, None
        if server is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(server.pid, signal.SIGTERM)  # the server and its per-connection children
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(server.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                server.wait(timeout=5)

    def close(self) -> None:
        """Stop the server, take the address off the bridge, remove the repository's files
        (the logs stay when the caller gave the working directory)."""
        try:
            self._stack.close()
        finally:
            if self._own_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)
            else:
                shutil.rmtree(self.repo_path, ignore_errors=True)
                shutil.rmtree(self.pki, ignore_errors=True)

    # -- configuration -----------------------------------------------------------------------
    def host_config(self) -> str:
        """The host side's configuration: the repository, the TLS server that serves it to
        the nodes (clients ``distrogate-pg``), and how backups reach a node's server."""
        pki = self.pki
        return "\n".join([
            "[global]",
            f"repo1-path={self.repo_path}",
            "repo1-retention-full=4",
            f"log-path={self.log_dir}",
            f"lock-path={self.workdir / 'lock'}",
            "log-level-console=warn",
            "log-level-file=detail",
            "compress-type=lz4",
            "start-fast=y",
            "archive-timeout=120",
            "io-timeout=120",
            f"tls-server-address={self.address}",
            f"tls-server-port={BACKREST_PORT}",
            f"tls-server-ca-file={pki / 'ca.pem'}",
            f"tls-server-cert-file={pki / 'repo.pem'}",
            f"tls-server-key-file={pki / 'repo.key'}",
            f"tls-server-auth={NODE_CN}={self.stanza}",
            "",
            f"[{self.stanza}]",
            "pg1-host-type=tls",
            f"pg1-host-port={BACKREST_PORT}",
            f"pg1-host-ca-file={pki / 'ca.pem'}",
            f"pg1-host-cert-file={pki / 'repo.pem'}",
            f"pg1-host-key-file={pki / 'repo.key'}",
            f"pg1-port={PG_PORT}",
            f"pg1-socket-path={SOCKET_DIR}",
            "",
        ])

    def node_files(self, node: PgNode) -> tuple[str, dict[str, bytes]]:
        """What ``node`` needs to use the repository and serve backups: its pgBackRest
        configuration and its files (CA, its key and certificate: common name
        ``distrogate-pg``, its address as DNS name)."""
        key, cert = issue_named(self.pki, f"node-{node.name}", NODE_CN, node.address)
        conf = "\n".join([
            "[global]",
            f"repo1-host={self.address}",
            "repo1-host-type=tls",
            # a TLS client names the repository's path; the server does not fill it in
            f"repo1-path={self.repo_path}",
            f"repo1-host-port={BACKREST_PORT}",
            f"repo1-host-ca-file={BACKREST_DIR}/ca.pem",
            f"repo1-host-cert-file={BACKREST_DIR}/node.pem",
            f"repo1-host-key-file={BACKREST_DIR}/node.key",
            f"log-path={BACKREST_LOG}",
            "log-level-console=warn",
            "log-level-file=detail",
            f"lock-path={BACKREST_STATE}/lock",
            f"spool-path={BACKREST_STATE}/spool",
            "compress-type=lz4",
            "io-timeout=120",
            f"tls-server-address={node.address}",
            f"tls-server-port={BACKREST_PORT}",
            f"tls-server-ca-file={BACKREST_DIR}/ca.pem",
            f"tls-server-cert-file={BACKREST_DIR}/node.pem",
            f"tls-server-key-file={BACKREST_DIR}/node.key",
            f"tls-server-auth={REPO_CN}={self.stanza}",
            "",
            f"[{self.stanza}]",
            f"pg1-path={node.data_dir}",
            f"pg1-port={PG_PORT}",
            f"pg1-socket-path={SOCKET_DIR}",
            "",
        ])
        return conf, {"ca.pem": (self.pki / "ca.pem").read_bytes(),
                      "node.pem": cert.read_bytes(), "node.key": key.read_bytes()}

    def attach(self, node: PgNode) -> None:
        """Give ``node`` its pgBackRest configuration and start its server."""
        conf, files = self.node_files(node)
        node.configure(conf, files)

    # -- commands on the host side -----------------------------------------------------------
    def _host(self, primary: PgNode, *args: str, timeout: float) -> proc.Completed:
        argv = ["pgbackrest", f"--config={self.config}", f"--stanza={self.stanza}",
                f"--pg1-host={primary.address}", f"--pg1-path={primary.data_dir}", *args]
        try:
            return proc.run(self.lab.host_argv(argv), timeout=timeout)
        except CommandError as exc:
            raise GuestCommandFailed(f"pgbackrest {args[-1]} (primary {primary.name}): "
                                     f"{exc}") from None

    def stanza_create(self, primary: PgNode, *, timeout: float = 300) -> None:
        """Create the stanza from ``primary`` (its system identifier and version)."""
        with step("pgbackrest stanza-create (%s)", primary.name):
            self._host(primary, "stanza-create", timeout=timeout)

    def check(self, primary: PgNode, *, timeout: float = 300) -> None:
        """``pgbackrest check``: the primary's archive_command reaches the repository."""
        self._host(primary, "check", timeout=timeout)

    def backup(self, primary: PgNode, *, type: str = "full",
               timeout: float = BACKUP_TIMEOUT) -> BackupInfo:
        """Take a backup of ``primary`` (``full``, ``diff`` or ``incr``)."""
        started = time.monotonic()
        with step("pgbackrest backup --type=%s (%s)", type, primary.name):
            self._host(primary, f"--type={type}", "backup", timeout=timeout)
        latest = self.info()[0].get("backup", [])
        label = str(latest[-1].get("label", "")) if latest else ""
        found = BackupInfo(label, type, round(time.monotonic() - started, 2))
        self.backups.append(found)
        return found

    def info(self) -> list[dict[str, Any]]:
        """``pgbackrest info --output=json`` of the repository."""
        got = proc.run(self.lab.host_argv(["pgbackrest", f"--config={self.config}",
                                           f"--stanza={self.stanza}", "--output=json",
                                           "info"]), timeout=60)
        data = json.loads(got.text or "[]")
        return data if isinstance(data, list) else []

    def log_tail(self, lines: int = 80) -> str:
        """The tails of the host side's pgBackRest logs (for a finding)."""
        parts = []
        for path in sorted(self.log_dir.glob("*")):
            with contextlib.suppress(OSError):
                text = path.read_text(errors="replace").splitlines()[-lines:]
                parts.append(f"== {path.name}\n" + "\n".join(text))
        return "\n".join(parts)

    # -- point-in-time restore ---------------------------------------------------------------
    @contextlib.contextmanager
    def point_in_time(self, node: PgNode, *, target_time: str | None = None,
                      timeout: float = 900) -> Iterator[PitrServer]:
        """Restore the repository's latest backup and its archived WAL into a fresh
        directory on ``node`` (a spare node will do: its own cluster keeps running), up to
        ``target_time`` (a timestamp with zone) or to the end of the archive, start a
        throwaway server on it (port 5499, local socket only) and yield it for reading.
        The server is stopped and the directory removed afterwards, whatever happens."""
        directory = f"/var/lib/postgresql/{node.version}/dg-pitr"
        target = (["--type=time", f"--target={target_time}", "--target-action=promote"]
                  if target_time else ["--type=default"])
        try:
            with step("point-in-time restore on %s (%s)", node.name,
                      target_time or "end of archive"):
                node.sh(f"rm -rf {directory} && mkdir -m 0700 {directory}", timeout=300)
                node.run(["pgbackrest", f"--config={BACKREST_CONF}", f"--stanza={self.stanza}",
                          f"--pg1-path={directory}", *target, "--archive-mode=off",
                          "--log-level-console=warn", "restore"], timeout=timeout)
                node.put(f"{directory}/postgresql.conf", "\n".join([
                    f"port = {PITR_PORT}", "listen_addresses = ''",
                    f"unix_socket_directories = '{SOCKET_DIR}'", "archive_mode = off",
                    # no hot standby: its checks want max_wal_senders etc. >= the primary's
                    "hot_standby = off", "wal_level = replica", ""
                ]).encode(), mode=0o600)
                node.put(f"{directory}/pg_hba.conf", b"local all all peer\n", mode=0o600)
                node.put(f"{directory}/pg_ident.conf", b"", mode=0o600)
                node.systemctl("stop", f"{PITR_UNIT}.service", timeout=30)
                node.systemctl("reset-failed", f"{PITR_UNIT}.service", timeout=30)
                spawn = ["systemd-run"] + (["-M", node.container] if node.container else [])
                node.machine.succeed([*spawn, f"--unit={PITR_UNIT}", "--uid=postgres",
                                      f"--property=RuntimeMaxSec={int(timeout) + 600}", "--",
                                      node.bin("postgres"), "-D", directory], timeout=60)
                server = PitrServer(node, PITR_PORT)
                server.wait_promoted(timeout=timeout)
            yield server
        finally:
            node.systemctl("stop", f"{PITR_UNIT}.service", timeout=120)
            node.systemctl("reset-failed", f"{PITR_UNIT}.service", timeout=30)
            with contextlib.suppress(GuestCommandFailed, GuestCommandTimeout):
                node.sh(f"rm -rf {directory}", timeout=300)


class PitrServer:
    """A throwaway server on a point-in-time restore (see :meth:`BackupRepository.
    point_in_time`), for reading."""

    def __init__(self, node: PgNode, port: int) -> None:
        self.node = node
        self.port = port

    def sql(self, query: str, *, database: str = "postgres",
            timeout: float = 120) -> list[list[str]]:
        """Rows of ``query`` on the restored data (see :meth:`PgNode.sql`)."""
        return self.node.sql(query, database=database, port=self.port, timeout=timeout)

    def wait_promoted(self, *, timeout: float) -> None:
        """Wait until recovery has ended and the server accepts writes (end of archive or
        the target reached)."""
        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            try:
                if self.sql("SELECT pg_is_in_recovery()") == [["f"]]:
                    return
                last = "in recovery"
            except GuestCommandFailed as exc:
                last = str(exc)
            state = self.node.systemctl("is-active", f"{PITR_UNIT}.service", timeout=30)
            if state.stdout_text.strip() not in ("active", "activating"):
                journal = self.node.machine.execute(
                    ["journalctl", *(["-M", self.node.container] if self.node.container else []),
                     "-u", f"{PITR_UNIT}.service", "-n", "30", "--no-pager", "-q"], timeout=30)
                raise GuestCommandFailed(f"{self.node.name}: the point-in-time restore's server "
                                         f"stopped ({state.stdout_text.strip()}): "
                                         f"{journal.stdout_text[-1500:]}")
            time.sleep(1)
        raise GuestCommandTimeout(f"{self.node.name}: point-in-time restore not finished "
                                  f"within {timeout:g}s ({last})")
