"""The IPsec suite through the gate: planted faults are rejected naming the broken step, a bad
suite setting is exit 3 before anything boots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli

FAULTS = Path(__file__).resolve().parent / "images"


def _gate(cli: Cli, tmp_path: Path, candidate: str, settings: str) -> tuple[Any, dict[str, Any]]:
    """The gate with ``--suite ipsec`` and the policy section ``suites.ipsec: {settings}``:
    each test runs the steps that show its fault (the whole suite, with the peer reboot, runs
    on the default pair in suites/test_ipsec.py)."""
    reports = tmp_path / "reports"
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"suites:\n  ipsec: {{{settings}}}\n")
    result = cli("gate", "--candidate", candidate, "--baseline", "promoted", "--suite", "ipsec",
                 "--policy", str(policy), "--reports-dir", str(reports), timeout=2400)
    run_dir = (reports / "latest").resolve()
    verdict = json.loads((run_dir / "verdict.json").read_text())
    return result, verdict


def _regressions(tmp_path: Path) -> dict[str, str]:
    results = json.loads(((tmp_path / "reports" / "latest").resolve() / "results.json")
                         .read_text())
    return {d["id"]: d["detail"] for r in results["records"] for d in r.get("deltas", [])
            if d["status"] == "regression"}


# six guests per gate run: never beside the IPsec suite under xdist (fixtures/heavy.py)
pytestmark = pytest.mark.lab_heavy


@pytest.mark.parametrize(("setting", "problem"), [
    ("implementation: openswan", "suites.ipsec.implementation: unknown implementation 'openswan'"),
    ("auth: eap-tls", "suites.ipsec.auth: unknown auth 'eap-tls'"),
    ("steps: [kernel_sa, reboot]", "suites.ipsec.steps: unknown step 'reboot'"),
])
def test_a_bad_setting_is_exit_3_before_any_boot(cli: Cli, tmp_path: Path, setting: str,
                                                 problem: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"suites:\n  ipsec: {{{setting}}}\n")
    result = cli("gate", "--suite", "ipsec", "--policy", str(policy), "--reports-dir",
                 str(tmp_path / "reports"), timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert problem in result.stderr
    labs = cli.home / "labs"
    assert not labs.exists() or not any(labs.iterdir()), "a lab was started"


@pytest.mark.vm
@pytest.mark.slow
def test_esp6_blacklisted_is_rejected_naming_the_kernel_sa(cli: Cli, tmp_path: Path) -> None:
    result, verdict = _gate(cli, tmp_path, str(FAULTS / "ipsec-esp6-blacklisted.yaml"),
                            "steps: [kernel_sa, ping6]")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "reject"
    regressions = _regressions(tmp_path)
    assert "kernel_sa:candidate-candidate" in regressions, regressions
    assert "kernel_sa:candidate-baseline" in regressions, regressions
    assert "sa_up:candidate-candidate" in regressions, regressions
    assert any("test_step[kernel_sa]" in reason for reason in verdict["reasons"]), verdict


@pytest.mark.vm
@pytest.mark.slow
def test_a_dropped_dh_group_is_rejected_naming_sa_up_not_the_kernel(cli: Cli,
                                                                    tmp_path: Path) -> None:
    result, verdict = _gate(cli, tmp_path, str(FAULTS / "ipsec-no-x25519.yaml"),
                            "steps: [kernel_sa, ping6]")
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "reject"
    regressions = _regressions(tmp_path)
    assert "sa_up:candidate-candidate" in regressions, regressions
    assert not any(k.startswith(("kernel_sa:", "config_loads:")) for k in regressions), \
        regressions
    assert any("test_step[sa_up]" in reason for reason in verdict["reasons"]), verdict


@pytest.mark.vm
@pytest.mark.slow
def test_libreswan_against_strongswan_across_images(cli: Cli, tmp_path: Path) -> None:
    """libreswan (bookworm, 4.10) as the candidate against the promoted strongSwan: the mixed
    pair is libreswan↔strongSwan, the candidate pair libreswan↔libreswan; the suite detects
    each image's implementation and every pair gets through its first steps."""
    result, _ = _gate(cli, tmp_path, str(FAULTS / "ipsec-libreswan.yaml"),
                      "steps: [kernel_sa, ping6, large_packets, rekey]")
    assert result.returncode in (0, 1), result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = (tmp_path / "reports" / "latest").resolve()
    pairs = json.loads((run_dir / "ipsec" / "pairs.json").read_text())
    assert "libreswan 4.10" in " ".join(pairs["candidate-candidate"]["implementations"].values())
    mixed = " ".join(pairs["candidate-baseline"]["implementations"].values())
    assert "libreswan" in mixed and "strongSwan" in mixed
    for pair in ("candidate-candidate", "candidate-baseline"):
        observed = pairs[pair]["observations"]
        assert observed["config_loads"]["ok"] and observed["sa_up"]["ok"], (pair, observed)
    # libreswan's pfs follows the ESP proposal: the first rekey against strongSwan passes
    assert pairs["candidate-baseline"]["observations"]["rekey"]["ok"], pairs["candidate-baseline"]


@pytest.mark.vm
@pytest.mark.slow
def test_a_harmless_change_is_promoted(cli: Cli, tmp_path: Path) -> None:
    """The control, run with the policy's other configuration: X.509 (the suite's own CA) and
    IPv4 beside IPv6; every step passes on every pair, so the verdict is promote."""
    result, verdict = _gate(cli, tmp_path, str(FAULTS / "ipsec-harmless.yaml"),
                            "auth: x509, families: [ipv6, ipv4], steps: [kernel_sa, ping6, "
                            "large_packets, daemon_restart]")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "promote", verdict["reasons"]
    pairs = json.loads(((tmp_path / "reports" / "latest").resolve() / "ipsec" / "pairs.json")
                       .read_text())
    for pair, done in pairs.items():
        assert "ping over IPv4" in done["observations"]["ping6"]["detail"], (pair, done)
