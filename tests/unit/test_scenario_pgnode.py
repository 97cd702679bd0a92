"""PgNode's and the repository's configuration, without VMs; and pgBackRest's TLS naming as
the repository uses it, checked against the host's own pgBackRest (2.45: names in the CN or
a DNS SAN only) on the loopback address."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from distrogate.nspawn.tree import ContainerSpec
from distrogate.scenario import backup
from distrogate.scenario.backup import NODE_CN, REPO_CN, BackupRepository, issue_named
from distrogate.scenario.pgnode import (
    BACKREST_CONF,
    CollationVersion,
    PgNode,
    container_spec,
    shared_network_settings,
)


class _Tree:
    def __init__(self) -> None:
        self.spec = container_spec()
        self.machine = self.spec.machine


def _node(mode: str = "container") -> PgNode:
    node = PgNode("db1", object(), "fd42:1:1::5", mode=mode,  # type: ignore[arg-type]
                  tree=_Tree() if mode == "container" else None,  # type: ignore[arg-type]
                  networks=["fd42:1:1::/64"], replication_password="pw")
    node.version = "15"
    return node


def test_container_spec_adds_pgbackrest_and_locales() -> None:
    spec = container_spec()
    assert {"pgbackrest", "locales-all", "postgresql"} <= set(spec.packages)
    assert spec.machine == ContainerSpec().machine


def test_the_container_shares_the_vm_network() -> None:
    text = shared_network_settings(container_spec())
    assert "Private=no" in text and "VirtualEthernet=no" in text
    assert "Private=yes" not in text and "ReadOnly=yes" in text


def test_commands_run_in_the_container_bounded() -> None:
    argv = _node().argv(["psql", "-c", "select 1"], timeout=42)
    assert argv[:3] == ["systemd-run", "-M", "pgbox"]
    assert "--property=RuntimeMaxSec=42" in argv and "--uid=postgres" in argv
    assert argv[argv.index("--") + 1:] == ["psql", "-c", "select 1"]
    image = _node("image").argv(["true"], user=None)
    assert "-M" not in image and not any(a.startswith("--uid") for a in image)


def test_paths_map_to_the_container_volumes() -> None:
    node = _node()
    assert node.vm_path("/var/lib/postgresql/15/main") == "/srv/pgbox/data/15/main"
    assert node.vm_path(BACKREST_CONF) == "/srv/pgbox/config/pgbackrest/pgbackrest.conf"
    assert _node("image").vm_path("/etc/x") == "/etc/x"


def test_settings_archive_through_pgbackrest_and_hba_is_the_lab_network() -> None:
    node = _node()
    settings = node.settings()
    for line in ("listen_addresses = '*'", "wal_level = replica", "archive_mode = on",
                 "hot_standby = on", "wal_log_hints = on"):
        assert line in settings
    assert f"pgbackrest --config={BACKREST_CONF} --stanza=main archive-push %p" in settings
    hba = node.hba()
    assert "host replication replicator fd42:1:1::/64 scram-sha-256" in hba
    assert "0.0.0.0/0" not in hba and "::/0" not in hba


def test_collation_mismatch() -> None:
    assert CollationVersion("database", "d", "en_US.UTF-8", "2.36", "2.41").mismatch
    assert not CollationVersion("database", "d", "C", "", "").mismatch


@pytest.mark.skipif(shutil.which("pgbackrest") is None or shutil.which("openssl") is None,
                    reason="needs the host's pgbackrest and openssl")
def test_tls_names_work_with_the_hosts_pgbackrest(tmp_path: Path, monkeypatch: Any) -> None:
    """A node reaches the repository's TLS server by its address (a DNS SAN) with a client
    certificate authorised by its common name; an unauthorised name is refused."""
    pki = tmp_path / "pki"
    pki.mkdir()
    issue_named(pki, "repo", REPO_CN, "::1")
    issue_named(pki, "node", NODE_CN, "::1")
    issue_named(pki, "other", "someone-else", "::1")
    with socket.socket(socket.AF_INET6) as probe:
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
    (tmp_path / "server.conf").write_text(
        f"[global]\nrepo1-path={tmp_path / 'repo'}\nlog-path={tmp_path}\n"
        f"lock-path={tmp_path / 'lock'}\ntls-server-address=::1\ntls-server-port={port}\n"
        f"tls-server-cert-file={pki / 'repo.pem'}\ntls-server-key-file={pki / 'repo.key'}\n"
        f"tls-server-ca-file={pki / 'ca.pem'}\ntls-server-auth={NODE_CN}=demo\n")

    def client(name: str) -> str:
        conf = tmp_path / f"{name}.conf"
        conf.write_text(
            f"[global]\nrepo1-host=::1\nrepo1-host-port={port}\nrepo1-host-type=tls\n"
            f"repo1-host-ca-file={pki / 'ca.pem'}\nrepo1-host-cert-file={pki / name}.pem\n"
            f"repo1-host-key-file={pki / name}.key\nlog-path={tmp_path}\n"
            f"lock-path={tmp_path / 'lock-c'}\n[demo]\npg1-path={tmp_path / 'pg'}\n")
        got = subprocess.run(["pgbackrest", f"--config={conf}", "--stanza=demo", "info"],
                             capture_output=True, text=True, timeout=60, check=False)
        return got.stdout + got.stderr

    server = subprocess.Popen(["pgbackrest", f"--config={tmp_path / 'server.conf'}", "server"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(50):
            with socket.socket(socket.AF_INET6) as s:
                if s.connect_ex(("::1", port)) == 0:
                    break
            time.sleep(0.1)
        assert "missing stanza path" in client("node")
        assert "missing stanza path" not in client("other")
    finally:
        server.terminate()
        server.wait(timeout=10)
    assert backup.REPO_HOST == 0xFA


def test_host_config_serves_the_nodes(tmp_path: Path) -> None:
    repo = BackupRepository(object(), object(), stanza="s1", workdir=tmp_path)  # type: ignore[arg-type]
    repo.address = "fd42:1:1::fa"
    text = repo.host_config()
    assert f"tls-server-auth={NODE_CN}=s1" in text
    assert "tls-server-address=fd42:1:1::fa" in text and "[s1]" in text
