"""The fault-injecting mirror: an HTTP server (the standard library's) on a real socket.

Run as a program, ``python -m distrogate.dnf.mirror --root DIR --bind ADDR --workdir DIR``,
inside the lab's network namespace (see :mod:`distrogate.dnf.mirrorctl`, which starts, drives
and stops it). It serves the repository below ``/m1/``, ``/m2/`` and ``/m3/`` (three mirrors
of one tree, each with a host name of its own in the guests' ``/etc/hosts``) and a
mirrorlist at ``/mirrorlist``. Each client (a guest's address) follows the
:class:`~distrogate.dnf.faults.Script` set for it over the control socket
(``--control``, default ``<workdir>/control.sock``; one JSON object per line: ``{"op": "set", "client": ADDR,
"script": {...}}``, ``{"op": "ping", "client": ADDR}``: the port and how many of that client's requests are
being served); a client without a script is served cleanly.

Every request is one JSON line in ``<workdir>/requests.jsonl``: time, client, mirror, path,
range, status, the fault applied (its action and the script's label) and the bytes sent, and
whether the client went away first. ``<workdir>/ready.json`` holds the port once it listens.
SIGTERM stops it, and so does the end of the process ``--owner-pid`` (the harness: a harness
killed outright leaves no mirror behind); the socket is closed when the process ends.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import select
import signal
import socket
import socketserver
import struct
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from distrogate.dnf.faults import MIRRORS, UNRESOLVABLE_HOST, Rule, Script, corrupt

log = logging.getLogger("distrogate.dnf.mirror")

SLOW_LIMIT_SECONDS = 300.0  # a slow transfer ends by itself after this long
HOST_NAMES = {m: f"{m}.mirror.lab" for m in MIRRORS}


def mirror_host(mirror: str) -> str:
    """The host name of mirror ``m1`` … in the guests' /etc/hosts."""
    return HOST_NAMES[mirror]


class State:
    """Scripts by client, the log file and the repository root (shared by the handlers)."""

    def __init__(self, root: Path, log_path: Path) -> None:
        self.root = root.resolve()
        self.scripts: dict[str, Script] = {}
        self.lock = threading.Lock()
        self.port = 0
        self.inflight: dict[str, int] = {}
        self._log = log_path.open("a", encoding="utf-8")

    def decide(self, client: str, mirror: str, path: str) -> tuple[Rule | None, str]:
        """The rule that takes this request, and the client's script label."""
        with self.lock:
            script = self.scripts.get(client)
            if script is None:
                return None, ""
            return script.decide(mirror, path), script.label

    def hosts(self, client: str) -> tuple[tuple[str, ...], str]:
        """The mirrorlist's host entries for ``client``, and its script's label."""
        with self.lock:
            script = self.scripts.get(client)
            return (script.hosts, script.label) if script is not None else (MIRRORS, "")

    def record(self, entry: dict[str, Any]) -> None:
        """Append one request to the log (flushed at once)."""
        line = json.dumps(entry, sort_keys=True)
        with self.lock:
            self._log.write(line + "\n")
            self._log.flush()


