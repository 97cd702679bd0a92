"""Compare the checks of the candidate with those of the baseline.

A check failing on the candidate and passing on the baseline is a regression; failing on both
is still a failure of the candidate, but an existing one (not a regression); passing on the
candidate only is a fix.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass

from distrogate.nspawn.checks import CheckResult


class Status(enum.StrEnum):
    """The differential status of one check."""

    PASSED = "passed"  # ok on both
    REGRESSION = "regression"  # fails on the candidate, ok on the baseline
    FAILS_ON_BOTH = "fails-on-both"  # a failure of the candidate that the baseline shares
    FIXED = "fixed"  # ok on the candidate, fails on the baseline
    NO_BASELINE = "no-baseline"  # the baseline did not run this check


@dataclass(frozen=True)
class Comparison:
    """One check on both images."""

    check: str
    status: Status
    candidate: CheckResult
    baseline: CheckResult | None

    @property
    def candidate_failed(self) -> bool:
        """Whether the candidate failed this check (a regression or not)."""
        return not self.candidate.ok

    def describe(self) -> str:
        """One line naming the operation, the expectation, what came back and on which image."""
        if self.status is Status.PASSED:
            return f"{self.candidate.operation}: passes on both"
        if self.status is Status.FIXED:
            assert self.baseline is not None
            return (f"{self.candidate.operation}: passes on the candidate; the baseline "
                    f"fails it ({self.baseline.summary()})")
        where = {
            Status.REGRESSION: "regression: the baseline passes this check",
            Status.FAILS_ON_BOTH: "not a regression: the baseline fails it too",
            Status.NO_BASELINE: "the baseline did not run this check",
        }[self.status]
        return f"{self.candidate.summary()} — {where}"


def classify(candidate: CheckResult, baseline: CheckResult | None) -> Status:
    """The :class:`Status` of a check from its results on both images."""
    if baseline is None:
        return Status.PASSED if candidate.ok else Status.NO_BASELINE
    if candidate.ok:
        return Status.PASSED if baseline.ok else Status.FIXED
    return Status.FAILS_ON_BOTH if not baseline.ok else Status.REGRESSION


def compare(candidate: Sequence[CheckResult],
            baseline: Sequence[CheckResult]) -> list[Comparison]:
    """Pair the results by check name (in the candidate's order) and classify each."""
    by_name = {r.check: r for r in baseline}
    if len(by_name) != len(baseline):
        raise ValueError("baseline results name a check twice")
    return [Comparison(r.check, classify(r, by_name.get(r.check)), r, by_name.get(r.check))
            for r in candidate]
