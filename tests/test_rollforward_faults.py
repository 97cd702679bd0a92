"""The roll-forward suite through the gate and ``distrogate scenario run``: bad input is exit 3
before any boot; the seed incident (a locale's collation changed under physical replication)
is rejected naming amcheck's findings and the collation mismatch while the collation suite
flags the same locale; a clean derived candidate promotes; an interrupt mid-scenario leaves
nothing behind."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REPO, Cli, process_table

IMAGES = Path(__file__).resolve().parent / "images"
SCENARIOS = Path(__file__).resolve().parent / "scenarios"
GOOD = (REPO / "scenarios" / "rolling-replace.yaml").read_text()


def _policy(tmp_path: Path, body: str) -> Path:
    policy = tmp_path / "policy.yaml"
    policy.write_text(body)
    return policy


def _gate(cli: Cli, tmp_path: Path, candidate: str, baseline: str, policy: Path,
          *suites: str, timeout: float = 3000) -> tuple[Any, dict[str, Any], dict[str, Any]]:
    reports = tmp_path / "reports"
    args = [a for s in suites for a in ("--suite", s)]
    result = cli("gate", "--candidate", candidate, "--baseline", baseline, *args, "--policy",
                 str(policy), "--reports-dir", str(reports), timeout=timeout)
    run_dir = (reports / "latest").resolve()
    verdict = json.loads((run_dir / "verdict.json").read_text())
    results = json.loads((run_dir / "results.json").read_text()) \
        if (run_dir / "results.json").exists() else {"records": []}
    return result, verdict, results


@pytest.mark.parametrize(("edit", "problem"), [
    (("- remove: {node: n3}", "- retire: {node: n3}"), "steps[2].retire: unknown step kind"),
    (("nodes: 3", "nodes: 1"), "cluster.nodes"),
    (("- switchover: {to: n6}", "- switchover: {to: n9}"), "steps[8].switchover.to"),
])
def test_a_bad_scenario_is_exit_3_naming_file_and_key_before_any_boot(
        cli: Cli, tmp_path: Path, edit: tuple[str, str], problem: str) -> None:
    directory = tmp_path / "scenarios"
    directory.mkdir()
    bad = directory / "bad.yaml"
    assert edit[0] in GOOD
    bad.write_text(GOOD.replace(edit[0], edit[1]))
    for result in (
            cli("gate", "--suite", "rollforward", "--policy", str(_policy(
                tmp_path, f"suites:\n  rollforward: {{directory: {directory}}}\n")),
                "--reports-dir", str(tmp_path / "reports"), timeout=300),
            cli("scenario", "run", str(bad), timeout=300)):
        assert result.returncode == 3, result.stderr[-2000:]
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1, result.stderr
        assert "bad.yaml" in lines[0] and problem in lines[0], lines[0]
    cli.assert_nothing_left()


@pytest.mark.vm
def test_image_mode_on_an_image_without_postgresql_is_exit_3_before_any_boot(
        cli: Cli, tmp_path: Path) -> None:
    policy = _policy(tmp_path, f"suites:\n  rollforward: {{directory: {SCENARIOS}, "
                               "scenarios: [seed-incident]}\n")
    result, verdict, _ = _gate(cli, tmp_path, "candidate", "promoted", policy, "rollforward",
                               timeout=1200)
    assert result.returncode == 3, result.stdout[-2000:] + result.stderr[-2000:]
    assert "seed-incident.yaml: service.source: image: the baseline image" in result.stderr
    assert "has no PostgreSQL server package" in result.stderr
    assert verdict["exit_code"] == 3
    cli.assert_nothing_left()


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.nightly  # roll-forward VM runs take 5-30 min here: make nightly
def test_the_seed_incident_is_rejected_naming_amcheck_and_the_collation(
        cli: Cli, tmp_path: Path) -> None:
    policy = _policy(tmp_path, "suites:\n"
                     f"  rollforward: {{directory: {SCENARIOS}, scenarios: [seed-incident]}}\n"
                     "  collation: {locales: [de_DE.UTF-8], blocking_locales: all, "
                     "corpus: quick}\n")
    result, verdict, results = _gate(
        cli, tmp_path, str(IMAGES / "rollforward-collation-fault.yaml"),
        str(IMAGES / "rollforward-pg.yaml"), policy, "rollforward", "collation")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "reject"
    reasons = " ".join(verdict["reasons"])
    assert "test_amcheck_clean[seed-incident]" in reasons, verdict["reasons"]
    assert "test_collation_versions[seed-incident]" in reasons, verdict["reasons"]
    assert "de_DE.UTF-8" in reasons, verdict["reasons"]  # the collation suite's finding
    findings = [f for r in results["records"] for f in r.get("findings", [])]
    amcheck = [f for f in findings if "pg_amcheck" in f["title"]]
    assert amcheck and "dg_" in amcheck[0]["detail"], findings  # names the broken index
    collation = [f for f in findings if "collation versions" in f["title"]]
    assert collation and "REINDEX" in collation[0]["detail"], findings
    cli.assert_nothing_left()


def _no_scenario_processes(home: Path) -> list[str]:
    return [text for _pid, text in process_table(home, "distrogate.scenario.writer",
                                                  "pgbackrest", "qemu")]


def _default_sigint() -> None:
    """The child takes SIGINT as a person's Ctrl-C would: a pytest started in the background
    of a non-interactive shell ignores SIGINT, and its children inherit that (the test's
    SIGINT was ignored once, and the scenario ran on)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.nightly  # roll-forward VM runs take 5-30 min here: make nightly
