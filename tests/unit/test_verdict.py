"""The verdict on hand-made cases: decisions, reasons, waivers, counts, verdict.json."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest
from synth import record, results

from distrogate.differential import Delta, DeltaStatus
from distrogate.errors import InputError
from distrogate.policy import parse_policy
from distrogate.results import Finding, Outcome, TestRecord
from distrogate.verdict import (
    INCONCLUSIVE,
    NOISE_ADVISES,
    Decision,
    Effective,
    decide,
    write_verdict,
)

TODAY = date(2025, 6, 1)
POLICY = parse_policy("""
rules:
  - {pattern: "perf", mode: advisory}
waivers:
  - {pattern: "suites/test_c.py::test_de*", reason: known, tracker: "https://t/1",
     expires: 2025-06-30}
  - {pattern: "suites/test_c.py::test_sv*", reason: old, tracker: "https://t/2",
     expires: 2025-05-01}
  - {pattern: "suites/test_none.py::test_gone", reason: unused, tracker: "https://t/3",
     expires: 2025-12-31}
""", "p.yaml")


def test_reject_reason_names_test_message_and_findings() -> None:
    res = results(
        record("suites/test_x.py::test_ok"),
        record("suites/test_x.py::test_y", Outcome.FAILED, message="assert 3 == 4\nmore",
               findings=[Finding("sort order changed")]),
    )
    verdict = decide(res, POLICY, TODAY)
    assert verdict.decision is Decision.REJECT and verdict.exit_code == 1
    assert verdict.reasons[0] == ("blocking test suites/test_x.py::test_y failed: assert 3 == 4; "
                                  "findings: sort order changed")


def test_reason_drops_the_colon_that_introduced_detail_lines() -> None:
    res = results(record("suites/test_x.py::test_y", Outcome.FAILED,
                         message="2 locale(s) sort differently:\n  de_DE: ...",
                         findings=[Finding("collation of de_DE changed")]))
    [reason] = decide(res, POLICY, TODAY).reasons
    assert reason == ("blocking test suites/test_x.py::test_y failed: 2 locale(s) sort "
                      "differently; findings: collation of de_DE changed")


def test_promote_and_inconclusive_exit_codes() -> None:
    assert decide(results(record("a::t")), POLICY, TODAY).exit_code == 0
    skipped = decide(results(record("a::t", Outcome.SKIPPED, message="no kvm")), POLICY, TODAY)
    assert skipped.decision is Decision.INCONCLUSIVE and skipped.exit_code == 2
    assert skipped.reasons == ["blocking test a::t was skipped: no kvm"]


def test_nothing_blocking_is_inconclusive() -> None:
    verdict = decide(results(record("p::t", suite="perf")), POLICY, TODAY)
    assert verdict.decision is Decision.INCONCLUSIVE
    assert "nothing was checked" in verdict.reasons[0]
    empty = decide(results(), POLICY, TODAY)
    assert empty.decision is Decision.INCONCLUSIVE and empty.counts["total"] == 0


def test_advisory_failure_is_listed_not_decisive() -> None:
    res = results(record("a::t"), record("p::slow", Outcome.FAILED, suite="perf", message="+30%"))
    verdict = decide(res, POLICY, TODAY)
    assert verdict.decision is Decision.PROMOTE
    assert verdict.advisories == ["advisory test p::slow failed: +30%"]


def test_waivers_applied_expired_and_unused() -> None:
    res = results(
        record("suites/test_c.py::test_de_DE", Outcome.FAILED, message="order"),
        record("suites/test_c.py::test_sv_SE", Outcome.FAILED, message="order"),
    )
    verdict = decide(res, POLICY, TODAY)
    assert verdict.decision is Decision.REJECT
    effective = {t.nodeid: t.effective for t in verdict.tests}
    assert effective == {"suites/test_c.py::test_de_DE": Effective.WAIVED,
                         "suites/test_c.py::test_sv_SE": Effective.FAILED}
    [applied] = verdict.waivers_applied
    assert applied.tests == ("suites/test_c.py::test_de_DE",) and applied.tracker == "https://t/1"
    [expired] = verdict.expired_waivers_ignored
    assert expired.expires == "2025-05-01" and expired.tests == ("suites/test_c.py::test_sv_SE",)
    assert [u.pattern for u in verdict.unused_waivers] == ["suites/test_none.py::test_gone"]
    assert verdict.counts["waived"] == 1 and verdict.counts["failed"] == 1


def test_waiver_does_not_cover_errors() -> None:
    res = results(record("suites/test_c.py::test_de_DE", Outcome.ERROR, message="agent gone"))
    verdict = decide(res, POLICY, TODAY)
    assert verdict.decision is Decision.INCONCLUSIVE
    assert verdict.reasons == ["blocking test suites/test_c.py::test_de_DE errored: agent gone"]


def test_duplicate_nodeid_takes_worst_outcome() -> None:
    res = results(record("a::t"), record("a::t", Outcome.ERROR, message="teardown"))
    verdict = decide(res, POLICY, TODAY)
    assert [t.effective for t in verdict.tests] == [Effective.ERROR]
    assert verdict.counts["total"] == 1


def test_write_verdict(tmp_path: Path) -> None:
    verdict = decide(results(record("a::t")), POLICY, TODAY)
    write_verdict(tmp_path / "verdict.json", verdict)
    doc = json.loads((tmp_path / "verdict.json").read_text())
    assert doc["decision"] == "promote" and doc["exit_code"] == 0
    assert doc["tests"][0]["effective"] == "passed"
    assert doc["today"] == "2025-06-01" and doc["run_id"] == "run-1"


def test_one_cause_erroring_many_tests_is_one_reason_naming_them() -> None:
    lab_gone = "LabError: cannot connect to libvirt\n(traceback)"
    res = results(*(record(f"s::t{i}", Outcome.ERROR, message=lab_gone) for i in range(8)),
                  record("s::other", Outcome.ERROR, message="agent gone"))
    verdict = decide(res, POLICY, TODAY)
    assert verdict.decision is Decision.INCONCLUSIVE
    assert verdict.reasons == [
        "8 blocking tests errored: LabError: cannot connect to libvirt "
        "(s::t0, s::t1, s::t2, s::t3, s::t4, s::t5 and 2 more)",
        "blocking test s::other errored: agent gone",
    ]


NOISE_POLICY = parse_policy("""
rules:
  - {pattern: "fio", mode: blocking, noise: advisory}
