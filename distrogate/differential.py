"""The differential model: how what the candidate did compares with what the baseline did.

A check runs on both images; the comparison of the two sides is a :class:`Delta` with a typed
:class:`DeltaStatus`. Only a *regression* counts against the candidate: a check the promoted
image fails too is reported apart ("also fails on the promoted image"), unless the policy makes
the suite absolute (``suites.<name>.absolute: true``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any


class DeltaStatus(StrEnum):
    """What changed between the baseline and the candidate for one check or item."""

    REGRESSION = "regression"  # the baseline does it, the candidate no longer does
    FIXED = "fixed"  # the candidate does what the baseline failed to do
    ALSO_FAILS_ON_BASELINE = "also-fails-on-baseline"  # both fail: not a regression
    UNCHANGED = "unchanged"  # both behave alike (and pass)
    WITHIN_NOISE = "within-noise"  # a measured difference smaller than the lab's noise


def judge(candidate_ok: bool, baseline_ok: bool) -> DeltaStatus:
    """The status of a pass/fail check from its result on both images."""
    if candidate_ok:
        return DeltaStatus.UNCHANGED if baseline_ok else DeltaStatus.FIXED
    return DeltaStatus.REGRESSION if baseline_ok else DeltaStatus.ALSO_FAILS_ON_BASELINE


@dataclass(frozen=True)
class Item:
    """One thing a test reports on its own (a locale, an nspawn check, a peer pair), with its
    delta. A waiver can name it: ``{pattern: <test id>, items: [<item id>]}``."""

    id: str
    status: DeltaStatus
    title: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        return {"id": self.id, "status": str(self.status), "title": self.title}


def bound_verdict(candidate_seconds: float | None, baseline_seconds: float | None,
                  bound: float, *, margin: float = 2.0) -> DeltaStatus | None:
    """Judge a time bound against the baseline's time on the same lab.

    ``None`` seconds means the side ran out of its bound. Returns a regression when the
    candidate ran out although the baseline finished well inside it (``margin`` times faster
    than the bound), :data:`DeltaStatus.ALSO_FAILS_ON_BASELINE` when both ran out, and
    ``None`` when the lab was too slow to tell (the baseline itself came close to the bound):
    the caller reports that as a lab problem.
    """
    if candidate_seconds is not None:
        return DeltaStatus.UNCHANGED if baseline_seconds is not None else DeltaStatus.FIXED
    if baseline_seconds is None:
        return DeltaStatus.ALSO_FAILS_ON_BASELINE
    if baseline_seconds * margin <= bound:
        return DeltaStatus.REGRESSION
    return None
