"""`distrogate gate` gives the right answer: outcomes by cause, every planned test counted, the
candidate judged against the baseline (each case fails without the fix it guards)."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Cli

TEST_IMAGES = Path(__file__).resolve().parent / "images"

KILLED = '''\
import os
import signal


def test_before() -> None:
    pass


def test_dies() -> None:
    os.kill(os.getpid(), signal.SIGKILL)  # the process running the tests dies mid-test
'''

TEARDOWN = '''\
import pytest


@pytest.fixture
def breaks_on_teardown():
    yield
    raise RuntimeError("planted teardown error")


def test_check(breaks_on_teardown) -> None:
    assert "ß".upper() == "ß", "planted regression: upper-casing changed"
'''

BOTH_FAIL = '''\
import pytest

pytestmark = pytest.mark.vm


@pytest.mark.parametrize("role", ["baseline", "candidate"])
def test_marker_file(role: str, request: pytest.FixtureRequest) -> None:
    """A check both images fail: the file exists on neither."""
    request.getfixturevalue(role).succeed("test -e /etc/distrogate-planted-marker")


@pytest.mark.parametrize("role", ["baseline", "candidate"])
def test_os_release(role: str, request: pytest.FixtureRequest) -> None:
    request.getfixturevalue(role).succeed("test -s /etc/os-release")
'''


def _suite(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / "planted" / name
    path.parent.mkdir(exist_ok=True)
    path.write_text(text)
    return path


def _gate(cli: Cli, tmp_path: Path, *args: str, timeout: float = 1800
          ) -> tuple[subprocess.CompletedProcess[str], dict[str, object]]:
    reports = tmp_path / "reports"
    result = cli("gate", "--reports-dir", str(reports), *args, timeout=timeout)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    verdict = json.loads(((reports / "latest").resolve() / "verdict.json").read_text())
    assert verdict["exit_code"] == result.returncode, (verdict, result.returncode)
    return result, verdict


def _reasons(verdict: dict[str, object]) -> str:
    return "\n".join(verdict["reasons"])  # type: ignore[arg-type]


@pytest.mark.vm
def test_a_test_process_killed_mid_test_is_inconclusive_naming_the_test(
        cli: Cli, tmp_path: Path) -> None:
    result, verdict = _gate(cli, tmp_path, "--suite", str(_suite(tmp_path, "test_k.py", KILLED)))
    assert result.returncode == 2, result.stdout[-3000:]
    assert verdict["decision"] == "inconclusive"
    reasons = _reasons(verdict)
    assert "test_k.py::test_dies" in reasons and "died while it ran" in reasons, reasons
    assert "test_before" not in reasons  # it passed before the crash, and that is kept
    cli.assert_nothing_left()


@pytest.mark.vm
def test_a_failing_check_then_a_teardown_error_rejects(cli: Cli, tmp_path: Path) -> None:
    result, verdict = _gate(cli, tmp_path, "--suite",
                            str(_suite(tmp_path, "test_t.py", TEARDOWN)))
    assert result.returncode == 1, result.stdout[-3000:]
    assert verdict["decision"] == "reject"
    [test] = verdict["tests"]  # type: ignore[misc]
    assert test["outcome"] == "failed"
    assert "upper-casing changed" in test["message"] and "planted teardown error" in test["message"]


@pytest.mark.vm
@pytest.mark.slow
def test_a_candidate_whose_kernel_panics_is_rejected(cli: Cli, tmp_path: Path) -> None:
    result, verdict = _gate(cli, tmp_path, "--candidate", str(TEST_IMAGES / "panic.yaml"),
                            "--suite", "smoke")
    assert result.returncode == 1, result.stdout[-3000:]
    assert verdict["decision"] == "reject"
    reasons = _reasons(verdict)
    assert "does not boot while the baseline does" in reasons, reasons
    assert "test_boots_to_multi_user[candidate]" in reasons
    cli.assert_nothing_left()


@pytest.mark.vm
def test_a_check_both_images_fail_promotes_with_a_note(cli: Cli, tmp_path: Path) -> None:
    result, verdict = _gate(cli, tmp_path, "--suite",
                            str(_suite(tmp_path, "test_both.py", BOTH_FAIL)))
    assert result.returncode == 0, result.stdout[-3000:]
    assert verdict["decision"] == "promote"
    notes = "\n".join(verdict["also_fails_on_baseline"])  # type: ignore[arg-type]
    assert "test_both.py::test_marker_file[candidate]" in notes
    assert "also fails on the promoted image" in notes
    assert "note: " in result.stdout and "distrogate-planted-marker" in result.stdout
    cli.assert_nothing_left()


def test_an_impossible_waiver_date_is_exit_3_within_2_s(cli: Cli, tmp_path: Path) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text("waivers:\n  - {pattern: 'suites/test_smoke.py::test_image_facts', "
                      "reason: r, tracker: 'https://t.invalid/1', expires: 2026-02-30}\n")
    started = time.monotonic()
    result = cli("gate", "--policy", str(policy), "--reports-dir", str(tmp_path / "r"),
                 timeout=60)
    elapsed = time.monotonic() - started
    assert result.returncode == 3, result.stderr
    [line] = [ln for ln in result.stderr.splitlines() if ln.startswith("distrogate: error")]
    assert str(policy) in line and "waivers[0].expires" in line and "2026-02-30" in line
    assert "Traceback" not in result.stderr
    assert elapsed < 2.0, elapsed


@pytest.mark.vm
@pytest.mark.slow
def test_a_waiver_naming_one_locale_leaves_another_changed_locale_rejecting(
        cli: Cli, tmp_path: Path) -> None:
    # both locales sort differently under trixie's glibc 2.41 than under bookworm's 2.36
    policy = tmp_path / "policy.yaml"
    policy.write_text(
        "suites:\n  collation: {locales: [th_TH.UTF-8, lv_LV.UTF-8], blocking_locales: all,"
        " hypothesis_examples: 0}\n"
        "waivers:\n"
        "  - pattern: 'suites/test_collation.py::test_locale_order[blocking]'\n"
        "    items: [th_TH.utf8]\n"  # glibc's own spelling of the codeset names the same locale
        "    reason: 'REINDEX of the Thai databases is planned'\n"
        "    tracker: 'https://tracker.invalid/DG-8'\n"
        "    expires: 2099-12-31\n")
    result, verdict = _gate(cli, tmp_path, "--suite", "collation", "--policy", str(policy))
    assert result.returncode == 1, result.stdout[-3000:]
    tests = {t["nodeid"]: t for t in verdict["tests"]}  # type: ignore[attr-defined]
    order = tests["suites/test_collation.py::test_locale_order[blocking]"]
    assert order["effective"] == "failed"
    assert [r.split(":")[0] for r in order["regressions"]] == ["lv_LV.UTF-8"], order
    assert "REINDEX" in order["regressions"][0]
    # the locale's own items: its order, and strcoll disagreeing with strxfrm in it
    assert order["waived_items"] == ["th_TH.UTF-8", "strcoll:th_TH.UTF-8"]
    [applied] = verdict["waivers_applied"]  # type: ignore[misc]
    assert applied["items"] == ["th_TH.utf8"] and applied["tracker"].endswith("DG-8")
    reasons = _reasons(verdict)
    assert "lv_LV.UTF-8" in reasons and "2 waived: th_TH.UTF-8, strcoll:th_TH.UTF-8" in reasons
    cli.assert_nothing_left()


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.nightly  # ~500 shipped locales on both images: 10 min of a make test worker
def test_the_packaged_policy_rejects_the_default_pair_naming_every_changed_locale(
        cli: Cli, tmp_path: Path) -> None:
    """`make gate`'s verdict: every shipped locale blocks, and glibc 2.41 sorts several of them
    differently from 2.36; the reject names each with its action (what the README says)."""
    result, verdict = _gate(cli, tmp_path, "--suite", "collation")
    assert result.returncode == 1, result.stdout[-3000:]
    tests = {t["nodeid"]: t for t in verdict["tests"]}  # type: ignore[attr-defined]
    order = tests["suites/test_collation.py::test_locale_order[blocking]"]
    regressions = {r.split(":")[0]: r for r in order["regressions"]}
    for locale in ("th_TH.UTF-8", "lv_LV.UTF-8", "cv_RU", "zh_CN.gb18030"):
        assert locale in regressions, sorted(regressions)
        assert "REINDEX" in regressions[locale], regressions[locale]
    assert "aa_ER@saaho" in regressions  # shipped by bookworm, not by trixie
    reasons = _reasons(verdict)
    assert "th_TH.UTF-8" in reasons and "REINDEX" in reasons
    assert "suites/test_collation.py::test_locale_order[advisory]" not in tests  # all block
    cli.assert_nothing_left()
