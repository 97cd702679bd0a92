"""The DNF suite through the gate: planted faults are rejected naming the fault class, a
harmless change promotes, bad input is exit 3 (an unknown fault class before anything boots;
a wrapper command the image lacks when the suite starts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli, process_table

FAULTS = Path(__file__).resolve().parent / "images"


#: The planted-fault gate runs judge the class a planted fault breaks and a control class it
#: must leave alone, each on the quick profile's target, without the speed runs (the quick
#: matrix and the speed comparison run on the default pair in suites/test_dnf.py).
def quick(*classes: str) -> str:
    """A policy section for a gate run on ``classes`` only (the quick profile's targets)."""
    return f"classes: [{', '.join(classes)}], speed: []"


def _gate(cli: Cli, tmp_path: Path, candidate: str, *extra: str,
          section: str = "") -> tuple[Any, dict[str, Any]]:
    reports = tmp_path / "reports"
    if "--policy" not in extra:
        policy = tmp_path / "policy.yaml"
        policy.write_text(f"suites:\n  dnf: {{{section}}}\n")
        extra = (*extra, "--policy", str(policy))
    result = cli("gate", "--candidate", candidate, "--baseline", "promoted", "--suite", "dnf",
                 "--reports-dir", str(reports), *extra, timeout=2400)
    run_dir = (reports / "latest").resolve()
    verdict = json.loads((run_dir / "verdict.json").read_text())
    return result, verdict


def _regressions(tmp_path: Path) -> dict[str, str]:
    results = json.loads(((tmp_path / "reports" / "latest").resolve() / "results.json")
                         .read_text())
    return {d["id"]: d["detail"] for r in results["records"] for d in r.get("deltas", [])
            if d["status"] == "regression"}


def _no_lab_left(cli: Cli) -> None:
    labs = cli.home / "labs"
    assert not labs.exists() or not any(labs.iterdir()), "a lab was left behind"


@pytest.mark.parametrize(("setting", "problem"), [
    ("classes: [http_503, dns_poison]", "suites.dnf.classes: unknown fault class 'dns_poison'"),
    ("targets: [kernel]", "suites.dnf.targets: unknown target 'kernel'"),
])
def test_a_bad_setting_is_exit_3_before_any_boot(cli: Cli, tmp_path: Path, setting: str,
                                                 problem: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"suites:\n  dnf: {{{setting}}}\n")
    result = cli("gate", "--suite", "dnf", "--policy", str(policy), "--reports-dir",
                 str(tmp_path / "reports"), timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert problem in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    _no_lab_left(cli)


@pytest.mark.vm
def test_a_wrapper_the_image_lacks_is_exit_3_naming_the_command(cli: Cli,
                                                                tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("suites:\n  dnf: {wrapper: fleet-dnf-retry --quiet}\n")
    result, verdict = _gate(cli, tmp_path, "candidate", "--policy", str(policy))
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr[-3000:]
    line = "distrogate: error: suites.dnf.wrapper: the command 'fleet-dnf-retry' does not " \
           "exist in image"
    assert line in result.stderr, result.stderr[-2000:]
    assert verdict["exit_code"] == 3
    _no_lab_left(cli)
    assert not process_table(cli.home, "distrogate.dnf.mirror"), "the mirror was left running"


@pytest.mark.vm
@pytest.mark.slow
def test_a_brittle_timeout_is_rejected_naming_the_stall_class(cli: Cli, tmp_path: Path) -> None:
    result, verdict = _gate(cli, tmp_path, str(FAULTS / "dnf-brittle-timeout.yaml"),
                            section=quick("http_503", "stall"))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "reject"
    regressions = _regressions(tmp_path)
    assert any(k.startswith("stall@") for k in regressions), regressions
    assert all(k.startswith("stall@") for k in regressions), regressions
    assert any("test_fault_class[stall]" in reason for reason in verdict["reasons"]), verdict
    assert "fault class stall@" in " ".join(regressions.values())


@pytest.mark.vm
@pytest.mark.slow
def test_curl_low_speed_abort_off_is_rejected_naming_the_slow_rate_class(
        cli: Cli, tmp_path: Path) -> None:
    result, verdict = _gate(cli, tmp_path, str(FAULTS / "dnf-no-lowspeed-limit.yaml"),
                            section=quick("http_503", "slow_rate"))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "reject"
    regressions = _regressions(tmp_path)
    assert "slow_rate@packages" in regressions, regressions
    assert any("test_fault_class[slow_rate]" in reason for reason in verdict["reasons"]), verdict


@pytest.mark.vm
@pytest.mark.slow
def test_a_harmless_dnf_conf_change_is_promoted(cli: Cli, tmp_path: Path) -> None:
    result, verdict = _gate(cli, tmp_path, str(FAULTS / "dnf-harmless.yaml"),
                            section=quick("http_503", "stall", "truncated_body"))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "promote", verdict["reasons"]
