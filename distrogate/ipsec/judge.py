"""Judging the three pairs against each other with the differential model.

Each step (an SA comes up, ping6 through it, ...) is run on three pairs: baseline↔baseline
(the fleet today), candidate↔candidate (the fleet after the roll-forward) and
candidate↔baseline (the middle of every roll-forward). For each step there are two checks, each
a :class:`~distrogate.differential.Delta` whose *baseline* side is the baseline pair:

* ``<step>:candidate-candidate`` — what the new image does with itself;
* ``<step>:candidate-baseline`` — what the new image does with the old one. When this fails
  while candidate↔candidate works, the finding says *interop regression*.

An observation is a :class:`~distrogate.differential.Value` of a mapping ``{"ok": bool,
"seconds": float | None, "detail": str}`` (:func:`outcome`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from distrogate.differential import DeltaStatus, Judgement, Observation, Value, bound_verdict
from distrogate.differential.status import judge

BB, CC, CB = "baseline-baseline", "candidate-candidate", "candidate-baseline"
PAIRS = (BB, CC, CB)
ARROWS = {BB: "baseline↔baseline", CC: "candidate↔candidate", CB: "candidate↔baseline"}


def outcome(ok: bool, detail: str = "", seconds: float | None = None,
            waited: float | None = None) -> Value:
    """The observation of one step on one pair; ``waited``: for a step that failed because a
    bounded wait ran out, the seconds it waited."""
    fields: dict[str, Any] = {"ok": bool(ok),
                              "seconds": None if seconds is None else round(seconds, 2),
                              "detail": detail}
    if waited is not None:
        fields["waited"] = round(waited, 2)
    return Value(fields)


def _fields(obs: Observation | None) -> dict[str, Any]:
    value = obs.value if isinstance(obs, Value) else None
    return value if isinstance(value, dict) else {"ok": False, "seconds": None,
                                                  "detail": "not observed"}


def check_id(step: str, pair: str) -> str:
    """The id of ``step`` on ``pair`` (a waiver names it alone): ``sa_up:candidate-baseline``."""
    return f"{step}:{pair}"


@dataclass(frozen=True)
class StepRule:
    """A step on a candidate pair (``pair``: candidate-candidate or candidate-baseline) judged
    against the same step on the baseline pair. ``interop_ok``: for candidate-baseline, whether
    candidate↔candidate passed the step (a failure then is an interop regression). ``bound``:
    seconds the step may take, judged against the baseline pair's time (0: no bound). A
    candidate whose bounded wait ran out (``waited`` in its observation) while the baseline
    pair needed more than ``1 / margin`` of that wait is inconclusive, not a regression."""

    step: str
    pair: str
    interop_ok: bool | None = None
    bound: float = 0.0
    margin: float = 2.0
    name: str = "ipsec-pair"

    def decide(self, baseline: Observation | None, candidate: Observation | None) -> Judgement:
        """Compare the pair's outcome with the baseline pair's (see the class)."""
        base, cand = _fields(baseline), _fields(candidate)
        base_ok, cand_ok = bool(base.get("ok")), bool(cand.get("ok"))
        status = judge(cand_ok, base_ok)
        arrow = ARROWS.get(self.pair, self.pair)

        def said(fields: dict[str, Any]) -> str:
            took = fields.get("seconds")
            text = str(fields.get("detail") or ("passed" if fields.get("ok") else "failed"))
            return text + (f" in {took:.1f}s" if isinstance(took, int | float) else "")

        if status is DeltaStatus.UNCHANGED and self.bound:
            timed = bound_verdict(
                cand["seconds"] if isinstance(cand.get("seconds"), int | float)
                and cand["seconds"] <= self.bound else None,
                base["seconds"] if isinstance(base.get("seconds"), int | float)
                and base["seconds"] <= self.bound else None, self.bound, margin=self.margin)
            if timed is None:
                return Judgement(DeltaStatus.INCONCLUSIVE,
                                 f"{arrow} {self.step}: {said(cand)}; the baseline pair "
                                 f"{said(base)}: too close to the {self.bound:g}s bound to "
                                 f"judge (the lab is too slow)")
            status = timed
        waited, took = cand.get("waited"), base.get("seconds")
        if status is DeltaStatus.REGRESSION and isinstance(waited, int | float) \
                and isinstance(took, int | float) and took * self.margin > waited:
            # the candidate's wait ran out, and the baseline pair needed more than 1/margin of
            # that wait on the same lab: a slow lab, not the image, may have run it out
            return Judgement(DeltaStatus.INCONCLUSIVE,
                             f"{arrow} {self.step}: {said(cand)}; the baseline pair needed "
                             f"{took:.0f}s of the {waited:g}s the candidate waited: too slow a "
                             f"lab to tell a hang from slowness")
        if status is DeltaStatus.REGRESSION:
            prefix = ("interop regression: candidate↔baseline fails at "
                      f"{self.step} while candidate↔candidate works"
                      if self.pair == CB and self.interop_ok else
                      f"regression: {arrow} fails at {self.step}")
            return Judgement(status, f"{prefix}: {said(cand)}; the baseline pair "
                                     f"(baseline↔baseline) did: {said(base)}")
        if status is DeltaStatus.ALSO_FAILS_ON_BASELINE:
            return Judgement(status, f"{arrow} {self.step}: {said(cand)}; the baseline pair "
                                     f"fails too: {said(base)}")
        if status is DeltaStatus.FIXED:
            return Judgement(status, f"{arrow} {self.step}: {said(cand)}; the baseline pair "
                                     f"did not: {said(base)}")
        return Judgement(status, f"{arrow} {self.step}: {said(cand)}; baseline pair: "
                                 f"{said(base)}")
