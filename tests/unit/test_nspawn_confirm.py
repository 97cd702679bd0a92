"""Which nspawn regressions are confirmed by a second run of both images: those that rest
only on the candidate running out of time; and an image's run the lab broke runs once more
(see distrogate.nspawn.suite; the runs themselves are scripted here)."""

from __future__ import annotations

import pytest

from distrogate.differential import DeltaStatus
from distrogate.errors import CandidateDoesNotBoot, GuestError
from distrogate.nspawn import suite
from distrogate.nspawn.checks import Bounds, CheckResult, Got
from distrogate.nspawn.compare import deltas
from distrogate.nspawn.suite import ImageRun, SuiteConfig, SuiteRun, timeout_regressions
from distrogate.nspawn.tree import ContainerSpec


def result(check: str, ok: bool, *, exit_code: int | None = 0, detail: str = "",
           seconds: float = 5.0, not_attempted: str = "") -> CheckResult:
    return CheckResult(check, f"op {check}", ok, "exit 0", Got(exit_code, "out"), seconds,
                       detail, not_attempted=not_attempted)


def bounds(check: str) -> float:
    return 120.0


def test_a_candidate_that_ran_out_of_time_where_the_baseline_did_not_is_run_again() -> None:
    cand = [result("start", False, exit_code=1, detail="not reached within 113s", seconds=134),
            result("shell_output", False, exit_code=None, not_attempted="start failed")]
    base = [result("start", True, seconds=23.6), result("shell_output", True)]
    found = deltas(cand, base, bounds)
    assert timeout_regressions(cand, found) == ["start"]


def test_a_wrong_answer_is_judged_at_once() -> None:
    cand = [result("shell_exit_code", False, exit_code=0, detail="exit code 0, expected 3")]
    base = [result("shell_exit_code", True)]
    assert timeout_regressions(cand, deltas(cand, base, bounds)) == []


def test_a_timeout_on_both_images_is_no_regression_to_confirm() -> None:
    cand = [result("poweroff", False, exit_code=None, detail="not reached within 60s", seconds=60)]
    base = [result("poweroff", False, exit_code=None, detail="not reached within 60s", seconds=60)]
    assert timeout_regressions(cand, deltas(cand, base, bounds)) == []


def test_passing_checks_need_nothing() -> None:
    cand = [result("start", True, seconds=30)]
    base = [result("start", True, seconds=20)]
    assert timeout_regressions(cand, deltas(cand, base, bounds)) == []


class _Runs:
    """Scripted outcomes of run_on_image, per role, in order (an exception is raised)."""

    def __init__(self, script: dict[str, list[object]]) -> None:
        self.script = script
        self.calls: list[str] = []

    def __call__(self, lab_run: object, image: object, tree: object, *, role: str,
                 **_: object) -> ImageRun:
        self.calls.append(role)
        outcome = self.script[role].pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        assert isinstance(outcome, list)
        return ImageRun(role, image, tuple(outcome), 1.0, 1.0, 2.0)  # type: ignore[arg-type]


def _suite(monkeypatch: pytest.MonkeyPatch, runs: _Runs) -> SuiteRun:
    monkeypatch.setattr(suite, "build_container", lambda spec: "tree")
    monkeypatch.setattr(suite, "run_on_image", runs)
    config = SuiteConfig(ContainerSpec(), Bounds())
    return suite.run_suite(object(), "cand", "base", config)  # type: ignore[arg-type]


def test_a_run_the_lab_broke_runs_once_more(monkeypatch: pytest.MonkeyPatch) -> None:
    ok = [result("start", True)]
    runs = _Runs({"baseline": [ok], "candidate": [
        GuestError("cand: guest agent guest-exec-status: the guest crashed (Kernel panic)"),
        ok]})
    done = _suite(monkeypatch, runs)
    assert runs.calls == ["baseline", "candidate", "candidate"]
    assert [d.status for d in done.deltas] == [DeltaStatus.UNCHANGED]


def test_a_run_the_lab_breaks_twice_is_the_labs_to_report(
        monkeypatch: pytest.MonkeyPatch) -> None:
    crash = GuestError("cand: the guest crashed (Kernel panic)")
    runs = _Runs({"baseline": [[result("start", True)]], "candidate": [crash, crash]})
    with pytest.raises(GuestError, match="crashed"):
        _suite(monkeypatch, runs)


def test_a_candidate_that_does_not_boot_is_not_run_again(monkeypatch: pytest.MonkeyPatch) -> None:
    runs = _Runs({"baseline": [[result("start", True)]],
                  "candidate": [CandidateDoesNotBoot("cand does not boot")]})
    with pytest.raises(CandidateDoesNotBoot):
        _suite(monkeypatch, runs)
    assert runs.calls == ["baseline", "candidate"]
