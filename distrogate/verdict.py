"""The verdict: promote, reject or inconclusive, with reasons, from results and a policy.

Every planned test is accounted for: a planned test with no record is *error* ("no result").
A test's outcome is the most severe of its records (see :class:`~distrogate.results.Outcome`).

The candidate is judged against the baseline:

* a test parametrized over the images (``X[candidate]`` and ``X[baseline]``) is judged as a
  pair: the candidate failing where the baseline passes is a regression (*failed*); both
  failing is *also-fails-on-baseline*, not a regression; the candidate failing while the
  baseline's side errored or did not run cannot be judged (*error*). The baseline's side never
  blocks on its own;
* a test that compared the images itself says so with its ``deltas`` (one per check or item,
  :class:`~distrogate.differential.Delta`): a failure whose regressions are all waived item by
  item is *waived*; a failure with no regression but failures the baseline shares is
  *also-fails-on-baseline*; a test that passed with an *inconclusive* delta (too noisy, a lab
  too slow to judge a bound) is *error*: it decided nothing. Under a policy rule with
  ``noise: advisory``, such a test (inconclusive, no regression) is advisory instead: its
  regressions still block, its noise does not make the verdict inconclusive;
* ``suites.<name>.absolute: true`` in the policy makes failures the baseline shares count.

Effective outcomes after waivers: ``passed``, ``failed``, ``error``, ``skipped``, ``waived``,
``also-fails-on-baseline``. The decision, worst first:

* **reject** — a blocking test failed and no live waiver covers it;
* **inconclusive** — nothing blocking failed, but a blocking test errored (no result included)
  or was skipped, or no blocking test ran at all (nothing was checked);
* **promote** — at least one blocking test ran and every blocking test passed, was waived, or
  fails on the promoted image too.

Advisory tests never change the decision; their problems are listed in ``advisories``.

Exit codes (``Verdict.exit_code``)::

    0  promote
    1  reject
    2  inconclusive
    3  reserved for the CLI: usage or input errors (bad results file, bad policy)
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from distrogate.differential import Delta, DeltaStatus, overall
from distrogate.fsutil import atomic_write_json
from distrogate.policy import Mode, Policy, Waiver, item_subject
from distrogate.results import Outcome, Results, TestRecord, headline, missing_records, worst

log = logging.getLogger(__name__)

_GROUP_NAMES = 6
#: how the message of a test that passed with an inconclusive comparison begins (the fixture
#: makes such a test an error: a lab too noisy or too slow to judge, not a verdict)
INCONCLUSIVE = "inconclusive (the comparison could not decide"
NOISE_ADVISES = "too noisy to decide; advisory by the policy's rule (noise: advisory)"
_ITEMS_NAMED = 60


class Decision(StrEnum):
    """The gate's answer."""

    PROMOTE = "promote"
    REJECT = "reject"
    INCONCLUSIVE = "inconclusive"


EXIT_CODES = {Decision.PROMOTE: 0, Decision.REJECT: 1, Decision.INCONCLUSIVE: 2}


class Effective(StrEnum):
    """A test's outcome after waivers."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    WAIVED = "waived"
    ALSO_FAILS = "also-fails-on-baseline"


@dataclass(frozen=True)
class TestVerdict:
    """One test as the verdict saw it."""

    __test__ = False  # not a pytest test class

    nodeid: str
    suite: str
    mode: Mode
    outcome: Outcome
    effective: Effective
    message: str = ""
    findings: tuple[str, ...] = ()
    waiver: str | None = None
    role: str = ""  # baseline: the reference side of a pair, never judged on its own
    delta: str = ""  # the DeltaStatus that sums up the test's deltas (the most severe)
    regressions: tuple[str, ...] = ()  # failing items not waived: "id: title"
    waived_items: tuple[str, ...] = ()
    baseline_outcome: str = ""  # for a pair: what the baseline's side did

    @property
    def judged(self) -> bool:
        """Whether this test can change the verdict (the baseline's side of a pair cannot)."""
        return self.role != "baseline"


@dataclass(frozen=True)
class WaiverUse:
    """A waiver and the tests it covered (or, expired, would have covered)."""

    pattern: str
    reason: str
    tracker: str
    expires: str
    tests: tuple[str, ...] = ()
    items: tuple[str, ...] = ()
    why: str = ""  # for an unused waiver: why it covered nothing

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"pattern": self.pattern, "reason": self.reason, "tracker": self.tracker,
                "expires": self.expires, "tests": list(self.tests), "items": list(self.items),
                "why": self.why}


