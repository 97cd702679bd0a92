"""A role's Molecule (testinfra) tests, unchanged, gate the images and never the gate host.

The suite is the file ``molecule init`` writes (``molecule/default/tests/test_default.py``):
its module body reads ``MOLECULE_INVENTORY_FILE`` through testinfra's ``AnsibleRunner`` and its
tests take the ``host`` fixture. The candidate is the promoted image with ``/etc/passwd`` owned
by ``nobody`` (``tests/images/passwd-not-root.yaml``): the gate must run every test on both
images (``[baseline]``, ``[candidate]``, never ``[local]``) and reject, naming the broken test.

``test_hosts_file`` is the issue's own example: the built-in images have no ``/etc/hosts``
(mmdebstrap does not write one), so it fails on both images, which is no regression.
"""

from __future__ import annotations

import json
import socket
import uuid
from pathlib import Path

import pytest

from tests.conftest import REPO, Cli

MOLECULE_TESTS = '''\
import os

import testinfra.utils.ansible_runner

testinfra_hosts = testinfra.utils.ansible_runner.AnsibleRunner(
    os.environ['MOLECULE_INVENTORY_FILE']).get_hosts('all')


def test_hosts_file(host):
    f = host.file('/etc/hosts')

    assert f.exists
    assert f.user == 'root'
    assert f.group == 'root'


def test_passwd_file(host):
    f = host.file('/etc/passwd')

    assert f.exists
    assert f.user == 'root'
    assert f.group == 'root'
    assert f.mode == 0o644


def test_journald_running(host):
    assert host.service('systemd-journald').is_running


def test_not_the_gate_host(host):
    # true on every image, false on the machine that runs the gate
    assert not host.file('{marker}').exists
    assert host.check_output('hostname') != '{gate_hostname}'
'''


@pytest.mark.vm
@pytest.mark.slow
def test_molecule_tests_judge_both_images_and_reject_the_broken_one(cli: Cli, tmp_path: Path) -> None:
    marker = tmp_path / f"gate-host-only-{uuid.uuid4().hex}"
    marker.write_text("this file exists on the gate host only\n")
    suite = tmp_path / "molecule" / "default" / "tests" / "test_default.py"
    suite.parent.mkdir(parents=True)
    suite.write_text(MOLECULE_TESTS.format(marker=marker, gate_hostname=socket.gethostname()))
    reports = tmp_path / "reports"
    result = cli("gate", "--candidate", str(REPO / "tests/images/passwd-not-root.yaml"),
                 "--baseline", "promoted", "--suite", str(suite), "--reports-dir", str(reports),
                 timeout=1800)
    output = result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    run_dir = (reports / "latest").resolve()
    records = json.loads((run_dir / "results.json").read_text())["records"]
    outcomes = {r["nodeid"].rsplit("::", 1)[1]: r["outcome"] for r in records}
    assert outcomes == {
        "test_hosts_file[baseline]": "failed",
        "test_hosts_file[candidate]": "failed",
        "test_passwd_file[baseline]": "passed",
        "test_passwd_file[candidate]": "failed",
        "test_journald_running[baseline]": "passed",
        "test_journald_running[candidate]": "passed",
        "test_not_the_gate_host[baseline]": "passed",
        "test_not_the_gate_host[candidate]": "passed",
    }, output[-3000:]
    assert "[local]" not in output
    roles = {r["nodeid"].rsplit("::", 1)[1]: r.get("role") for r in records}
    assert all(roles[test] == test.rsplit("[", 1)[1].rstrip("]") for test in roles), roles
    # the module's own host list (read from the inventory) is ignored, with one line saying so
    assert output.count("ignoring testinfra_hosts in test_default.py") == 1, output[-3000:]

    assert result.returncode == 1, output[-3000:]
    verdict = json.loads((run_dir / "verdict.json").read_text())
    assert verdict["decision"] == "reject"
    reasons = " ".join(verdict["reasons"])
    assert "test_passwd_file[candidate] failed" in reasons, reasons
    assert "test_journald_running" not in reasons and "test_not_the_gate_host" not in reasons
    # what the promoted image fails too is no regression: listed apart
    also_fails = " ".join(verdict["also_fails_on_baseline"])
    assert "test_hosts_file" in also_fails and "test_passwd_file" not in also_fails, verdict
