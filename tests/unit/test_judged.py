"""The verdict judges the candidate against the baseline, accounts for every planned test,
and waivers hit exactly what they name (no VMs: results as data)."""

from __future__ import annotations

from datetime import date

import pytest
from synth import record, results

from distrogate.differential import Delta, DeltaStatus, Value, bound_verdict
from distrogate.errors import (
    CandidateDoesNotBoot,
    GuestCommandFailed,
    GuestCommandTimeout,
    GuestError,
    InputError,
    LabError,
    is_image_fault,
    is_lab_fault,
)
from distrogate.policy import parse_policy, pattern_matches, today_utc
from distrogate.results import DIED_RUNNING, Outcome, missing_records, worst
from distrogate.verdict import Decision, Effective, decide
from fixtures.recording import merge_phases

TODAY = date(2026, 11, 26)
NONE = parse_policy("{}", "p.yaml")
COLLATION = "suites/test_collation.py::test_locale_order[blocking]"


def _waiving(*entries: str) -> str:
    return "waivers:\n" + "".join(
        f"  - {{{e}, reason: r, tracker: 'https://t/1', expires: 2026-12-31}}\n"
        for e in entries)


def test_image_faults_and_lab_problems_are_told_apart_by_cause() -> None:
    assert is_image_fault(AssertionError("x"))
    assert is_image_fault(GuestCommandFailed("exit 1"))
    assert is_image_fault(CandidateDoesNotBoot("panic"))
    with pytest.raises(BaseException) as failed:
        pytest.fail("a statement about the image")
    assert is_image_fault(failed.value)
    assert not is_image_fault(GuestCommandTimeout("slow lab"))
    assert not is_image_fault(LabError("libvirtd died"))
    assert not is_image_fault(InputError("bad locale"))


def test_a_lab_fault_is_a_broken_lab_or_a_crashed_guest_never_a_timeout_or_a_finding() -> None:
    assert is_lab_fault(LabError("libvirtd died"))
    assert is_lab_fault(GuestError("n5: Kernel panic"))
    assert not is_lab_fault(GuestCommandTimeout("n5: not streaming within 120s"))
    assert not is_lab_fault(CandidateDoesNotBoot("does not boot, twice"))
    assert not is_lab_fault(AssertionError("lost writes"))


def test_one_severity_order_failed_beats_error() -> None:
    assert worst(["passed", "error", "failed", "skipped"]) is Outcome.FAILED
    assert worst(["passed", "skipped"]) is Outcome.SKIPPED
    assert worst([]) is Outcome.PASSED


def test_a_failed_check_then_a_teardown_error_is_failed_with_both_messages() -> None:
    call = {"outcome": "failed", "message": "AssertionError: order changed", "duration": 1.0,
            "findings": [], "measurements": {}, "artifacts": [], "deltas": []}
    teardown = dict(call, outcome="error", message="in teardown: LabError: gone")
    merged = merge_phases(call, teardown)
    assert merged["outcome"] == "failed"
    assert "order changed" in merged["message"] and "LabError: gone" in merged["message"]
    verdict = decide(results(record("s/t.py::t", **_doc(merged))), NONE, TODAY)
    assert verdict.decision is Decision.REJECT


def _doc(doc: dict[str, object]) -> dict[str, object]:
    return {"outcome": doc["outcome"], "message": doc["message"]}


def test_a_planned_test_with_no_result_is_an_error_named_in_the_verdict() -> None:
    res = results(record("s/t.py::a"))
    verdict = decide(res, NONE, TODAY, planned=["s/t.py::a", "s/t.py::b"])
    assert verdict.decision is Decision.INCONCLUSIVE
    assert any("s/t.py::b" in r and "no result" in r for r in verdict.reasons)
    died = missing_records(["s/t.py::b"], [], started=["s/t.py::b"])
    assert died[0].message == DIED_RUNNING


def test_the_candidates_side_of_a_pair_is_judged_against_the_baselines() -> None:
    def pair(cand: Outcome, base: Outcome | None) -> Decision:
        recs = [record("s/t.py::t[candidate]", cand, role="candidate", pair="s/t.py::t[*]")]
        if base is not None:
            recs.append(record("s/t.py::t[baseline]", base, role="baseline",
                               pair="s/t.py::t[*]"))
        return decide(results(*recs), NONE, TODAY).decision

    assert pair(Outcome.FAILED, Outcome.PASSED) is Decision.REJECT
    assert pair(Outcome.FAILED, Outcome.FAILED) is Decision.PROMOTE
    assert pair(Outcome.FAILED, Outcome.ERROR) is Decision.INCONCLUSIVE
    assert pair(Outcome.PASSED, Outcome.FAILED) is Decision.PROMOTE  # fixed; baseline never blocks
    absolute = parse_policy("suites: {core: {absolute: true}}", "p.yaml")
    recs = [record("s/t.py::t[candidate]", Outcome.FAILED, role="candidate", pair="s/t.py::t[*]"),
            record("s/t.py::t[baseline]", Outcome.FAILED, role="baseline", pair="s/t.py::t[*]")]
    assert decide(results(*recs), absolute, TODAY).decision is Decision.REJECT