@dataclass(frozen=True)
class Verdict:
    """The decision with everything that led to it."""

    decision: Decision
    reasons: list[str]
    advisories: list[str] = field(default_factory=list)
    baseline_failures: list[str] = field(default_factory=list)
    tests: list[TestVerdict] = field(default_factory=list)
    waivers_applied: list[WaiverUse] = field(default_factory=list)
    expired_waivers_ignored: list[WaiverUse] = field(default_factory=list)
    unused_waivers: list[WaiverUse] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    blocking_counts: dict[str, int] = field(default_factory=dict)
    run_id: str = ""
    today: str = ""
    policy: str = ""

    @property
    def exit_code(self) -> int:
        """0 promote, 1 reject, 2 inconclusive."""
        return EXIT_CODES[self.decision]

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data, as written to verdict.json."""
        return {
            "decision": str(self.decision),
            "exit_code": self.exit_code,
            "reasons": list(self.reasons),
            "advisories": list(self.advisories),
            "also_fails_on_baseline": list(self.baseline_failures),
            "counts": dict(self.counts),
            "blocking_counts": dict(self.blocking_counts),
            "waivers_applied": [w.to_dict() for w in self.waivers_applied],
            "expired_waivers_ignored": [w.to_dict() for w in self.expired_waivers_ignored],
            "unused_waivers": [w.to_dict() for w in self.unused_waivers],
            "tests": [
                {"nodeid": t.nodeid, "suite": t.suite, "mode": str(t.mode),
                 "outcome": str(t.outcome), "effective": str(t.effective),
                 "message": t.message, "findings": list(t.findings), "waiver": t.waiver,
                 "role": t.role, "delta": t.delta, "regressions": list(t.regressions),
                 "waived_items": list(t.waived_items), "baseline_outcome": t.baseline_outcome}
                for t in self.tests
            ],
            "run_id": self.run_id,
            "today": self.today,
            "policy": self.policy,
        }


def decide(results: Results, policy: Policy, today: date,
           planned: Iterable[str] = ()) -> Verdict:
    """Judge a run under a policy on a given day (UTC). Pure: no I/O, no clock.

    ``planned`` are the test ids the run meant to run; one without a record is *error*."""
    records = list(results.records) + missing_records(planned, results.records)
    grouped = _by_nodeid(records)
    baselines = {recs[0].pair: worst(r.outcome for r in recs)
                 for _, recs in grouped if recs[0].role == "baseline" and recs[0].pair}
    tests = [_judge(nodeid, recs, policy, today, baselines) for nodeid, recs in grouped]
    judged = [t for t in tests if t.judged]
    blocking = [t for t in judged if t.mode is Mode.BLOCKING]
    decision = _decision(blocking)
    reasons = _reasons(decision, blocking)
    advisories = [_sentence(t) for t in judged
                  if t.mode is Mode.ADVISORY and t.effective is not Effective.PASSED]
    shared = [_sentence(t) for t in judged if t.effective is Effective.ALSO_FAILS]
    applied, unused = _waiver_uses(policy, tests, today)
    verdict = Verdict(
        decision=decision,
        reasons=reasons,
        advisories=advisories,
        baseline_failures=shared,
        tests=tests,
        waivers_applied=applied,
        expired_waivers_ignored=_expired_uses(policy, tests, today),
        unused_waivers=unused,
        counts=_count(judged),
        blocking_counts=_count(blocking),
        run_id=results.run.run_id,
        today=today.isoformat(),
        policy=policy.source,
    )
    log.info("verdict for run %s: %s", verdict.run_id, decision)
    return verdict


def write_verdict(path: Path, verdict: Verdict) -> None:
    """Write verdict.json atomically."""
    atomic_write_json(path, verdict.to_dict())


def _by_nodeid(records: Iterable[TestRecord]) -> list[tuple[str, list[TestRecord]]]:
    grouped: dict[str, list[TestRecord]] = {}
    for record in records:
        grouped.setdefault(record.nodeid, []).append(record)
    return list(grouped.items())


def judge_record(record: TestRecord, policy: Policy, today: date,
                 baseline: Outcome | None = None) -> TestVerdict:
    """One test's verdict from its record alone (``baseline``: the outcome of its pair's
    baseline side, for a role-parametrized test). pytest shows the result with it."""
    return _judge(record.nodeid, [record], policy, today,
                  {record.pair: baseline} if baseline is not None else {})


def _judge(nodeid: str, records: list[TestRecord], policy: Policy, today: date,
           baselines: dict[str, Outcome]) -> TestVerdict:
    outcome = worst(r.outcome for r in records)
    first = records[0]
    suite = first.suite
    absolute = policy.is_absolute(suite)
    message = "\n".join(dict.fromkeys(r.message for r in records if r.message))
    base = TestVerdict(
        nodeid=nodeid, suite=suite, mode=policy.mode_for(nodeid, suite), outcome=outcome,
        effective=Effective(outcome.value), message=message,
        findings=tuple(f.title for r in records for f in r.findings),
        role=first.role,
    )
    deltas = list({d.id: d for r in records for d in r.deltas}.values())
    summed = overall(deltas)
    if summed is not None:
        base = replace(base, delta=str(summed))
    undecided = [d for d in deltas if d.status is DeltaStatus.INCONCLUSIVE]
    if undecided and outcome is Outcome.PASSED:
        base = replace(base, effective=Effective.ERROR, message="\n".join(
            [f"inconclusive: {d.sentence()}: {d.detail}" for d in undecided] + [message]).strip())
    if undecided and base.mode is Mode.BLOCKING and _only_noisy(records, deltas) \
            and policy.noise_mode_for(nodeid, suite) is Mode.ADVISORY:
        base = replace(base, mode=Mode.ADVISORY,
                       message=f"{NOISE_ADVISES}: {base.message}".strip())
    if first.role == "candidate" and first.pair:
        base = _against_baseline(base, baselines.get(first.pair), absolute)
    if base.effective is not Effective.FAILED:
        return base
    failing = [d for d in deltas if d.status is DeltaStatus.REGRESSION
               or (absolute and d.status is DeltaStatus.ALSO_FAILS_ON_BASELINE)]
    shared = [d for d in deltas if d.status is DeltaStatus.ALSO_FAILS_ON_BASELINE]
    if not absolute and deltas and not failing and shared:
        return replace(base, effective=Effective.ALSO_FAILS)
    waiver = policy.live_waiver(nodeid, today)
    if waiver is not None:
        return replace(base, effective=Effective.WAIVED, waiver=waiver.pattern)
    by_item = policy.live_item_waivers(nodeid, today)
    waived = [i for i in failing if item_subject(i.id) in by_item]
    left = [i for i in failing if item_subject(i.id) not in by_item]
    named = tuple(d.sentence() for d in left)
    if failing and not left:
        patterns = sorted({by_item[item_subject(i.id)].pattern for i in waived})
        return replace(base, effective=Effective.WAIVED, waiver=", ".join(patterns),
                       waived_items=tuple(i.id for i in waived))
    return replace(base, regressions=named, waived_items=tuple(i.id for i in waived))


def _only_noisy(records: list[TestRecord], deltas: list[Delta]) -> bool:
    """Whether a test's only trouble is a comparison too noisy to decide: no regression, and
    every record passed or is the error an inconclusive comparison makes of a pass."""
    return (not any(d.status is DeltaStatus.REGRESSION for d in deltas)
            and all(r.outcome is Outcome.PASSED
                    or (r.outcome is Outcome.ERROR and r.message.startswith(INCONCLUSIVE))
                    for r in records))


def _against_baseline(test: TestVerdict, baseline: Outcome | None, absolute: bool
                      ) -> TestVerdict:
    """The candidate's side of a pair, judged against the baseline's side."""
    shown = str(baseline) if baseline is not None else "no result"
    test = replace(test, baseline_outcome=shown)
    if test.outcome is not Outcome.FAILED:
        if test.outcome is Outcome.PASSED and baseline is Outcome.FAILED:
            return replace(test, delta=str(DeltaStatus.FIXED))
        return test
    if baseline is Outcome.PASSED:
        return replace(test, delta=str(DeltaStatus.REGRESSION))
    if baseline is Outcome.FAILED:
        return replace(test, delta=str(DeltaStatus.ALSO_FAILS_ON_BASELINE),
                       effective=Effective.FAILED if absolute else Effective.ALSO_FAILS)
    return replace(test, effective=Effective.ERROR, message=(
        f"cannot judge the candidate's failure: the baseline's side {shown}; "
        f"candidate: {test.message}"))


def _decision(blocking: list[TestVerdict]) -> Decision:
    effective = {t.effective for t in blocking}
    if Effective.FAILED in effective:
        return Decision.REJECT
    if not blocking or effective & {Effective.ERROR, Effective.SKIPPED}:
        return Decision.INCONCLUSIVE
    return Decision.PROMOTE


def _reasons(decision: Decision, blocking: list[TestVerdict]) -> list[str]:
    reasons = [_sentence(t) for t in blocking if t.effective is Effective.FAILED]
    for kind in (Effective.ERROR, Effective.SKIPPED):
        reasons += _grouped(kind, [t for t in blocking if t.effective is kind])
    reasons += [_sentence(t) for t in blocking if t.effective is Effective.WAIVED]
    reasons += [_sentence(t) for t in blocking if t.effective is Effective.ALSO_FAILS]
    if not blocking:
        reasons.append("no blocking test ran: nothing was checked")
    elif decision is Decision.PROMOTE:
        passed = sum(t.effective is Effective.PASSED for t in blocking)
        if passed == len(blocking):
            reasons.insert(0, f"all {len(blocking)} blocking tests passed")
        else:
            reasons.insert(0, f"{passed} of {len(blocking)} blocking tests passed; the others "
                              f"failed under live waivers or fail on the promoted image too "
                              f"(not regressions)")
    return reasons


def _grouped(kind: Effective, tests: list[TestVerdict]) -> list[str]:
    """One sentence per cause: a dead lab errors every test after it with the same message,
    and the reader needs the cause once with the tests it hit, not the same line N times."""
    by_message: dict[str, list[TestVerdict]] = {}
    for test in tests:
        by_message.setdefault(headline(test.message), []).append(test)
    reasons = []
    for message, group in by_message.items():
        if len(group) == 1 or not message:
            reasons += [_sentence(t) for t in group]
            continue
        names = ", ".join(t.nodeid for t in group[:_GROUP_NAMES])
        if len(group) > _GROUP_NAMES:
            names += f" and {len(group) - _GROUP_NAMES} more"
        verb = "errored" if kind is Effective.ERROR else "were skipped"
        reasons.append(f"{len(group)} blocking tests {verb}: {message} ({names})")
    return reasons


def _sentence(test: TestVerdict) -> str:
    verb = {
        Effective.FAILED: "failed",
        Effective.ERROR: "errored",
        Effective.SKIPPED: "was skipped",
        Effective.WAIVED: f"failed but is waived (waiver {test.waiver!r})",
        Effective.ALSO_FAILS: "fails, but also fails on the promoted image (not a regression)",
        Effective.PASSED: "passed",
    }[test.effective]
    text = f"{test.mode} test {test.nodeid} {verb}"
    message = headline(test.message)
    if message:
        text += f": {message}"
    if test.regressions:
        shown = test.regressions[:_ITEMS_NAMED]
        more = len(test.regressions) - len(shown)
        text += (f"; {len(test.regressions)} regression(s) not waived: " + "; ".join(shown)
                 + (f"; and {more} more" if more > 0 else ""))
        if test.waived_items:
            text += f" ({len(test.waived_items)} waived: {', '.join(test.waived_items)})"
    elif test.findings:
        text += "; findings: " + "; ".join(test.findings)
    return text


def _waiver_uses(
    policy: Policy, tests: list[TestVerdict], today: date
) -> tuple[list[WaiverUse], list[WaiverUse]]:
    applied: list[WaiverUse] = []
    unused: list[WaiverUse] = []
    for waiver in policy.waivers:
        if not waiver.is_live(today):
            continue
        matched = [t for t in tests if waiver.matches(t.nodeid)]
        if waiver.items:
            keys = {item_subject(i) for i in waiver.items}
            covered = tuple(t.nodeid for t in matched
                            if keys & {item_subject(i) for i in t.waived_items})
            items = tuple(i for i in waiver.items
                          if any(item_subject(i) == item_subject(w) for t in matched
                                 for w in t.waived_items))
        else:
            covered = tuple(t.nodeid for t in matched if t.waiver == waiver.pattern)
            items = ()
        if covered:
            applied.append(_use(waiver, covered, items))
            continue
        why = ("matches no test of this run" if not matched
               else "the tests it names did not fail" if not waiver.items
               else "the items it names did not regress")
        unused.append(_use(waiver, tuple(t.nodeid for t in matched), (), why))
    return applied, unused


def _expired_uses(policy: Policy, tests: list[TestVerdict], today: date) -> list[WaiverUse]:
    failed = [t.nodeid for t in tests if t.effective is Effective.FAILED]
    return [_use(w, tuple(n for n in failed if w.matches(n)))
            for w in policy.expired_waivers(today)]


def _use(waiver: Waiver, tests: tuple[str, ...], items: tuple[str, ...] = (),
         why: str = "") -> WaiverUse:
    return WaiverUse(pattern=waiver.pattern, reason=waiver.reason, tracker=waiver.tracker,
                     expires=waiver.expires.isoformat(), tests=tests, items=items or waiver.items,
                     why=why)


def _count(tests: list[TestVerdict]) -> dict[str, int]:
    counts = {str(kind): 0 for kind in Effective}
    for test in tests:
        counts[str(test.effective)] += 1
    counts["total"] = len(tests)
    return counts