class Handler(BaseHTTPRequestHandler):
    """One request: a mirrorlist, or a file of a mirror under the client's script."""

    protocol_version = "HTTP/1.1"
    server_version = "distrogate-mirror/1"
    state: State  # set on the class by serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: every request goes to the JSON log instead."""

    def do_HEAD(self) -> None:
        """HEAD: the headers of a GET."""
        self._serve(head=True)

    def do_GET(self) -> None:
        """GET: a file (with Range), or the mirrorlist."""
        self._serve(head=False)

    def _serve(self, *, head: bool) -> None:
        client = self.client_address[0]
        path = self.path.split("?", 1)[0]
        entry: dict[str, Any] = {"t": round(time.time(), 3), "client": client,
                                 "method": self.command, "path": path, "mirror": "",
                                 "fault": "", "label": "", "range": self.headers.get("Range", ""),
                                 "sent": 0, "aborted": False}
        with self.state.lock:
            self.state.inflight[client] = self.state.inflight.get(client, 0) + 1
        try:
            if path == "/mirrorlist":
                hosts, entry["label"] = self.state.hosts(client)
                body = "".join(f"http://{h if h == UNRESOLVABLE_HOST else mirror_host(h)}:"
                               f"{self.state.port}/{'m1' if h == UNRESOLVABLE_HOST else h}/\n"
                               for h in hosts).encode()
                self._plain(200, body, head, entry)
                return
            parts = path.lstrip("/").split("/", 1)
            if len(parts) != 2 or parts[0] not in MIRRORS:
                self._plain(404, b"no such mirror\n", head, entry)
                return
            mirror, rest = parts
            entry["mirror"] = mirror
            file = (self.state.root / rest).resolve()
            if not file.is_relative_to(self.state.root) or not file.is_file():
                self._plain(404, b"not found\n", head, entry)
                return
            rule, label = self.state.decide(client, mirror, rest)
            entry["label"] = label
            body = file.read_bytes()
            start = _range_start(self.headers.get("Range", ""), len(body))
            if rule is not None:
                entry["fault"] = rule.action if rule.action != "status" else str(rule.status)
                if rule.action == "status":
                    self._plain(rule.status, f"fault: {rule.status}\n".encode(), head, entry)
                    return
            self._file(body, start, head, rule, entry)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            entry["aborted"] = True
            self.close_connection = True
        finally:
            self.state.record(entry)
            with self.state.lock:
                self.state.inflight[client] -= 1

    def _plain(self, status: int, body: bytes, head: bool, entry: dict[str, Any]) -> None:
        entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if not head:
            self.wfile.write(body)
            entry["sent"] = len(body)

    def _file(self, body: bytes, start: int, head: bool, rule: Rule | None,
              entry: dict[str, Any]) -> None:
        part = body[start:]
        status = 206 if start else 200
        entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(part)))
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        if head:
            return
        half = len(part) // 2
        action = rule.action if rule is not None else ""
        if action == "corrupt":
            part = corrupt(part)
        if action in ("reset", "truncate", "stall"):
            self._write(part[:half], entry)
            if action == "reset":
                self.wfile.flush()
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                self.connection.close()  # with linger 0: a RST, not a FIN
                self.close_connection = True
                return
            if action == "truncate":
                self.close_connection = True
                return
            self.wfile.flush()
            time.sleep(rule.seconds if rule is not None else 0)
            if _peer_gone(self.connection):
                entry["aborted"] = True
                self.close_connection = True
                return
            self._write(part[half:], entry)
            return
        if action == "slow" and rule is not None:
            self._slow(part, rule.rate, entry)
            return
        self._write(part, entry)

    def _write(self, data: bytes, entry: dict[str, Any]) -> None:
        self.wfile.write(data)
        entry["sent"] += len(data)

    def _slow(self, data: bytes, rate: int, entry: dict[str, Any]) -> None:
        """Send ``data`` at ``rate`` bytes per second (ten chunks a second)."""
        chunk = max(1, rate // 10)
        deadline = time.monotonic() + SLOW_LIMIT_SECONDS
        for offset in range(0, len(data), chunk):
            if time.monotonic() > deadline:
                self.close_connection = True
                return
            self._write(data[offset:offset + chunk], entry)
            self.wfile.flush()
            time.sleep(0.1)


def _peer_gone(connection: socket.socket) -> bool:
    """Whether the client closed its side (readable, and nothing to read)."""
    readable, _, _ = select.select([connection], [], [], 0)
    if not readable:
        return False
    try:
        return connection.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


def _range_start(header: str, size: int) -> int:
    """The first byte of a ``Range: bytes=N-`` request (0 without one, or past the end)."""
    if not header.startswith("bytes="):
        return 0
    first = header[len("bytes="):].split(",")[0].split("-")[0].strip()
    return int(first) if first.isdigit() and int(first) < size else 0


class Control(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """The control socket: one JSON request per line, one JSON answer per line."""

    daemon_threads = True
    state: State


class ControlHandler(socketserver.StreamRequestHandler):
    """Sets a client's script; answers ping."""

    server: Control

    def handle(self) -> None:
        """Answer each line."""
        for line in self.rfile:
            try:
                request = json.loads(line)
                op = request.get("op")
                if op == "set":
                    script = Script.from_json(request["script"])
                    with self.server.state.lock:
                        self.server.state.scripts[str(request["client"])] = script
                    answer: dict[str, Any] = {"ok": True}
                elif op == "ping":
                    with self.server.state.lock:
                        busy = self.server.state.inflight
                        inflight = (busy.get(str(request["client"]), 0)
                                    if request.get("client") else sum(busy.values()))
                    answer = {"ok": True, "port": self.server.state.port,
                              "inflight": inflight}
                else:
                    answer = {"ok": False, "error": f"unknown op {op!r}"}
            except (ValueError, KeyError, TypeError) as exc:
                answer = {"ok": False, "error": str(exc)}
            self.wfile.write((json.dumps(answer) + "\n").encode())
            self.wfile.flush()


class MirrorServer(ThreadingHTTPServer):
    """The HTTP server (IPv4 or IPv6 by the bind address)."""

    daemon_threads = True
    allow_reuse_address = True


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def serve(root: Path, bind: str, port: int, workdir: Path, owner: int = 0,
          control_path: Path | None = None) -> None:
    """Serve until SIGTERM, or until the process ``owner`` (when given) is gone: a mirror
    whose harness was killed outright ends by itself (see the module)."""
    state = State(root, workdir / "requests.jsonl")
    Handler.state = state
    MirrorServer.address_family = socket.AF_INET6 if ":" in bind else socket.AF_INET
    server = MirrorServer((bind, port), Handler)
    server.timeout = 1
    state.port = server.server_address[1]
    control_path = control_path or workdir / "control.sock"
    control_path.unlink(missing_ok=True)
    control = Control(str(control_path), ControlHandler)
    control.state = state
    stop = threading.Event()

    def on_term(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    threads = [threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.2},
                                daemon=True) for s in (server, control)]
    for thread in threads:
        thread.start()
    ready = workdir / "ready.json"
    tmp = workdir / ".ready.json"
    tmp.write_text(json.dumps({"port": state.port, "pid": os.getpid(), "bind": bind}))
    os.replace(tmp, ready)
    try:
        while not stop.wait(0.5):
            if owner and not _alive(owner):
                log.info("owner %d is gone: stopping", owner)
                break
    finally:
        for s in (server, control):
            s.shutdown()
            s.server_close()
        with contextlib.suppress(OSError):
            control_path.unlink()


def main() -> None:
    """Command line (see the module)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--bind", required=True)
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--workdir", type=Path, required=True)
    parser.add_argument("--owner-pid", type=int, default=0,
                        help="stop when this process is gone")
    parser.add_argument("--control", type=Path, default=None,
                        help="the control socket (default: WORKDIR/control.sock; a socket "
                             "path must be short)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    serve(args.root, args.bind, args.port, args.workdir, args.owner_pid, args.control)


if __name__ == "__main__":
    main()