def test_a_failure_the_promoted_image_shares_promotes_with_a_note() -> None:
    res = results(record("s/t.py::t", Outcome.FAILED, message="AssertionError: unit failed",
                         deltas=[Delta("t", DeltaStatus.ALSO_FAILS_ON_BASELINE)]))
    verdict = decide(res, NONE, TODAY)
    assert verdict.decision is Decision.PROMOTE
    assert verdict.tests[0].effective is Effective.ALSO_FAILS
    assert verdict.baseline_failures and "also fails on the promoted image" in \
        verdict.baseline_failures[0]


def test_a_waiver_naming_one_locale_leaves_another_changed_locale_rejecting() -> None:
    items = [Delta("th_TH.UTF-8", DeltaStatus.REGRESSION, "moved; REINDEX"),
             Delta("strcoll:th_TH.UTF-8", DeltaStatus.REGRESSION, "strcoll disagrees"),
             Delta("de_DE.UTF-8", DeltaStatus.REGRESSION, "moved; REINDEX")]
    policy = parse_policy(_waiving(f'pattern: "{COLLATION}", items: [th_TH.UTF-8]'), "p.yaml")
    res = results(record(COLLATION, Outcome.FAILED, deltas=items))
    verdict = decide(res, policy, TODAY)
    assert verdict.decision is Decision.REJECT
    [test] = verdict.tests
    assert test.regressions == ("de_DE.UTF-8: moved; REINDEX",)
    assert test.waived_items == ("th_TH.UTF-8", "strcoll:th_TH.UTF-8")  # the locale's items
    assert "de_DE.UTF-8" in verdict.reasons[0] and "th_TH.UTF-8 waived" not in verdict.reasons[0]
    both = parse_policy(_waiving(f'pattern: "{COLLATION}", items: [th_TH.utf8, de_DE.UTF-8]'),
                        "p.yaml")  # a locale's codeset as glibc normalizes it: one item
    assert decide(res, both, TODAY).decision is Decision.PROMOTE


def test_an_exact_id_matches_itself_brackets_included_and_nothing_else() -> None:
    assert pattern_matches(COLLATION, COLLATION)
    assert not pattern_matches(COLLATION, COLLATION.replace("blocking", "advisory"))
    assert not pattern_matches("s/t.py::t[ab]", "s/t.py::ta")
    assert pattern_matches("s/t.py::t[de_*]", "s/t.py::t[de_DE.UTF-8]")
    assert not pattern_matches("s/t.py::t[de_*]", "s/t.py::td")


@pytest.mark.parametrize("pattern", ["*", "collation", "suites/test_collation.py::*", "*::*"])
def test_catch_all_waivers_are_refused(pattern: str) -> None:
    with pytest.raises(InputError, match="too broad"):
        parse_policy(_waiving(f'pattern: "{pattern}"'), "p.yaml")


def test_a_waiver_that_matches_no_test_is_reported() -> None:
    policy = parse_policy(_waiving('pattern: "s/t.py::gone"'), "p.yaml")
    verdict = decide(results(record("s/t.py::t")), policy, TODAY)
    [unused] = verdict.unused_waivers
    assert unused.why == "matches no test of this run"


def test_an_impossible_expiry_date_is_one_line_naming_the_key() -> None:
    with pytest.raises(InputError) as info:
        parse_policy(_waiving('pattern: "s/t.py::t"').replace("2026-12-31", "2026-02-30"),
                     "p.yaml")
    assert str(info.value).startswith("p.yaml: key 'waivers[0].expires': '2026-02-30' is not")


def test_expiry_is_judged_in_utc() -> None:
    from datetime import UTC, datetime

    assert today_utc() == datetime.now(UTC).date()


def test_a_time_bound_is_judged_against_the_baseline() -> None:
    assert bound_verdict(None, 5.0, 60.0) is DeltaStatus.REGRESSION
    assert bound_verdict(None, 50.0, 60.0) is None
    assert bound_verdict(None, None, 60.0) is DeltaStatus.ALSO_FAILS_ON_BASELINE
    assert bound_verdict(10.0, 5.0, 60.0) is DeltaStatus.UNCHANGED


def test_a_passed_test_with_an_inconclusive_delta_is_an_error_never_a_reject() -> None:
    noisy = Delta("read_iops", DeltaStatus.INCONCLUSIVE, "fio read IOPS", "numeric",
                  "too noisy to decide: 3 measurements on a side, at least 5 needed",
                  Value(1.0), Value(2.0))
    verdict = decide(results(record("s/t.py::t", deltas=[noisy])), NONE, TODAY)
    assert verdict.decision is Decision.INCONCLUSIVE
    [test] = verdict.tests
    assert test.effective is Effective.ERROR and "too noisy" in test.message
    assert test.delta == "inconclusive"


def test_a_merged_record_keeps_every_phases_deltas() -> None:
    first = {"outcome": "passed", "message": "", "duration": 1.0,
             "deltas": [Delta("a", DeltaStatus.UNCHANGED).to_dict()]}
    later = {"outcome": "error", "message": "in teardown: x", "duration": 1.0,
             "deltas": [Delta("b", DeltaStatus.FIXED).to_dict()]}
    assert [d["id"] for d in merge_phases(first, later)["deltas"]] == ["a", "b"]
