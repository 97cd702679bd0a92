"""Which nspawn regressions are confirmed by a second run of both images: those that rest
only on the candidate running out of time (see distrogate.nspawn.suite)."""

from __future__ import annotations

from distrogate.nspawn.checks import CheckResult, Got
from distrogate.nspawn.compare import deltas
from distrogate.nspawn.suite import timeout_regressions


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
