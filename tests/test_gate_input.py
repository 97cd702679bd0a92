"""Bad input to `distrogate gate` is one line naming the file, the key and the problem, with
exit 3, before anything is built or booted (no image, no VM: these tests run without either)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import Cli

# What the gate logs once it reaches for an artifact (built or from the cache) or a lab.
REACHED_FOR = ("cache hit", "build image", "start private lab", "nspawn tree")


def _error(cli: Cli, tmp_path: Path, *args: str) -> str:
    result = cli(*args, timeout=60)
    assert result.returncode == 3, (result.returncode, result.stdout[-1500:], result.stderr)
    reached = [what for what in REACHED_FOR if what in result.stderr]
    assert not reached, f"bad input reached {reached} first: {result.stderr[-1500:]}"
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.startswith("distrogate: error")]
    assert len(lines) == 1, result.stderr
    return lines[0]


def _policy(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "policy.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("text", "key", "problem"), [
    ("suites:\n  collation: {locales: [en_UX.UTF-8]}\n", "suites.collation.locales",
     "not a locale glibc knows"),
    ("suites:\n  collation: {jobs: 99}\n", "suites.collation.jobs", "integer from 1 to 16"),
    ("suites:\n  nspawn: {checks: [shel_output]}\n", "suites.nspawn.checks", "unknown check"),
    ("suites:\n  machinectl: {checks: [shel_output]}\n", "suites.nspawn.checks",
     "unknown check"),
    ("suites:\n  colation: {}\n", "suites.colation", "no such suite"),
    ("suites:\n  smoke: {absolute: maybe}\n", "suites.smoke.absolute", "true or false"),
    ("waivers:\n  - {pattern: '*', reason: r, tracker: 'https://t.invalid/1', "
     "expires: 2027-01-01}\n", "waivers[0].pattern", "too broad"),
])
def test_bad_policy_settings_are_exit_3_before_any_build(cli: Cli, tmp_path: Path, text: str,
                                                         key: str, problem: str) -> None:
    policy = _policy(tmp_path, text)
    line = _error(cli, tmp_path, "gate", "--policy", str(policy), "--candidate", "never.yaml",
                  "--reports-dir", str(tmp_path / "r"))
    assert str(policy) in line and key in line and problem in line, line


def test_an_unknown_suite_is_exit_3_before_any_build(cli: Cli, tmp_path: Path) -> None:
    line = _error(cli, tmp_path, "gate", "--suite", "colation", "--candidate", "never.yaml",
                  "--reports-dir", str(tmp_path / "r"))
    assert "--suite colation: no such suite" in line


def test_a_bad_suite_option_is_exit_3_before_any_build(cli: Cli, tmp_path: Path) -> None:
    line = _error(cli, tmp_path, "gate", "--suite", "collation", "--candidate", "never.yaml",
                  "--reports-dir", str(tmp_path / "r"), "--", "--corpus", "huge")
    assert "--corpus huge: expected one of quick, full" in line


@pytest.mark.parametrize(("value", "problem"), [
    ("mirror", "expected NAME=IMAGE"),
    ("baseline=promoted", "the baseline image is given with --baseline"),
])
def test_a_bad_image_option_is_exit_3_naming_it(cli: Cli, tmp_path: Path, value: str,
                                                problem: str) -> None:
    line = _error(cli, tmp_path, "gate", "--image", value, "--candidate", "never.yaml",
                  "--reports-dir", str(tmp_path / "r"))
    assert f"--image {value}: {problem}" in line


def test_a_helper_image_that_does_not_exist_is_exit_3_naming_it(cli: Cli, tmp_path: Path
                                                                ) -> None:
    line = _error(cli, tmp_path, "gate", "--suite", "smoke", "--image", "mirror=/nope.qcow2",
                  "--reports-dir", str(tmp_path / "r"))
    assert "--image mirror=/nope.qcow2: /nope.qcow2: no such file" in line


def test_a_suite_that_collects_no_tests_is_exit_3(cli: Cli, tmp_path: Path) -> None:
    empty = tmp_path / "test_empty.py"
    empty.write_text("HELPER = 1\n")
    line = _error(cli, tmp_path, "gate", "--suite", str(empty), "--candidate", "never.yaml",
                  "--reports-dir", str(tmp_path / "r"))
    assert f"--suite {empty}: collects no tests" in line


def test_a_today_that_is_not_a_date_is_exit_3(cli: Cli, tmp_path: Path) -> None:
    line = _error(cli, tmp_path, "verdict", str(tmp_path), "--today", "2026-13-01")
    assert "--today 2026-13-01: not a date" in line


def test_a_collection_error_is_inconclusive_naming_the_file_and_agrees(
        cli: Cli, tmp_path: Path) -> None:
    broken = tmp_path / "test_broken.py"
    broken.write_text("import a_module_that_does_not_exist\n")
    reports = tmp_path / "r"
    result = cli("gate", "--suite", str(broken), "--candidate", "never.yaml",
                 "--reports-dir", str(reports), timeout=60)
    assert result.returncode == 2, result.stderr[-2000:]
    verdict = json.loads(((reports / "latest").resolve() / "verdict.json").read_text())
    assert verdict["exit_code"] == 2 and verdict["decision"] == "inconclusive"
    assert "test_broken.py" in verdict["reasons"][0]
    assert "a_module_that_does_not_exist" in verdict["reasons"][0]
    assert "Traceback" not in result.stderr
