"""Delta statuses: how the candidate compares with the baseline on one check.

Only a *regression* counts against the candidate: a check the promoted image fails too is
reported apart ("also fails on the promoted image"), unless the policy makes the suite absolute
(``suites.<name>.absolute: true``). *Inconclusive* means the comparison could not decide (too few
or too noisy measurements, a lab too slow to judge a time bound): the recording fixture turns a
test with an inconclusive delta into an *error* (a lab problem), never a reject.
"""

from __future__ import annotations

from enum import StrEnum


class DeltaStatus(StrEnum):
    """What changed between the baseline and the candidate for one check."""

    REGRESSION = "regression"  # the baseline does it, the candidate no longer does
    FIXED = "fixed"  # the candidate does what the baseline failed to do
    ALSO_FAILS_ON_BASELINE = "also-fails-on-baseline"  # both fail: not a regression
    UNCHANGED = "unchanged"  # both behave alike (and pass)
    WITHIN_NOISE = "within-noise"  # a measured difference smaller than the lab's noise
    INCONCLUSIVE = "inconclusive"  # could not decide (too noisy, too few samples, lab too slow)

    @property
    def rank(self) -> int:
        """Severity, for the one status that sums up several deltas (regression is worst)."""
        return _RANK[self]


_RANK = {DeltaStatus.UNCHANGED: 0, DeltaStatus.WITHIN_NOISE: 1, DeltaStatus.FIXED: 2,
         DeltaStatus.ALSO_FAILS_ON_BASELINE: 3, DeltaStatus.INCONCLUSIVE: 4,
         DeltaStatus.REGRESSION: 5}


def judge(candidate_ok: bool, baseline_ok: bool) -> DeltaStatus:
    """The status of a pass/fail check from its result on both images."""
    if candidate_ok:
        return DeltaStatus.UNCHANGED if baseline_ok else DeltaStatus.FIXED
    return DeltaStatus.REGRESSION if baseline_ok else DeltaStatus.ALSO_FAILS_ON_BASELINE


def bound_verdict(candidate_seconds: float | None, baseline_seconds: float | None,
                  bound: float, *, margin: float = 2.0) -> DeltaStatus | None:
    """Judge a time bound against the baseline's time on the same lab.

    ``None`` seconds means the side ran out of its bound. Returns a regression when the
    candidate ran out although the baseline finished well inside it (``margin`` times faster
    than the bound), :data:`DeltaStatus.ALSO_FAILS_ON_BASELINE` when both ran out, and
    ``None`` when the lab was too slow to tell (the baseline itself came close to the bound):
    the caller reports that as a lab problem (:class:`~distrogate.differential.rules.Bound`
    makes it an inconclusive delta).
    """
    if candidate_seconds is not None:
        return DeltaStatus.UNCHANGED if baseline_seconds is not None else DeltaStatus.FIXED
    if baseline_seconds is None:
        return DeltaStatus.ALSO_FAILS_ON_BASELINE
    if baseline_seconds * margin <= bound:
        return DeltaStatus.REGRESSION
    return None
