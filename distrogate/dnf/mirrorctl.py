"""Starting, driving and stopping the fault-injecting mirror (:mod:`distrogate.dnf.mirror`).

:class:`Mirror` runs the server as a subprocess (through :mod:`distrogate.proc`), inside the
lab's network namespace when given ``argv_wrap`` (``Lab.host_argv``), bound to ``address``;
``set_script`` sends a client's script over the control socket, ``requests`` reads the JSON
request log. Leaving the ``with`` block stops it (SIGTERM, then SIGKILL, bounded) and checks
that its port is free, also when the body raised or the run was interrupted.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from distrogate import paths, proc
from distrogate.dnf.faults import Script
from distrogate.errors import InfraError

log = logging.getLogger(__name__)

START_TIMEOUT = 20.0
CONTROL_TIMEOUT = 10.0
SETTLE_TIMEOUT = 8.0


class Mirror:
    """The mirror process (see the module)."""

    def __init__(self, root: Path, address: str, workdir: Path, *,
                 argv_wrap: Callable[[list[str]], list[str]] | None = None) -> None:
        self.root = root
        self.address = address
        self.workdir = workdir
        self.port = 0
        self._wrap = argv_wrap or (lambda argv: argv)
        self._process: subprocess.Popen[bytes] | None = None
        self._socket_dir: Path | None = None

    @property
    def log_path(self) -> Path:
        """The JSON lines log of every request and fault."""
        return self.workdir / "requests.jsonl"

    @property
    def control_path(self) -> Path:
        """The control socket: in a short folder of its own under the system's temporary
        folder (a Unix socket's path is limited to 107 bytes; the workdir may be deeper)."""
        if self._socket_dir is None:
            self._socket_dir = Path(tempfile.mkdtemp(prefix="dg-mirror-"))
        return self._socket_dir / "control.sock"

    def __enter__(self) -> Mirror:
        self.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()

    def start(self) -> None:
        """Start the server; returns once it listens (bounded by :data:`START_TIMEOUT`)."""
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "ready.json"
        ready.unlink(missing_ok=True)
        argv = self._wrap([sys.executable, "-m", "distrogate.dnf.mirror", "--root",
                           str(self.root), "--bind", self.address, "--workdir",
                           str(self.workdir), "--owner-pid", str(os.getpid()),
                           "--control", str(self.control_path)])
        self._process = proc.spawn(argv, log_file=self.workdir / "mirror.log",
                                   env={"PYTHONPATH": str(paths.repo_root())})
        deadline = time.monotonic() + START_TIMEOUT
        try:
            while time.monotonic() < deadline:
                if ready.exists():
                    self.port = int(json.loads(ready.read_text())["port"])
                    log.info("mirror listening on %s port %d (pid %d)", self.address,
                             self.port, self._process.pid)
                    return
                if self._process.poll() is not None:
                    said = (self.workdir / "mirror.log").read_text(errors="replace")
                    raise InfraError(f"the DNF mirror exited at start: {said.strip()[-300:]}")
                time.sleep(0.05)
            raise InfraError(f"the DNF mirror did not listen within {START_TIMEOUT:g}s")
        except BaseException:
            self.stop()
            raise

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(CONTROL_TIMEOUT)
            try:
                sock.connect(str(self.control_path))
                sock.sendall((json.dumps(request) + "\n").encode())
                data = b""
                while not data.endswith(b"\n"):
                    chunk = sock.recv(65536)
                    if not chunk:
                        break
                    data += chunk
            except OSError as exc:
                raise InfraError(f"the DNF mirror's control socket: {exc}") from None
        answer: dict[str, Any] = json.loads(data or b"{}")
        if not answer.get("ok"):
            raise InfraError(f"the DNF mirror refused {request.get('op')}: "
                             f"{answer.get('error', 'no answer')}")
        return answer

    def set_script(self, client: str, script: Script) -> None:
        """From now on, requests from ``client`` follow ``script`` (its counts from zero)."""
        self._call({"op": "set", "client": client, "script": script.to_json()})

    def settle(self, client: str | None = None, timeout: float = SETTLE_TIMEOUT) -> None:
        """Wait (at most ``timeout`` seconds) until no request (of ``client``) is being
        served, so that the log holds every request made so far (a stalled one a client gave
        up on ends when the mirror notices)."""
        deadline = time.monotonic() + timeout
        ask = {"op": "ping", "client": client or ""}
        while self._call(ask).get("inflight", 0) and time.monotonic() < deadline:
            time.sleep(0.05)

    def requests(self, client: str | None = None, label: str | None = None,
                 since: float = 0.0) -> list[dict[str, Any]]:
        """The logged requests (of ``client``, under the script ``label``, from time
        ``since``), in order, once the mirror has settled (:meth:`settle`)."""
        self.settle(client)
        if not self.log_path.exists():
            return []
        found = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if ((client is None or entry.get("client") == client)
                    and (label is None or entry.get("label") == label)
                    and entry.get("t", 0) >= since):
                found.append(entry)
        return found

    def stop(self) -> None:
        """Stop the server and make sure its port is free (see the module)."""
        if self._process is None:
            return
        process, self._process = self._process, None
        proc.stop_spawned(process, "the DNF mirror")
        if self.port and not port_free(self._wrap, self.address, self.port):
            log.error("the DNF mirror's port %s:%d is still taken after it stopped",
                      self.address, self.port)
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None


def port_free(wrap: Callable[[list[str]], list[str]], address: str, port: int) -> bool:
    """Whether nothing listens on ``address:port`` (asked with ``ss`` where the mirror ran)."""
    try:
        done = proc.run(wrap(["ss", "-Htln", f"sport = :{port}"]), timeout=15, check=False)
    except InfraError:
        return True
    return address not in done.text and not done.text.strip()


def requests_per_path(entries: Sequence[dict[str, Any]]) -> dict[str, int]:
    """How many requests each path got (mirror prefix kept: ``/m1/repodata/repomd.xml``)."""
    return dict(sorted(Counter(str(e.get("path", "")) for e in entries).items()))