""", "noise.yaml")


def _noisy(nodeid: str, *extra: Delta) -> TestRecord:
    too_noisy = Delta(f"{nodeid}:p99", DeltaStatus.INCONCLUSIVE, "p99", "numeric",
                      "too noisy to decide: median ratio +14 %")
    return record(nodeid, Outcome.ERROR, suite="fio", deltas=[too_noisy, *extra],
                  message=f"{INCONCLUSIVE}; a lab problem, not a verdict on the image): p99")


def test_noise_advisory_makes_a_too_noisy_comparison_advise_while_regressions_block() -> None:
    quiet = record("suites/test_fio.py::test_job[b]", suite="fio")
    noisy = _noisy("suites/test_fio.py::test_job[a]")
    verdict = decide(results(quiet, noisy), NOISE_POLICY, TODAY)
    assert verdict.decision is Decision.PROMOTE, verdict.reasons
    assert len(verdict.advisories) == 1 and NOISE_ADVISES in verdict.advisories[0]
    # the same results under a policy without the noise rule: an error, inconclusive
    assert decide(results(quiet, noisy), POLICY, TODAY).decision is Decision.INCONCLUSIVE
    # a regression beside the noise still rejects
    regressed = Delta("bw", DeltaStatus.REGRESSION, "bw", "numeric", "-45 %")
    failed = record("suites/test_fio.py::test_job[c]", Outcome.FAILED, suite="fio",
                    deltas=[regressed], message="bw -45 %")
    assert decide(results(quiet, noisy, failed), NOISE_POLICY, TODAY).decision \
        is Decision.REJECT
    # an error that is not the noise (a lab failure) stays an error
    broken = record("suites/test_fio.py::test_job[d]", Outcome.ERROR, suite="fio",
                    deltas=[Delta("x", DeltaStatus.INCONCLUSIVE)], message="LabError: gone")
    assert decide(results(quiet, broken), NOISE_POLICY, TODAY).decision \
        is Decision.INCONCLUSIVE


def test_a_bad_noise_mode_names_the_key() -> None:
    with pytest.raises(InputError, match=r"rules\[0\].noise"):
        parse_policy('rules:\n  - {pattern: fio, mode: blocking, noise: sometimes}\n', "p.yaml")