def test_an_interrupt_mid_scenario_leaves_nothing_behind(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "out"
    log_path = tmp_path / "scenario.log"
    with log_path.open("wb") as stderr:
        proc = subprocess.Popen(cli.argv("scenario", "run", str(REPO / "scenarios"
                                                                 / "rolling-replace.yaml"),
                                         "--out", str(out)),
                                env=cli.env, cwd=REPO, stdout=subprocess.DEVNULL,
                                stderr=stderr, preexec_fn=_default_sigint)
    try:
        deadline = time.monotonic() + 1200
        while time.monotonic() < deadline and proc.poll() is None \
                and "[1/" not in log_path.read_text(errors="replace"):
            time.sleep(1)
        assert "[1/" in log_path.read_text(errors="replace"), log_path.read_text()[-3000:]
    finally:
        proc.send_signal(signal.SIGINT)
        returncode = proc.wait(timeout=300)
    output = log_path.read_text(errors="replace")
    assert returncode == 130, output[-3000:]
    assert "Traceback" not in output, output[-3000:]
    cli.assert_nothing_left()
    assert _no_scenario_processes(cli.home) == []


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.nightly  # roll-forward VM runs take 5-30 min here: make nightly
def test_a_fault_only_old_and_new_nodes_together_show_is_rejected_in_the_middle(
        cli: Cli, tmp_path: Path) -> None:
    """The second planted fault (tests/images/rollforward-verify-ca.yaml): the new image's
    PostgreSQL verifies the replication peer's certificate against the fleet's CA, which the
    old nodes' self-signed certificates fail. The roll-forward rejects, naming the first
    step that mixes old and new nodes and the standby's TLS error; the same scenario with the
    candidate on both sides (new nodes only) runs clean."""
    candidate = str(IMAGES / "rollforward-verify-ca.yaml")
    policy = _policy(tmp_path, "suites:\n"
                     f"  rollforward: {{directory: {SCENARIOS}, scenarios: [mixed-nodes]}}\n")
    result, verdict, results = _gate(cli, tmp_path, candidate,
                                     str(IMAGES / "rollforward-pg.yaml"), policy, "rollforward")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "reject"
    assert any("test_steps[mixed-nodes]" in reason for reason in verdict["reasons"]), verdict
    findings = [f for r in results["records"] for f in r.get("findings", [])]
    failed = [f for f in findings if "step 1 (add n3" in f["title"]]
    assert failed, [f["title"] for f in findings]
    assert "certificate verify failed" in failed[0]["detail"], failed[0]["detail"]
    alone = cli("scenario", "run", str(SCENARIOS / "mixed-nodes.yaml"), "--candidate",
                candidate, "--baseline", candidate, "--out", str(tmp_path / "new-only"),
                timeout=3000)
    assert alone.returncode == 0, alone.stderr[-3000:]
    cli.assert_nothing_left()


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.nightly  # roll-forward VM runs take 5-30 min here: make nightly
def test_a_clean_derived_candidate_rolled_forward_onto_promotes(cli: Cli, tmp_path: Path) -> None:
    """The control of the planted faults: the roll-forward baseline plus a harmless package
    (tests/images/rollforward-harmless.yaml), through the scenario that rejects
    rollforward-verify-ca, promotes with every step run, nothing lost and amcheck clean."""
    policy = _policy(tmp_path, "suites:\n"
                     f"  rollforward: {{directory: {SCENARIOS}, scenarios: [mixed-nodes]}}\n")
    result, verdict, results = _gate(cli, tmp_path, str(IMAGES / "rollforward-harmless.yaml"),
                                     str(IMAGES / "rollforward-pg.yaml"), policy, "rollforward")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "promote", verdict
    outcomes = {r["nodeid"].split("::")[-1]: r["outcome"] for r in results["records"]}
    for test in ("test_steps[mixed-nodes]", "test_no_lost_writes[mixed-nodes]",
                 "test_amcheck_clean[mixed-nodes]"):
        assert outcomes.get(test) == "passed", outcomes
    cli.assert_nothing_left()
