"""`distrogate gate` end to end: the verdict a pipeline gets for a planted regression, a waived
one, an expired waiver, and a lab that dies in the middle of the run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from tests.conftest import REPO, Cli

pytestmark = pytest.mark.vm  # every gate run builds (or takes from cache) both images

PLANTED_SUITE = '''\
"""A suite with one regression planted on purpose."""


def test_planted_regression() -> None:
    assert "ß".upper() == "ß", "planted regression: upper-casing changed"


def test_sound() -> None:
    assert "a" < "b"
'''


def _policy(tmp_path: Path, expires: date | None) -> Path:
    waivers = "waivers: []\n" if expires is None else f"""\
waivers:
  - pattern: "*test_planted.py::test_planted_regression"
    reason: "upper-casing change accepted while DG-17 is fixed upstream"
    tracker: "https://tracker.invalid/DG-17"
    expires: {expires.isoformat()}
"""
    path = tmp_path / "policy.yaml"
    path.write_text("default: blocking\nrules: []\n" + waivers)
    return path


def _gate(cli: Cli, tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    suite = tmp_path / "planted" / "test_planted.py"
    suite.parent.mkdir(exist_ok=True)
    suite.write_text(PLANTED_SUITE)
    reports = tmp_path / "reports"
    result = cli("gate", "--suite", str(suite), "--reports-dir", str(reports), *args, timeout=1800)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    return result, (reports / "latest").resolve()


def _verdict(run_dir: Path) -> dict[str, object]:
    return json.loads((run_dir / "verdict.json").read_text())  # type: ignore[no-any-return]


def test_planted_failing_blocking_test_rejects_naming_it(cli: Cli, tmp_path: Path) -> None:
    result, run_dir = _gate(cli, tmp_path, "--policy", str(_policy(tmp_path, None)))
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    verdict = _verdict(run_dir)
    assert verdict["decision"] == "reject"
    reasons = " ".join(verdict["reasons"])  # type: ignore[arg-type]
    assert "test_planted_regression" in reasons and "test_sound" not in reasons
    assert "verdict: REJECT" in result.stdout and "test_planted_regression" in result.stdout
    for name in ("junit.xml", "results.json", "verdict.json", "summary.html"):
        assert (run_dir / name).is_file(), name
    assert 'failures="1"' in (run_dir / "junit.xml").read_text()
    assert "test_planted_regression" in (run_dir / "summary.html").read_text()


def test_live_waiver_promotes_and_lists_the_waiver(cli: Cli, tmp_path: Path) -> None:
    policy = _policy(tmp_path, date.today() + timedelta(days=30))
    result, run_dir = _gate(cli, tmp_path, "--policy", str(policy))
    assert result.returncode == 0, result.stdout + result.stderr[-2000:]
    verdict = _verdict(run_dir)
    assert verdict["decision"] == "promote"
    applied = verdict["waivers_applied"]
    assert isinstance(applied, list) and len(applied) == 1
    assert applied[0]["tracker"] == "https://tracker.invalid/DG-17"
    assert any("test_planted_regression" in t for t in applied[0]["tests"])
    assert "waived:" in result.stdout and "DG-17" in result.stdout
    assert "DG-17" in (run_dir / "summary.html").read_text()
    # results.json keeps the real outcome: the waiver changes the verdict, not the facts
    results = json.loads((run_dir / "results.json").read_text())
    outcomes = {t["nodeid"].rsplit("::", 1)[1]: t["outcome"] for t in results["records"]}
    assert outcomes == {"test_planted_regression": "failed", "test_sound": "passed"}


def test_expired_waiver_does_not_promote(cli: Cli, tmp_path: Path) -> None:
    policy = _policy(tmp_path, date.today() - timedelta(days=1))
    result, run_dir = _gate(cli, tmp_path, "--policy", str(policy))
    assert result.returncode == 1, result.stdout + result.stderr[-2000:]
    verdict = _verdict(run_dir)
    assert verdict["decision"] == "reject"
    assert verdict["waivers_applied"] == []
    expired = verdict["expired_waivers_ignored"]
    assert isinstance(expired, list) and expired[0]["tracker"] == "https://tracker.invalid/DG-17"


def _libvirtd_pid(home: Path) -> int | None:
    for state in (home / "labs").glob("*/lab.json"):
        pid = json.loads(state.read_text()).get("daemon_pid")
        if pid:
            return int(pid)
    return None


@pytest.mark.vm
@pytest.mark.slow
def test_libvirtd_killed_mid_run_is_inconclusive(cli: Cli, tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    with (tmp_path / "gate.log").open("wb") as log:
        gate = subprocess.Popen(cli.argv("gate", "--suite", "smoke", "--reports-dir", str(reports)),
                                cwd=REPO, env=cli.env, stdout=log, stderr=subprocess.STDOUT)
    gate_log = tmp_path / "gate.log"
    try:
        # kill the lab's libvirtd once the first test has passed: in the middle of the run
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline and gate.poll() is None and \
                " PASSED " not in gate_log.read_text():
            time.sleep(0.5)
        pid = _libvirtd_pid(cli.home)
        assert pid and " PASSED " in gate_log.read_text(), "no test passed: " + gate_log.read_text()[-2000:]
        os.kill(pid, signal.SIGKILL)
        code = gate.wait(timeout=900)
    finally:
        if gate.poll() is None:
            gate.kill()
            gate.wait(timeout=60)
    output = (tmp_path / "gate.log").read_text()
    assert code == 2, output[-3000:]
    assert "Traceback" not in output
    run_dir = (reports / "latest").resolve()
    verdict = _verdict(run_dir)
    assert verdict["decision"] == "inconclusive", verdict
    outcomes = [r["outcome"] for r in json.loads((run_dir / "results.json").read_text())["records"]]
    assert "passed" in outcomes and "error" in outcomes and "failed" not in outcomes, outcomes
    assert "verdict: INCONCLUSIVE" in output
    cli.assert_nothing_left()
