"""Properties of the verdict over generated runs and policies (hypothesis)."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from distrogate.policy import Mode, Policy, Rule, Waiver
from distrogate.results import Outcome, Results, RunInfo, TestRecord
from distrogate.verdict import Decision, Effective, decide

# no per-example deadline: a loaded CI machine (VM tests beside) must not turn time into failures
settings.register_profile("verdict-properties", deadline=None)
settings.load_profile("verdict-properties")

TODAY = date(2025, 6, 1)
RANK = {Decision.PROMOTE: 0, Decision.INCONCLUSIVE: 1, Decision.REJECT: 2}
RUN = RunInfo(run_id="r", started="", finished="", candidate={"name": "c", "digest": "1"},
              baseline={"name": "b", "digest": "2"}, suites=[], argv=[], lab={}, host={})


@dataclass(frozen=True)
class Case:
    """A generated test: outcome, mode, and an optional waiver (days until expiry)."""

    outcome: Outcome
    mode: Mode
    waiver_days: int | None


cases = st.lists(
    st.builds(Case, st.sampled_from(list(Outcome)), st.sampled_from(list(Mode)),
              st.none() | st.integers(-30, 30)),
    max_size=12,
)


def nodeid(i: int) -> str:
    return f"suites/test_gen.py::test_{i}"


def build(cs: list[Case]) -> tuple[Results, Policy]:
    records = [TestRecord(nodeid=nodeid(i), outcome=c.outcome, suite="gen", duration=1.0,
                          message=f"m{i}") for i, c in enumerate(cs)]
    rules = tuple(Rule(nodeid(i), c.mode) for i, c in enumerate(cs))
    waivers = tuple(
        Waiver(nodeid(i), "r", "https://t/1", TODAY + timedelta(days=c.waiver_days))
        for i, c in enumerate(cs) if c.waiver_days is not None
    )
    return Results(run=RUN, records=records), Policy(rules=rules, waivers=waivers)


def judge(cs: list[Case]) -> Decision:
    res, policy = build(cs)
    return decide(res, policy, TODAY).decision


def is_live(c: Case) -> bool:
    return c.waiver_days is not None and c.waiver_days >= 0


@given(cases)
def test_unwaived_blocking_failure_rejects(cs: list[Case]) -> None:
    if any(c.mode is Mode.BLOCKING and c.outcome is Outcome.FAILED and not is_live(c)
           for c in cs):
        assert judge(cs) is Decision.REJECT


@given(cases)
def test_promote_iff_all_blocking_passed_or_waived(cs: list[Case]) -> None:
    blocking = [c for c in cs if c.mode is Mode.BLOCKING]
    ok = all(c.outcome is Outcome.PASSED or (c.outcome is Outcome.FAILED and is_live(c))
             for c in blocking)
    assert (judge(cs) is Decision.PROMOTE) == (bool(blocking) and ok)


@given(cases)
def test_promote_without_waivers_iff_all_blocking_passed(cs: list[Case]) -> None:
    cs = [replace(c, waiver_days=None) for c in cs]
    blocking = [c for c in cs if c.mode is Mode.BLOCKING]
    expected = bool(blocking) and all(c.outcome is Outcome.PASSED for c in blocking)
    assert (judge(cs) is Decision.PROMOTE) == expected


@given(cases, st.sampled_from(list(Outcome)))
def test_advisory_tests_never_change_the_decision(cs: list[Case], outcome: Outcome) -> None:
    assert judge([*cs, Case(outcome, Mode.ADVISORY, None)]) is judge(cs)


@given(cases)
def test_expired_waivers_have_no_effect(cs: list[Case]) -> None:
    expired = [replace(c, waiver_days=-1 - abs(c.waiver_days)) if c.waiver_days is not None
               else c for c in cs]
    without = [replace(c, waiver_days=None) for c in cs]
    assert judge(expired) is judge(without)
    res, policy = build(expired)
    assert decide(res, policy, TODAY).waivers_applied == []


@given(cases)
def test_live_waivers_on_every_blocking_failure_promote(cs: list[Case]) -> None:
    passed = [replace(c, outcome=Outcome.PASSED, waiver_days=None) for c in cs]
    failing = [Case(Outcome.FAILED, Mode.BLOCKING, 0), Case(Outcome.FAILED, Mode.BLOCKING, 5)]
    verdict_cases = [*passed, *failing]
    res, policy = build(verdict_cases)
    verdict = decide(res, policy, TODAY)
    assert verdict.decision is Decision.PROMOTE
    assert verdict.counts["waived"] == 2
    assert sum(len(w.tests) for w in verdict.waivers_applied) == 2


@given(cases, st.data())
def test_failing_a_passed_blocking_test_never_improves(cs: list[Case], data: st.DataObject
                                                       ) -> None:
    candidates = [i for i, c in enumerate(cs)
                  if c.mode is Mode.BLOCKING and c.outcome is Outcome.PASSED]
    if not candidates:
        return
    i = data.draw(st.sampled_from(candidates))
    worse = [*cs[:i], replace(cs[i], outcome=Outcome.FAILED), *cs[i + 1:]]
    assert RANK[judge(worse)] >= RANK[judge(cs)]


@given(cases, st.data())
def test_any_outcome_change_of_a_passed_test_never_improves(cs: list[Case], data: st.DataObject
                                                            ) -> None:
    if not cs:
        return
    i = data.draw(st.integers(0, len(cs) - 1))
    before = [*cs[:i], replace(cs[i], outcome=Outcome.PASSED), *cs[i + 1:]]
    after = [*cs[:i], replace(cs[i], outcome=data.draw(st.sampled_from(list(Outcome)))),
             *cs[i + 1:]]
    assert RANK[judge(after)] >= RANK[judge(before)]


@given(cases)
def test_counts_add_up_and_exit_code_matches(cs: list[Case]) -> None:
    res, policy = build(cs)
    verdict = decide(res, policy, TODAY)
    assert sum(verdict.counts[str(k)] for k in Effective) == verdict.counts["total"] == len(cs)
    assert verdict.exit_code == {Decision.PROMOTE: 0, Decision.REJECT: 1,
                                 Decision.INCONCLUSIVE: 2}[verdict.decision]
    if verdict.decision is not Decision.PROMOTE:
        assert verdict.reasons
