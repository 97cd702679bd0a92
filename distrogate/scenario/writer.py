"""The client load: writers that INSERT unique keys into the cluster through a real PostgreSQL
driver (psycopg 3 over libpq) and record every attempt in the history
(:mod:`distrogate.scenario.history`).

Run as a process of its own, inside the lab's network namespace (the cluster network is only
reachable there)::

    python -m distrogate.scenario.writer --dsn DSN --writers N --rate R --history FILE \\
        --status FILE [--hosts FILE] [--owner-pid PID] [--op-timeout S] [--key-start K]

The runner uses :class:`WriterProcess`, which builds that command line, puts it through the
lab's ``argv_wrap`` (``ip netns exec …``) and :func:`distrogate.proc.spawn`, and always stops
it.

**Following the primary.** The DSN lists every node (libpq multi-host: ``host=a,b,c``) and the
writer adds, unless the DSN says otherwise, ``target_session_attrs=read-write`` and
``connect_timeout=3``: a new connection lands on whichever node accepts writes. A writer
drops its connection after any error and reconnects for its next write, so a switchover costs
it the writes that fail while no node accepts writes. The node set changes during a scenario:
the runner writes the current address list to the hosts file (``--hosts``, JSON
``{"hosts": ["fd00::11", …]}``, replaced atomically: :meth:`WriterProcess.set_hosts`); the
writer reads it about once a second, and every writer reconnects to the new list after its
current write. The hosts file's list overrides the DSN's ``host``.

**One write.** Each attempt takes the next key (unique across writers and across runs
appending to one history: ``--key-start``, by default one more than the history's highest
key), and runs ``BEGIN; INSERT …; COMMIT`` with a server-side ``statement_timeout`` and a
client-side bound (``--op-timeout``): a watchdog shuts the connection's socket down when an
attempt outlives it, so a partitioned or frozen server cannot hold a writer. The attempt is
classified by the phase it reached (:func:`classify`): an error while connecting or before
COMMIT was sent is ``failed`` (the server rolls back a transaction whose client is gone); a
COMMIT answered with an error is ``failed``, a COMMIT whose answer never came (connection
lost, shut down, timed out) is ``indeterminate``; COMMIT returning is ``acknowledged``.

Every record is appended to the history and flushed as the attempt ends. About once a second
the live counters go to the status file (JSON, replaced atomically: :class:`WriterStatus`).
SIGTERM (or SIGINT) stops the writers after their current attempt (each bounded), writes the
final status and exits 0; so does the death of ``--owner-pid``. ``--read-keys`` instead prints
every key of ``dg_writes`` (read without indexes), one a line, and exits: :func:`read_keys`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from distrogate import paths, proc
from distrogate.errors import CommandError, InfraError
from distrogate.scenario import sql
from distrogate.scenario.history import Status, Write, read_history

log = logging.getLogger(__name__)

CONNECT_TIMEOUT = 3  # seconds, per host (libpq connect_timeout)
OP_TIMEOUT = 10.0  # seconds an attempt may take after connecting
STATEMENT_TIMEOUT_MS = 5000
STATUS_INTERVAL = 1.0
START_TIMEOUT = 20.0
RETRY_PAUSE = 0.2  # seconds a writer waits after a failed connection before its next attempt
DEFAULTS = {
    "target_session_attrs": "read-write",
    "connect_timeout": str(CONNECT_TIMEOUT),
    "application_name": "distrogate-writer",
    "keepalives": "1",
    "keepalives_idle": "5",
    "keepalives_interval": "2",
    "keepalives_count": "2",
    "tcp_user_timeout": "5000",
}

# -- classification ----------------------------------------------------------------------------

CONNECT, STATEMENT, COMMIT = "connect", "statement", "commit"


def classify(phase: str, sqlstate: str | None, connection_lost: bool, timed_out: bool) -> Status:
    """What an attempt that raised in ``phase`` (``connect``, ``statement`` — BEGIN or the
    INSERT — or ``commit``) means for its write (see the module and
    :class:`~distrogate.scenario.history.Status`).

    Before COMMIT was sent nothing can have committed: ``failed``. At COMMIT, an error the
    server sent on a live connection (a rolled-back transaction) is ``failed``; a lost
    connection, an administrator's shutdown (SQLSTATE class 57) or a connection error (class
    08) or a client-side timeout is ``indeterminate``.
    """
    if phase != COMMIT:
        return Status.FAILED
    if timed_out or connection_lost or sqlstate is None or sqlstate[:2] in ("08", "57"):
        return Status.INDETERMINATE
    return Status.FAILED


# -- the writer process ------------------------------------------------------------------------


def _write_json(path: Path, doc: dict[str, Any]) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc))
    os.replace(tmp, path)


class _Shared:
    """What the writers share: the key counter, the history file and the counters."""

    def __init__(self, history: IO[str], key_start: int) -> None:
        self.lock = threading.Lock()
        self.history = history
        self.next_key = key_start
        self.counts = {s: 0 for s in Status}
        self.last_ack: float | None = None
        self.last_error = ""
        self.hosts: list[str] = []
        self.generation = 0

    def take_key(self) -> int:
        with self.lock:
            key, self.next_key = self.next_key, self.next_key + 1
            return key

    def record(self, write: Write) -> None:
        with self.lock:
            self.history.write(write.to_json() + "\n")
            self.history.flush()
            self.counts[write.status] += 1
            if write.status is Status.ACKNOWLEDGED:
                self.last_ack = write.ended
            else:
                self.last_error = write.error

    def status(self, running: bool, writers: int) -> dict[str, Any]:
        with self.lock:
            return {"pid": os.getpid(), "running": running, "writers": writers,
                    "attempted": sum(self.counts.values()),
                    **{str(s): n for s, n in self.counts.items()},
                    "last_ack": self.last_ack, "last_error": self.last_error,
                    "hosts": list(self.hosts), "next_key": self.next_key,
                    "updated": time.monotonic()}


class _Writer(threading.Thread):
    """One writer: ``rate`` attempts per second on a connection of its own."""

    def __init__(self, index: int, conninfo: dict[str, str], rate: float, op_timeout: float,
                 shared: _Shared, stop: threading.Event) -> None:
        super().__init__(name=f"writer-{index}", daemon=True)
        self.index = index
        self.conninfo = conninfo
        self.interval = 1.0 / rate
        self.op_timeout = op_timeout
        self.shared = shared
        self.stop = stop
        self.conn: Any = None
        self.conn_generation = -1
        # the watchdog's view: the connection of the attempt in flight and its deadline
        self.guard = threading.Lock()
        self.deadline: float | None = None
        self.fired = False

    def run(self) -> None:
        next_at = time.monotonic()
        try:
            while not self.stop.is_set():
                delay = next_at - time.monotonic()
                if delay > 0 and self.stop.wait(delay):
                    break
                # keep the pace, but no burst to make up for a stall
                next_at = max(next_at + self.interval, time.monotonic() - self.interval)
                if not self.attempt():
                    self.stop.wait(RETRY_PAUSE)
        finally:
            self.drop()

    def connect(self) -> Any:
        import psycopg
        from psycopg.conninfo import make_conninfo

        with self.shared.lock:
            hosts, generation = list(self.shared.hosts), self.shared.generation
        info = dict(self.conninfo)
        if hosts:
            info["host"] = ",".join(hosts)
        conn = psycopg.connect(make_conninfo("", **info))  # bounded: connect_timeout per host
        self.conn_generation = generation
        return conn

    def drop(self) -> None:
        with self.guard:
            conn, self.conn = self.conn, None
            self.deadline = None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def expire(self, now: float) -> None:
        """Called by the watchdog: shut the socket down if the attempt outlived its bound."""
        with self.guard:
            if self.deadline is None or now < self.deadline or self.conn is None or self.fired:
                return
            self.fired = True
            with contextlib.suppress(Exception):
                fd = os.dup(self.conn.fileno())
                with socket.socket(fileno=fd) as sock:
                    sock.shutdown(socket.SHUT_RDWR)
            log.warning("writer %d: an attempt outlived %gs: connection shut down",
                        self.index, self.op_timeout)

    def attempt(self) -> bool:
        """One write, recorded; whether a connection was there to try it on."""
        import psycopg

        key = self.shared.take_key()
        value = sql.value_for(key)
        started = time.monotonic()
        phase = CONNECT
        status, error = Status.ACKNOWLEDGED, ""
        try:
            if self.conn is not None and (self.conn.closed
                                          or self.conn_generation != self.shared.generation):
                self.drop()
            if self.conn is None:
                conn = self.connect()
                with self.guard:
                    self.conn = conn
            with self.guard:
                self.deadline, self.fired = time.monotonic() + self.op_timeout, False
            phase = STATEMENT
            self.conn.execute(sql.INSERT_WRITE, (key, self.index, value))
            phase = COMMIT
            self.conn.commit()
        except Exception as exc:  # any failure is recorded: a writer thread never dies of one
            lost = self.conn is None or self.conn.closed or bool(self.conn.broken)
            sqlstate = exc.sqlstate if isinstance(exc, psycopg.Error) else None
            status = classify(phase, sqlstate, lost, self.fired)
            error = f"{phase}: {' '.join(str(exc).split())[:300]}"
            if self.fired:
                error += f" (no answer within {self.op_timeout:g}s)"
            self.drop()
        finally:
            with self.guard:
                self.deadline = None
        self.shared.record(Write(writer=self.index, key=key, value=value, started=started,
                                 ended=time.monotonic(), status=status, error=error))
        return phase != CONNECT


def conninfo(dsn: str) -> dict[str, str]:
    """The connection parameters of ``dsn`` with the writer's defaults (see the module) for
    what it does not say, and the statement timeout."""
    from psycopg.conninfo import conninfo_to_dict

    info = {k: str(v) for k, v in conninfo_to_dict(dsn).items() if v is not None}
    for key, value in DEFAULTS.items():
        info.setdefault(key, value)
    options = info.get("options", "")
    if "statement_timeout" not in options:
        info["options"] = f"{options} -c statement_timeout={STATEMENT_TIMEOUT_MS}".strip()
    return info


def _read_hosts(path: Path | None, current: list[str]) -> list[str]:
    if path is None:
        return current
    try:
        doc = json.loads(path.read_text())
        hosts = [str(h) for h in doc["hosts"]]
    except FileNotFoundError:
        return current
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: not a hosts file (%s): keeping %s", path, exc, current)
        return current
    return hosts


def _last_key(history: Path) -> int:
    return max((w.key for w in read_history(history)), default=0)


def run(dsn: str, writers: int, rate: float, history: Path, status: Path,
        hosts: Path | None = None, owner: int = 0, op_timeout: float = OP_TIMEOUT,
        key_start: int | None = None) -> int:
    """Run the load until SIGTERM/SIGINT or the owner's death (see the module); returns the
    exit status."""
    info = conninfo(dsn)
    start = key_start if key_start is not None else _last_key(history) + 1
    stop = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with history.open("a", encoding="utf-8") as handle:
        shared = _Shared(handle, start)
        shared.hosts = _read_hosts(hosts, [])
        threads = [_Writer(i, info, rate, op_timeout, shared, stop) for i in range(writers)]
        _write_json(status, shared.status(True, writers))
        log.info("%d writer(s) at %g/s each from key %d", writers, rate, start)
        for thread in threads:
            thread.start()
        next_status = time.monotonic() + STATUS_INTERVAL
        while not stop.wait(0.1):
            now = time.monotonic()
            for thread in threads:
                thread.expire(now)
            if now < next_status:
                continue
            next_status = now + STATUS_INTERVAL
            if owner and not proc.pid_alive(owner):
                log.info("owner %d is gone: stopping", owner)
                stop.set()
                break
            new = _read_hosts(hosts, shared.hosts)
            if new != shared.hosts:
                with shared.lock:
                    shared.hosts, shared.generation = new, shared.generation + 1
                log.info("hosts now %s", ",".join(new))
            _write_json(status, shared.status(True, writers))
        # every attempt is bounded: connecting by connect_timeout per host, the rest by the
        # watchdog, which keeps watching while the writers finish
        hosts_count = len(shared.hosts) or info.get("host", "").count(",") + 1
        deadline = time.monotonic() + op_timeout + CONNECT_TIMEOUT * hosts_count + 2
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            for thread in threads:
                thread.expire(time.monotonic())
                thread.join(0.05)
        stuck = [t.name for t in threads if t.is_alive()]
        if stuck:
            log.error("%s did not stop in time", ", ".join(stuck))
        _write_json(status, shared.status(False, writers))
    counts = shared.status(False, writers)
    log.info("stopped: %d attempted, %d acknowledged, %d failed, %d indeterminate",
             counts["attempted"], counts["acknowledged"], counts["failed"],
             counts["indeterminate"])
    return 1 if stuck else 0


def print_keys(dsn: str) -> int:
    """Print every key of ``dg_writes``, read from the heap (see :data:`sql.READ_KEYS`)."""
    import psycopg
    from psycopg.conninfo import make_conninfo

    info = conninfo(dsn)
    info["options"] = f"{info.get('options', '')} {sql.SEQSCAN_OPTIONS}".strip()
    info.pop("target_session_attrs", None)
    with psycopg.connect(make_conninfo("", **info)) as conn, conn.cursor() as cursor:
        cursor.execute(sql.READ_KEYS)
        out = sys.stdout
        for (key,) in cursor:
            out.write(f"{key}\n")
        out.flush()
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Command line (see the module)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dsn", required=True, help="libpq connection string")
    parser.add_argument("--writers", type=int, default=2)
    parser.add_argument("--rate", type=float, default=20.0, help="writes/s per writer")
    parser.add_argument("--history", type=Path)
    parser.add_argument("--status", type=Path)
    parser.add_argument("--hosts", type=Path, default=None,
                        help='JSON {"hosts": [...]} overriding the DSN\'s hosts, re-read')
    parser.add_argument("--owner-pid", type=int, default=0, help="stop when it is gone")
    parser.add_argument("--op-timeout", type=float, default=OP_TIMEOUT)
    parser.add_argument("--key-start", type=int, default=None)
    parser.add_argument("--read-keys", action="store_true",
                        help="print every key of dg_writes and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(threadName)s %(message)s")
    if args.read_keys:
        return print_keys(args.dsn)
    if args.history is None or args.status is None:
        parser.error("--history and --status are required")
    if args.writers < 1 or not 0 < args.rate <= 10000 or args.op_timeout <= 0:
        parser.error("--writers must be >= 1, --rate in (0, 10000], --op-timeout > 0")
    return run(args.dsn, args.writers, args.rate, args.history, args.status, args.hosts,
               args.owner_pid, args.op_timeout, args.key_start)


# -- the runner's side -------------------------------------------------------------------------


@dataclass(frozen=True)
class WriterStatus:
    """The writer's live counters (from its status file)."""

    pid: int
    running: bool
    writers: int
    attempted: int
    acknowledged: int
    failed: int
    indeterminate: int
    last_ack: float | None
    last_error: str
    hosts: tuple[str, ...]
    updated: float

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> WriterStatus:
        """The status from the file's JSON."""
        return cls(pid=int(doc["pid"]), running=bool(doc["running"]),
                   writers=int(doc["writers"]), attempted=int(doc["attempted"]),
                   acknowledged=int(doc["acknowledged"]), failed=int(doc["failed"]),
                   indeterminate=int(doc["indeterminate"]),
                   last_ack=None if doc["last_ack"] is None else float(doc["last_ack"]),
                   last_error=str(doc["last_error"]), hosts=tuple(doc["hosts"]),
                   updated=float(doc["updated"]))


