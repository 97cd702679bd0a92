"""The client load against a real PostgreSQL on loopback (the host's postgresql package, a
throwaway cluster run as the postgres user): acknowledged writes are all there, a server
stopped mid-run gives failed or indeterminate writes and loses no acknowledged one, SIGTERM
and the owner's death stop the writer, the hosts file moves the writers, and the checker finds
a deleted acknowledged row."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest

from distrogate import proc
from distrogate.scenario import sql
from distrogate.scenario.history import Status, check_keys
from distrogate.scenario.writer import COMMIT, CONNECT, STATEMENT, WriterProcess, classify, read_keys

READY_TIMEOUT = 30.0
STOP_TIMEOUT = 30.0
LOCALE = "C.UTF-8"  # the host has no other UTF-8 locale; the guests use en_US.UTF-8


def _bindir() -> Path | None:
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parent.parent.name))
    return found[-1].parent if found else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _as_postgres(argv: list[str]) -> list[str]:
    return ["setpriv", "--reuid=postgres", "--regid=postgres", "--clear-groups", "--", *argv]


@dataclass
class LocalPostgres:
    """A PostgreSQL cluster in a temporary folder, on 127.0.0.1 and a free port."""

    bindir: Path
    root: Path
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen[bytes] | None = None

    @property
    def datadir(self) -> Path:
        return self.root / "data"

    def dsn(self, dbname: str = "postgres") -> str:
        return f"host=127.0.0.1 port={self.port} user=dg dbname={dbname}"

    def init(self) -> None:
        proc.run(_as_postgres([str(self.bindir / "initdb"), "-D", str(self.datadir), "-U", "dg",
                               "--auth=trust", "--encoding=UTF8", f"--locale={LOCALE}",
                               "--no-sync"]), timeout=120, cwd=self.root)

    def start(self) -> None:
        self.process = proc.spawn(_as_postgres([
            str(self.bindir / "postgres"), "-D", str(self.datadir), "-p", str(self.port),
            "-c", "listen_addresses=127.0.0.1", "-c", f"unix_socket_directories={self.root}",
            "-c", "max_connections=30", "-c", "shared_buffers=16MB"]),
            log_file=self.root / "postgres.log")
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.root / "postgres.log").read_text(errors="replace")[-500:]
                raise RuntimeError(f"postgres exited at start: {log}")
            try:
                with psycopg.connect(self.dsn() + " connect_timeout=1"):
                    return
            except psycopg.OperationalError:
                time.sleep(0.1)
        raise RuntimeError(f"postgres did not accept connections within {READY_TIMEOUT}s")

    def pids(self) -> list[int]:
        """The postmaster and its children."""
        assert self.process is not None
        found = [self.process.pid]
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue
            if int(fields[1]) == self.process.pid:
                found.append(int(stat.parent.name))
        return found

    def stop(self, mode: signal.Signals = signal.SIGINT) -> None:
        """SIGINT: fast shutdown; SIGQUIT: immediate (no checkpoint, crash recovery next)."""
        if self.process is None:
            return
        process, self.process = self.process, None
        process.send_signal(mode)
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.stop_spawned(process, "postgres", grace=5)

    def database(self, name: str) -> str:
        """A fresh database ``name`` with the schema and a few initial rows; its DSN."""
        with psycopg.connect(self.dsn(), autocommit=True) as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {sql.identifier(name)}")  # type: ignore[arg-type]
            conn.execute(sql.create_database(name, LOCALE))  # type: ignore[arg-type]
        with psycopg.connect(self.dsn(name), autocommit=True) as conn:
            for statement in sql.schema(text_index=True):
                conn.execute(statement)  # type: ignore[arg-type]
            conn.execute(sql.seed(200))  # type: ignore[arg-type]
        return self.dsn(name)


@pytest.fixture(scope="module")
def postgres() -> Iterator[LocalPostgres]:
    bindir = _bindir()
    if bindir is None or shutil.which("setpriv") is None:
        pytest.skip("needs the postgresql package (apt-get install postgresql) and setpriv")
    root = Path(tempfile.mkdtemp(prefix="dg-pg-"))
    server = LocalPostgres(bindir, root)
    try:
        shutil.chown(root, "postgres", "postgres")
        root.chmod(0o700)
        server.init()
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


def keys_of(dsn: str) -> list[int]:
    return read_keys(dsn, timeout=30)


def test_acknowledged_writes_are_all_present(postgres: LocalPostgres, tmp_path: Path) -> None:
    dsn = postgres.database("dg_ack")
    with WriterProcess(dsn, tmp_path, writers=2, rate=25) as writer:
        writer.wait_acknowledged(40, timeout=20)
    assert writer.returncode == 0
    history = writer.history()
    result = check_keys(history, keys_of(dsn))
    assert result.ok, result.findings()
    assert result.acknowledged >= 40 and result.failed == result.indeterminate == 0
    assert {w.writer for w in history} == {0, 1}
    assert len({w.key for w in history}) == len(history)
    assert all(w.started <= w.ended for w in history)
    with psycopg.connect(dsn) as conn:
        # the rows went through the text index in the database's collation
        (collation,) = conn.execute("SELECT datcollate FROM pg_database "  # type: ignore[misc]
                                    "WHERE datname = current_database()").fetchone() or ("",)
        assert collation == LOCALE
        (count,) = conn.execute("SELECT count(*) FROM dg_data").fetchone() or (0,)
        assert count == 200


def test_a_server_stopped_mid_run_loses_no_acknowledged_write(postgres: LocalPostgres,
                                                              tmp_path: Path) -> None:
    dsn = postgres.database("dg_crash")
    with WriterProcess(dsn, tmp_path, writers=2, rate=25, op_timeout=5) as writer:
        before = writer.wait_acknowledged(20, timeout=20)
        postgres.stop(signal.SIGQUIT)  # immediate shutdown: crash recovery at the next start
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                status = writer.status()
                if status and status.failed + status.indeterminate >= 5:
                    break
                time.sleep(0.1)
        finally:
            postgres.start()
        writer.wait_acknowledged(before.acknowledged + 20, timeout=30)
    history = writer.history()
    result = check_keys(history, keys_of(dsn))
    assert result.lost == () and result.ok, result.findings()
    assert result.failed + result.indeterminate >= 5
    errors = [w.error for w in history if w.status is not Status.ACKNOWLEDGED]
    assert any(e.startswith(f"{CONNECT}:") for e in errors), errors[:5]


def test_a_frozen_server_cannot_hold_a_writer(postgres: LocalPostgres, tmp_path: Path) -> None:
    """postgres and its backends stopped (SIGSTOP): the connections stay up, nothing answers;
    attempts in flight end at the client-side bound, new ones at connect_timeout."""
    dsn = postgres.database("dg_frozen")
    with WriterProcess(dsn, tmp_path, writers=2, rate=25, op_timeout=2) as writer:
        writer.wait_acknowledged(10, timeout=20)
        frozen = postgres.pids()  # each backend is a session of its own: signal every one
        for pid in frozen:
            os.kill(pid, signal.SIGSTOP)
        try:
            time.sleep(4)
        finally:
            for pid in frozen:
                os.kill(pid, signal.SIGCONT)
        before = writer.status()
        assert before is not None
        writer.wait_acknowledged(before.acknowledged + 10, timeout=20)
    history = writer.history()
    assert any("no answer within 2s" in w.error for w in history), {w.error for w in history}
    assert max(w.ended - w.started for w in history) < 2 + 3 + 1  # op bound, or connect_timeout
    assert check_keys(history, keys_of(dsn)).ok


def test_sigterm_stops_the_writer_cleanly(postgres: LocalPostgres, tmp_path: Path) -> None:
    dsn = postgres.database("dg_term")
    writer = WriterProcess(dsn, tmp_path, writers=2, rate=25)
    with writer:
        writer.wait_acknowledged(10, timeout=20)
        started = time.monotonic()
        assert writer.stop() == 0
        assert time.monotonic() - started < 5
    status = writer.status()
    assert status is not None and not status.running
    history = writer.history()
    assert status.attempted == len(history)
    assert status.acknowledged == sum(w.status is Status.ACKNOWLEDGED for w in history)
    assert writer.history_path.read_text().endswith("\n")
    assert check_keys(history, keys_of(dsn)).ok


def test_the_writer_ends_with_its_owner(postgres: LocalPostgres, tmp_path: Path) -> None:
    dsn = postgres.database("dg_owner")
    owner = subprocess.Popen(["sleep", "60"])
    writer = WriterProcess(dsn, tmp_path, writers=1, rate=10, owner_pid=owner.pid)
    try:
        writer.start()
        writer.wait_acknowledged(3, timeout=20)
        owner.kill()
        owner.wait(timeout=5)
        deadline = time.monotonic() + 10
        while writer.running and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not writer.running
    finally:
        writer.stop()
        owner.kill()
        owner.wait(timeout=5)
    assert writer.returncode == 0


def test_the_hosts_file_moves_the_writers(postgres: LocalPostgres, tmp_path: Path) -> None:
    dsn = postgres.database("dg_hosts")
    # nothing listens on 127.0.0.3: connections are refused until the list names the server
    with WriterProcess(dsn, tmp_path, writers=1, rate=20, hosts=["127.0.0.3"]) as writer:
        deadline = time.monotonic() + 10
        while (status := writer.status()) is None or status.failed < 3:
            assert time.monotonic() < deadline, "no failed writes to a wrong host"
            time.sleep(0.1)
        assert status.acknowledged == 0
        writer.set_hosts(["127.0.0.3", "127.0.0.1"])
        writer.wait_acknowledged(5, timeout=15)
    assert writer.status() is not None
    assert check_keys(writer.history(), keys_of(dsn)).ok


def test_the_checker_finds_a_deleted_acknowledged_row(postgres: LocalPostgres,
                                                      tmp_path: Path) -> None:
    dsn = postgres.database("dg_lost")
    with WriterProcess(dsn, tmp_path, writers=1, rate=25) as writer:
        writer.wait_acknowledged(10, timeout=20)
    history = writer.history()
    victim = next(w.key for w in history if w.status is Status.ACKNOWLEDGED)
    with psycopg.connect(dsn) as conn:
        conn.execute("DELETE FROM dg_writes WHERE key = %s", (victim,))
    result = check_keys(history, keys_of(dsn))
    assert result.lost == (victim,)
    assert not result.ok
    assert f"lost (acknowledged but absent): {victim}" in result.findings()[0]


@pytest.mark.parametrize(("phase", "sqlstate", "lost", "timed_out", "expected"), [
    (CONNECT, "08001", True, False, Status.FAILED),
    (STATEMENT, "25006", False, False, Status.FAILED),  # read-only transaction (a standby)
    (STATEMENT, None, True, False, Status.FAILED),  # lost before COMMIT: rolled back
    (STATEMENT, "57014", False, True, Status.FAILED),  # statement timeout
    (COMMIT, None, True, False, Status.INDETERMINATE),
    (COMMIT, "57P01", True, False, Status.INDETERMINATE),  # admin shutdown during COMMIT
    (COMMIT, None, False, True, Status.INDETERMINATE),
    (COMMIT, "40001", False, False, Status.FAILED),  # COMMIT refused: rolled back
])
def test_classification_follows_the_phase(phase: str, sqlstate: str | None, lost: bool,
                                          timed_out: bool, expected: Status) -> None:
    assert classify(phase, sqlstate, lost, timed_out) is expected
