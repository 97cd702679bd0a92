"""Judging a roll-forward run against its control run with the differential model.

The control rolls the baseline onto the baseline, the real run rolls it onto the candidate,
on the same lab; the control plays the baseline's side of every comparison. Checks are
:class:`~distrogate.differential.Exact` rules with an expectation (a step that fails in both
is not a regression); times use :class:`FarLonger`.
"""

from __future__ import annotations

from dataclasses import dataclass

from distrogate.differential import DeltaStatus, Judgement, Observation, Value


def _seconds(observation: Observation | None) -> float | None:
    if isinstance(observation, Value) and isinstance(observation.value, int | float):
        return float(observation.value)
    return None


@dataclass(frozen=True)
class FarLonger:
    """A step's time or an unavailability window (a :class:`Value` of seconds) is a
    regression when the real run's exceeds ``slowdown`` × the control's + ``slack``; a side
    without a time (the step did not run) is left to the step checks (*unchanged*)."""

    slowdown: float
    slack: float
    name: str = "far-longer"

    def decide(self, baseline: Observation | None, candidate: Observation | None) -> Judgement:
        """Compare the two times (see the class)."""
        control, real = _seconds(baseline), _seconds(candidate)
        if control is None or real is None:
            return Judgement(DeltaStatus.UNCHANGED, "not timed on both runs")
        limit = self.slowdown * control + self.slack
        detail = (f"{real:.1f}s on the candidate against {control:.1f}s in the control "
                  f"(far longer: over {limit:.1f}s)")
        if real > limit:
            return Judgement(DeltaStatus.REGRESSION, detail)
        return Judgement(DeltaStatus.WITHIN_NOISE if real > control else DeltaStatus.UNCHANGED,
                         detail)
