"""The fault-injecting mirror as a real server on loopback: each fault as a client sees it,
the request log, and the port freed when it stops."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from distrogate.dnf.faults import Rule, Script, scenario
from distrogate.dnf.mirrorctl import Mirror, port_free, requests_per_path
from distrogate.errors import InfraError

BODY = bytes(range(256)) * 40  # 10 KiB


@pytest.fixture
def mirror(tmp_path: Path) -> Iterator[Mirror]:
    root = tmp_path / "repo"
    (root / "repodata").mkdir(parents=True)
    (root / "packages").mkdir()
    (root / "repodata" / "repomd.xml").write_bytes(BODY)
    (root / "packages" / "a.rpm").write_bytes(BODY)
    deep = tmp_path / ("deep-" * 20) / "work"  # too deep for a Unix socket's path
    with Mirror(root, "127.0.0.1", deep) as running:
        yield running


def get(mirror: Mirror, path: str, headers: dict[str, str] | None = None,
        timeout: float = 10) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", mirror.port, timeout=timeout)
    try:
        conn.request("GET", path, headers=headers or {})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_a_client_without_a_script_is_served_and_logged(mirror: Mirror) -> None:
    assert get(mirror, "/m2/repodata/repomd.xml") == (200, BODY)
    status, text = get(mirror, "/mirrorlist")
    assert status == 200
    assert text.decode().splitlines() == [f"http://{m}.mirror.lab:{mirror.port}/{m}/"
                                          for m in ("m1", "m2", "m3")]
    assert get(mirror, "/m9/x")[0] == 404 and get(mirror, "/m1/../../etc/passwd")[0] == 404
    entries = [json.loads(line) for line in mirror.log_path.read_text().splitlines()]
    assert entries[0]["path"] == "/m2/repodata/repomd.xml" and entries[0]["sent"] == len(BODY)
    assert requests_per_path(mirror.requests("127.0.0.1"))["/mirrorlist"] == 1


def test_503_for_the_first_n_requests_then_the_file(mirror: Mirror) -> None:
    mirror.set_script("127.0.0.1", Script("t", (Rule("status", "repodata/repomd.xml",
                                                     count=2, status=503),)))
    codes = [get(mirror, f"/m{i}/repodata/repomd.xml")[0] for i in (1, 2, 3)]
    assert codes == [503, 503, 200]
    faults = [e["fault"] for e in mirror.requests(label="t")]
    assert faults == ["503", "503", ""]


def test_reset_mid_body_is_a_connection_reset(mirror: Mirror) -> None:
    mirror.set_script("127.0.0.1", Script("t", (Rule("reset", "*.rpm", count=1),)))
    with pytest.raises((ConnectionResetError, http.client.IncompleteRead)):
        get(mirror, "/m1/packages/a.rpm")
    assert get(mirror, "/m1/packages/a.rpm") == (200, BODY)


def test_truncated_body_is_short_of_its_length(mirror: Mirror) -> None:
    mirror.set_script("127.0.0.1", Script("t", (Rule("truncate", "*.rpm", count=1),)))
    with pytest.raises(http.client.IncompleteRead) as caught:
        get(mirror, "/m1/packages/a.rpm")
    assert len(caught.value.partial) == len(BODY) // 2


def test_corrupt_body_has_its_length_and_other_bytes(mirror: Mirror) -> None:
    mirror.set_script("127.0.0.1", scenario("corrupt_body", "repomd"))
    status, body = get(mirror, "/m1/repodata/repomd.xml")
    assert status == 200 and len(body) == len(BODY) and body != BODY


def test_stall_sends_nothing_for_its_seconds(mirror: Mirror) -> None:
    mirror.set_script("127.0.0.1", Script("t", (Rule("stall", "*.rpm", count=1,
                                                     seconds=1.5),)))
    started = time.monotonic()
    assert get(mirror, "/m1/packages/a.rpm") == (200, BODY)
    assert time.monotonic() - started >= 1.4


def test_a_stalled_client_giving_up_is_logged_as_aborted(mirror: Mirror) -> None:
    mirror.set_script("127.0.0.1", Script("t", (Rule("stall", "*.rpm", count=1,
                                                     seconds=2),)))
    with pytest.raises(TimeoutError):
        get(mirror, "/m1/packages/a.rpm", timeout=0.5)
    time.sleep(2.5)
    entry = mirror.requests(label="t")[0]
    assert entry["fault"] == "stall" and entry["aborted"] and entry["sent"] == len(BODY) // 2


def test_slow_rate_sends_at_the_rate(mirror: Mirror) -> None:
    mirror.set_script("127.0.0.1", Script("t", (Rule("slow", "*.rpm", rate=5000),)))
    started = time.monotonic()
    assert get(mirror, "/m1/packages/a.rpm") == (200, BODY)
    took = time.monotonic() - started
    assert 1.5 <= took <= 4  # 10 KiB at 5000 B/s


def test_a_range_request_gets_the_rest(mirror: Mirror) -> None:
    status, body = get(mirror, "/m1/packages/a.rpm", {"Range": "bytes=1000-"})
    assert status == 206 and body == BODY[1000:]


def test_unresolvable_mirror_leads_the_mirrorlist(mirror: Mirror) -> None:
    mirror.set_script("127.0.0.1", scenario("unresolvable_mirror", "mirrorlist"))
    first = get(mirror, "/mirrorlist")[1].decode().splitlines()[0]
    assert first.startswith("http://gone.mirror.invalid:")


def test_stopping_frees_the_port(tmp_path: Path) -> None:
    root = tmp_path / "r"
    root.mkdir()
    running = Mirror(root, "127.0.0.1", tmp_path / "w")
    with running:
        port = running.port
        socket_path = running.control_path
        assert socket_path.exists()
        assert not port_free(lambda argv: argv, "127.0.0.1", port)
    assert port_free(lambda argv: argv, "127.0.0.1", port)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    assert not socket_path.exists() and not socket_path.parent.exists()


def test_a_bad_script_is_refused(mirror: Mirror) -> None:
    with pytest.raises(InfraError, match="unknown fault action"):
        mirror._call({"op": "set", "client": "x", "script": {"rules": [
            {"action": "explode", "pattern": "*"}]}})


def test_a_mirror_whose_owner_is_gone_stops_by_itself(tmp_path: Path) -> None:
    import subprocess
    import sys

    from distrogate import paths, proc

    owner = subprocess.Popen(["sleep", "30"])
    (tmp_path / "r").mkdir()
    server = proc.spawn([sys.executable, "-m", "distrogate.dnf.mirror", "--root",
                         str(tmp_path / "r"), "--bind", "127.0.0.1", "--workdir",
                         str(tmp_path), "--owner-pid", str(owner.pid)],
                        log_file=tmp_path / "log", env={"PYTHONPATH": str(paths.repo_root())})
    try:
        deadline = time.monotonic() + 20
        while not (tmp_path / "ready.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "ready.json").exists()
        owner.kill()
        owner.wait()
        assert server.wait(timeout=10) == 0
    finally:
        proc.stop_spawned(server, "test mirror")
        owner.kill()
        owner.wait()
