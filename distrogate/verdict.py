"""The verdict: promote, reject or inconclusive, with reasons, from results and a policy.

Effective outcome of each test, after waivers: ``passed``, ``failed``, ``error``, ``skipped``,
or ``waived`` (failed, but a live waiver covers it). A nodeid that appears in several records
takes its worst outcome (failed > error > skipped > passed).

The decision, worst first:

* **reject** — a blocking test failed and no live waiver covers it;
* **inconclusive** — nothing blocking failed, but a blocking test errored or was skipped, or no
  blocking test ran at all (nothing was checked);
* **promote** — at least one blocking test ran and every blocking test passed (or was waived).

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
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from pathlib import Path
from typing import Any

from distrogate.fsutil import atomic_write_json
from distrogate.policy import Mode, Policy, Waiver
from distrogate.results import Outcome, Results, TestRecord, headline

log = logging.getLogger(__name__)

_GROUP_NAMES = 6
_SEVERITY = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.ERROR: 2, Outcome.FAILED: 3}


class Decision(StrEnum):
    """The gate's answer."""

    PROMOTE = "promote"
    REJECT = "reject"
    INCONCLUSIVE = "inconclusive"


EXIT_CODES = {Decision.PROMOTE: 0, Decision.REJECT: 1, Decision.INCONCLUSIVE: 2}
EXIT_USAGE = 3


class Effective(StrEnum):
    """A test's outcome after waivers."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"
    WAIVED = "waived"


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


@dataclass(frozen=True)
class WaiverUse:
    """A waiver and the tests it covered (or, expired, would have covered)."""

    pattern: str
    reason: str
    tracker: str
    expires: str
    tests: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"pattern": self.pattern, "reason": self.reason, "tracker": self.tracker,
                "expires": self.expires, "tests": list(self.tests)}


@dataclass(frozen=True)
class Verdict:
    """The decision with everything that led to it."""

    decision: Decision
    reasons: list[str]
    advisories: list[str] = field(default_factory=list)
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
            "counts": dict(self.counts),
            "blocking_counts": dict(self.blocking_counts),
            "waivers_applied": [w.to_dict() for w in self.waivers_applied],
            "expired_waivers_ignored": [w.to_dict() for w in self.expired_waivers_ignored],
            "unused_waivers": [w.to_dict() for w in self.unused_waivers],
            "tests": [
                {"nodeid": t.nodeid, "suite": t.suite, "mode": str(t.mode),
                 "outcome": str(t.outcome), "effective": str(t.effective),
                 "message": t.message, "findings": list(t.findings), "waiver": t.waiver}
                for t in self.tests
            ],
            "run_id": self.run_id,
            "today": self.today,
            "policy": self.policy,
        }


def decide(results: Results, policy: Policy, today: date) -> Verdict:
    """Judge a run under a policy on a given day. Pure: no I/O, no clock."""
    tests = [_judge(nodeid, recs, policy, today) for nodeid, recs in _by_nodeid(results.records)]
    blocking = [t for t in tests if t.mode is Mode.BLOCKING]
    decision = _decision(blocking)
    reasons = _reasons(decision, blocking)
    advisories = [_sentence(t) for t in tests
                  if t.mode is Mode.ADVISORY and t.effective is not Effective.PASSED]
    applied, unused = _waiver_uses(policy, tests, today)
    verdict = Verdict(
        decision=decision,
        reasons=reasons,
        advisories=advisories,
        tests=tests,
        waivers_applied=applied,
        expired_waivers_ignored=_expired_uses(policy, tests, today),
        unused_waivers=unused,
        counts=_count(tests),
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


def _judge(nodeid: str, records: list[TestRecord], policy: Policy, today: date) -> TestVerdict:
    worst = max(records, key=lambda r: _SEVERITY[Outcome(r.outcome)])
    outcome = Outcome(worst.outcome)
    mode = policy.mode_for(nodeid, worst.suite)
    waiver = policy.live_waiver(nodeid, today) if outcome is Outcome.FAILED else None
    effective = Effective.WAIVED if waiver is not None else Effective(outcome.value)
    return TestVerdict(
        nodeid=nodeid,
        suite=worst.suite,
        mode=mode,
        outcome=outcome,
        effective=effective,
        message=worst.message,
        findings=tuple(f.title for r in records for f in r.findings),
        waiver=waiver.pattern if waiver is not None else None,
    )


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
    if not blocking:
        reasons.append("no blocking test ran: nothing was checked")
    elif decision is Decision.PROMOTE:
        passed = sum(t.effective is Effective.PASSED for t in blocking)
        reasons.insert(0, f"all {len(blocking)} blocking tests passed"
                       if passed == len(blocking)
                       else f"{passed} of {len(blocking)} blocking tests passed, "
                            f"the rest failed under live waivers")
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
        Effective.PASSED: "passed",
    }[test.effective]
    text = f"{test.mode} test {test.nodeid} {verb}"
    message = headline(test.message)
    if message:
        text += f": {message}"
    if test.findings:
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
        covered = tuple(t.nodeid for t in tests if t.effective is Effective.WAIVED
                        and policy.live_waiver(t.nodeid, today) is waiver)
        (applied if covered else unused).append(_use(waiver, covered))
    return applied, unused


def _expired_uses(policy: Policy, tests: list[TestVerdict], today: date) -> list[WaiverUse]:
    failed = [t.nodeid for t in tests if t.effective is Effective.FAILED]
    return [_use(w, tuple(n for n in failed if w.matches(n)))
            for w in policy.expired_waivers(today)]


def _use(waiver: Waiver, tests: tuple[str, ...]) -> WaiverUse:
    return WaiverUse(pattern=waiver.pattern, reason=waiver.reason, tracker=waiver.tracker,
                     expires=waiver.expires.isoformat(), tests=tests)


def _count(tests: list[TestVerdict]) -> dict[str, int]:
    counts = {str(kind): 0 for kind in Effective}
    for test in tests:
        counts[str(test.effective)] += 1
    counts["total"] = len(tests)
    return counts
