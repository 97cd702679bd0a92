"""Compare the checks of the candidate with those of the baseline (the differential model).

A check failing on the candidate and passing on the baseline is a regression; failing on both
is an existing failure the baseline shares (not a regression); passing on the candidate only is
a fix. A check the candidate failed by running out of its time bound is judged against the
baseline's time on the same lab: a regression when the baseline finished well inside the bound,
a lab problem (``status`` None) when the baseline itself came close to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from distrogate.differential import DeltaStatus, bound_verdict, judge
from distrogate.nspawn.checks import CheckResult


@dataclass(frozen=True)
class Comparison:
    """One check on both images; ``status`` None: the lab was too slow to judge it."""

    check: str
    status: DeltaStatus | None
    candidate: CheckResult
    baseline: CheckResult | None

    def describe(self) -> str:
        """One line naming the operation, the expectation, and what each image did."""
        base = self.baseline.summary() if self.baseline is not None else "did not run"
        if self.status is DeltaStatus.UNCHANGED:
            return f"{self.candidate.operation}: passes on both"
        if self.status is DeltaStatus.FIXED:
            return f"{self.candidate.operation}: passes on the candidate; the baseline: {base}"
        where = {
            DeltaStatus.REGRESSION: "regression: the baseline passes this check",
            DeltaStatus.ALSO_FAILS_ON_BASELINE: "not a regression: the baseline fails it too",
        }.get(self.status, "cannot be judged: the baseline did not finish within a safe "  # type: ignore[arg-type]
              "margin of the bound either (the lab is too slow)")
        return f"candidate: {self.candidate.summary()}; baseline: {base} — {where}"


def timed_out(result: CheckResult) -> bool:
    """Whether a failed check failed only by running out of its time bound."""
    return not result.ok and not result.not_attempted and (
        result.got.exit_code is None or result.detail.startswith("not reached within"))


def classify(candidate: CheckResult, baseline: CheckResult | None,
             bound: float | None = None) -> DeltaStatus | None:
    """The delta of a check from its results on both images (``bound``: the check's time
    bound in seconds, to judge a candidate that ran out of it)."""
    if baseline is None:
        return DeltaStatus.UNCHANGED if candidate.ok else None
    if bound is not None and timed_out(candidate) and (baseline.ok or timed_out(baseline)):
        return bound_verdict(None, baseline.seconds if baseline.ok else None, bound)
    return judge(candidate.ok, baseline.ok)


def compare(candidate: Sequence[CheckResult], baseline: Sequence[CheckResult],
            bound_of: Callable[[str], float | None] = lambda _check: None) -> list[Comparison]:
    """Pair the results by check name (in the candidate's order) and classify each."""
    by_name = {r.check: r for r in baseline}
    if len(by_name) != len(baseline):
        raise ValueError("baseline results name a check twice")
    return [Comparison(r.check, classify(r, by_name.get(r.check), bound_of(r.check)), r,
                       by_name.get(r.check)) for r in candidate]