class WriterProcess:
    """The client load as a subprocess the runner owns (see the module).

    ``dsn`` names the database (and the first node list); files go to ``workdir``
    (``history.jsonl``, ``status.json``, ``hosts.json``, ``writer.log``). ``argv_wrap`` runs
    it inside the lab's namespace. Leaving the ``with`` block always stops it: SIGTERM, then
    SIGKILL after :attr:`stop_grace` seconds.
    """

    def __init__(self, dsn: str, workdir: Path, *, writers: int = 2, rate: float = 20.0,
                 hosts: Sequence[str] | None = None, op_timeout: float = OP_TIMEOUT,
                 key_start: int | None = None, owner_pid: int | None = None,
                 argv_wrap: Callable[[list[str]], list[str]] | None = None) -> None:
        self.dsn = dsn
        self.workdir = workdir
        self.writers = writers
        self.rate = rate
        self.op_timeout = op_timeout
        self.key_start = key_start
        self.owner_pid = os.getpid() if owner_pid is None else owner_pid
        self._initial_hosts = list(hosts) if hosts is not None else None
        self._wrap = argv_wrap or (lambda argv: argv)
        self._process: subprocess.Popen[bytes] | None = None
        self.returncode: int | None = None

    @property
    def history_path(self) -> Path:
        """The history (JSON lines, see :mod:`distrogate.scenario.history`)."""
        return self.workdir / "history.jsonl"

    @property
    def status_path(self) -> Path:
        """The live counters (JSON, replaced about once a second)."""
        return self.workdir / "status.json"

    @property
    def hosts_path(self) -> Path:
        """The node addresses the writers connect to (see :meth:`set_hosts`)."""
        return self.workdir / "hosts.json"

    @property
    def log_path(self) -> Path:
        """The writer's log."""
        return self.workdir / "writer.log"

    @property
    def stop_grace(self) -> float:
        """Seconds from SIGTERM to SIGKILL: the longest an attempt can take, and a margin."""
        hosts = len(self._initial_hosts or []) or 3
        return self.op_timeout + CONNECT_TIMEOUT * max(3, hosts) + 5.0

    def __enter__(self) -> WriterProcess:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def argv(self) -> list[str]:
        """The writer's command line (before ``argv_wrap``)."""
        argv = [sys.executable, "-m", "distrogate.scenario.writer", "--dsn", self.dsn,
                "--writers", str(self.writers), "--rate", f"{self.rate:g}",
                "--history", str(self.history_path), "--status", str(self.status_path),
                "--hosts", str(self.hosts_path), "--owner-pid", str(self.owner_pid),
                "--op-timeout", f"{self.op_timeout:g}"]
        if self.key_start is not None:
            argv += ["--key-start", str(self.key_start)]
        return argv

    def start(self) -> None:
        """Start the writers; returns once the process wrote its first status (bounded by
        :data:`START_TIMEOUT`)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.status_path.unlink(missing_ok=True)
        if self._initial_hosts is not None:
            self.set_hosts(self._initial_hosts)
        self._process = proc.spawn(self._wrap(self.argv()), log_file=self.log_path,
                                   env={"PYTHONPATH": str(paths.repo_root())})
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if self.status() is not None:
                    log.info("writers running (pid %d): %d at %g/s", self._process.pid,
                             self.writers, self.rate)
                    return
                if self._process.poll() is not None:
                    said = self.log_path.read_text(errors="replace").strip()[-300:]
                    raise InfraError(f"the writer exited at start: {' '.join(said.split())}")
                time.sleep(0.05)
            raise InfraError(f"the writer did not start within {START_TIMEOUT:g}s")
        except BaseException:
            self.stop()
            raise

    def set_hosts(self, hosts: Sequence[str]) -> None:
        """From now on, connect to ``hosts`` (each writer reconnects after its current
        attempt; the change is seen within about a second)."""
        if not hosts:
            raise ValueError("the writers need at least one host")
        self.workdir.mkdir(parents=True, exist_ok=True)
        _write_json(self.hosts_path, {"hosts": list(hosts)})

    def status(self) -> WriterStatus | None:
        """The latest counters, or None before the first status."""
        try:
            return WriterStatus.from_json(json.loads(self.status_path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def wait_acknowledged(self, count: int, timeout: float) -> WriterStatus:
        """Wait until at least ``count`` writes were acknowledged in all; raises
        :class:`InfraError` after ``timeout`` seconds or if the writer exited."""
        deadline = time.monotonic() + timeout
        while True:
            status = self.status()
            if status is not None and status.acknowledged >= count:
                return status
            if self._process is None or self._process.poll() is not None:
                raise InfraError("the writer is not running")
            if time.monotonic() >= deadline:
                got = status.acknowledged if status else 0
                error = f" (last error: {status.last_error})" if status and status.last_error \
                    else ""
                raise InfraError(f"the writers got {got} of {count} writes acknowledged "
                                 f"within {timeout:g}s{error}")
            time.sleep(0.1)

    @property
    def running(self) -> bool:
        """Whether the process runs."""
        return self._process is not None and self._process.poll() is None

    def stop(self) -> int | None:
        """Stop the writers (SIGTERM; SIGKILL after :attr:`stop_grace`) and reap the
        process; returns its exit status (None if it was not running)."""
        if self._process is None:
            return self.returncode
        process, self._process = self._process, None
        proc.stop_spawned(process, "the writer", grace=self.stop_grace)
        self.returncode = process.poll()
        if self.returncode not in (0, None):
            log.warning("the writer exited %s (log: %s)", self.returncode, self.log_path)
        return self.returncode

    def history(self) -> tuple[Write, ...]:
        """The history so far (complete once stopped)."""
        return read_history(self.history_path)


def read_keys(dsn: str, *, argv_wrap: Callable[[list[str]], list[str]] | None = None,
              timeout: float = 60.0) -> list[int]:
    """Every key of ``dg_writes`` on the node ``dsn`` names, read from the heap (duplicates
    kept), through ``python -m distrogate.scenario.writer --read-keys`` (inside the lab with
    ``argv_wrap``)."""
    wrap = argv_wrap or (lambda argv: argv)
    argv = wrap([sys.executable, "-m", "distrogate.scenario.writer", "--dsn", dsn,
                 "--read-keys"])
    done = proc.run(argv, timeout=timeout, env={"PYTHONPATH": str(paths.repo_root())})
    try:
        return [int(line) for line in done.text.split()]
    except ValueError as exc:
        raise CommandError(f"`{proc.quote(argv)}` printed something that is not a key: "
                           f"{exc}") from None


if __name__ == "__main__":
    sys.exit(main())
