"""testinfra's ``host`` fixture under the harness plugin, without VMs: stand-in machines.

A Molecule-style file runs unchanged; ``host`` is parametrized over ``[baseline]`` and
``[candidate]`` and bound to the module's machines, never testinfra's local backend, whether
the plugin is loaded with ``-p`` (as ``distrogate gate`` does, before entry-point plugins) or
from a conftest (as ``pytest suites/`` does, after them).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO

STAND_INS = '''\
import pytest

from distrogate.guest.agent import ExecResult


class StandIn:
    """Answers `hostname` with its role; `test -e /gate-host-only` fails; the rest succeeds."""

    def __init__(self, role):
        self.name = role

    def execute(self, command, **kwargs):
        if command == "hostname":
            return ExecResult(0, f"{self.name}\\n".encode(), b"")
        return ExecResult(1 if "/gate-host-only" in command else 0, b"", b"")


@pytest.fixture(scope="module")
def baseline():
    return StandIn("baseline")


@pytest.fixture(scope="module")
def candidate():
    return StandIn("candidate")
'''

MOLECULE_TESTS = '''\
import os

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ['MOLECULE_INVENTORY_FILE']).get_hosts('all')


def test_role(host, request):
    assert host.check_output("hostname") == request.node.callspec.id


def test_not_the_gate_host(host):
    assert host.run("test -e /gate-host-only").rc != 0
'''


def _run(tmp_path: Path, *args: str, conftest: str = "") -> subprocess.CompletedProcess[str]:
    (tmp_path / "conftest.py").write_text(conftest + STAND_INS)
    (tmp_path / "test_default.py").write_text(MOLECULE_TESTS)
    env = {k: v for k, v in os.environ.items() if k != "MOLECULE_INVENTORY_FILE"}
    env["PYTHONPATH"] = str(REPO)
    env["DISTROGATE_HOME"] = str(tmp_path / "home")  # the inventory goes there
    env["PATH"] = "/usr/bin:/bin"  # ansible-inventory comes from the virtualenv all the same
    return subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-v",
                           *args, "test_default.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
                          check=False)


@pytest.mark.parametrize("loading", ["-p", "conftest"])
def test_host_is_the_images_and_a_host_list_is_ignored(tmp_path: Path, loading: str) -> None:
    (tmp_path / "gate-host-only").touch()
    if loading == "-p":
        result = _run(tmp_path, "-p", "fixtures.testinfra_hosts", "--hosts=local://",
                      "--connection=local")
    else:
        result = _run(tmp_path, "--hosts=local://", "--connection=local",
                      conftest='pytest_plugins = ["fixtures.testinfra_hosts"]\n')
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-3000:]
    for test in ("test_role", "test_not_the_gate_host"):
        for role in ("baseline", "candidate"):
            assert f"test_default.py::{test}[{role}] PASSED" in output, output[-3000:]
    assert "4 passed" in output and "[local" not in output, output[-3000:]
    warnings = [line for line in output.splitlines() if "testinfra: ignoring" in line]
    assert len(warnings) == 1, output[-3000:]
    assert "--hosts=local://" in warnings[0] and "--connection=local" in warnings[0]
    assert "testinfra_hosts in test_default.py" in warnings[0]
    assert "distrogate" in (tmp_path / "home/testinfra/inventory.ini").read_text()


def test_role_hostspecs() -> None:
    from distrogate.guest.testinfra_backend import RoleBackend, register_role_backend
    from fixtures.testinfra_hosts import gate_hostspecs

    register_role_backend()
    import testinfra

    hosts = testinfra.get_hosts(gate_hostspecs())
    assert sorted(h.backend.get_pytest_id() for h in hosts) == ["baseline", "candidate"]
    backend = hosts[0].backend
    assert isinstance(backend, RoleBackend)
    with pytest.raises(RuntimeError, match="not bound to a booted machine"):
        backend.run("true")
    assert backend.get_command("id") == "id"
    backend.sudo, backend.sudo_user = True, "nobody"
    try:
        assert backend.get_command("id") == "runuser -u nobody -- /bin/sh -c id"
    finally:
        backend.sudo, backend.sudo_user = False, None
