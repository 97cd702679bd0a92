"""Comparison rules: exact, set, ordering and time bounds (numeric: :mod:`.numeric`).

Each rule has a ``name`` and ``decide(baseline, candidate) -> Judgement``; ``None`` for a side
means it could not be observed (a locale the image does not ship, a command that never ran).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from distrogate.differential.delta import Judgement
from distrogate.differential.observations import (
    ElementSet,
    Observation,
    Order,
    Output,
    Value,
)
from distrogate.differential.status import DeltaStatus, bound_verdict, judge

NAMED = 12  # elements a sentence names before "and N more"


def _shown(obs: Observation | None) -> str:
    return "nothing observed" if obs is None else obs.describe()


def same(a: Observation | None, b: Observation | None) -> bool:
    """Whether two observations are equal (outputs, sets and orders by digest)."""
    if isinstance(a, Output | ElementSet | Order) and type(a) is type(b):
        return a.digest == b.digest  # type: ignore[union-attr]
    return a == b


def _names(elements: list[str]) -> str:
    more = len(elements) - NAMED
    return ", ".join(elements[:NAMED]) + (f" and {more} more" if more > 0 else "")


@dataclass(frozen=True)
class Exact:
    """Equal observations are *unchanged*; different ones a *regression*.

    With an expectation (``expected``: the observation a good image gives, or ``predicate``:
    whether an observation is good; ``wanted`` says it in words), each side is judged on its
    own and the two combine as :func:`~distrogate.differential.status.judge` does: fixed,
    also-fails-on-baseline, regression, unchanged. A failing candidate whose baseline was
    never observed (``None``) is *inconclusive*: with no control on the same lab, "the
    baseline fails too" would be a guess that promotes."""

    expected: Observation | None = None
    predicate: Callable[[Observation | None], bool] | None = None
    wanted: str = ""
    name: str = "exact"

    def _ok(self, obs: Observation | None) -> bool:
        if self.predicate is not None:
            return self.predicate(obs)
        return same(obs, self.expected)

    def decide(self, baseline: Observation | None, candidate: Observation | None) -> Judgement:
        """Compare the two sides (see the class)."""
        if self.expected is None and self.predicate is None:
            if same(baseline, candidate):
                return Judgement(DeltaStatus.UNCHANGED, f"the same on both images: "
                                                        f"{_shown(candidate)}")
            return Judgement(DeltaStatus.REGRESSION, f"changed: the baseline gave "
                                                     f"{_shown(baseline)}, the candidate "
                                                     f"{_shown(candidate)}")
        wanted = self.wanted or (_shown(self.expected) if self.expected is not None
                                 else "the expected result")
        if baseline is None and not self._ok(candidate):
            return Judgement(DeltaStatus.INCONCLUSIVE,
                             f"expected {wanted}; the candidate gave {_shown(candidate)}, and "
                             "the baseline was not observed (no control on this lab): whether "
                             "the failure is new cannot be told")
        status = judge(self._ok(candidate), self._ok(baseline))
        detail = {
            DeltaStatus.UNCHANGED: f"both images give {wanted}",
            DeltaStatus.FIXED: f"the candidate gives {wanted}; the baseline did not "
                               f"({_shown(baseline)})",
            DeltaStatus.REGRESSION: f"expected {wanted}; the candidate gave {_shown(candidate)} "
                                    f"(the baseline gives it)",
            DeltaStatus.ALSO_FAILS_ON_BASELINE: f"expected {wanted}; the candidate gave "
                                                f"{_shown(candidate)}, the baseline "
                                                f"{_shown(baseline)} too",
        }[status]
        return Judgement(status, detail)


@dataclass(frozen=True)
class SetRule:
    """Elements the baseline has and the candidate lacks are a *regression*, named; elements
    only the candidate has are ``extra`` (unchanged by default, or fixed). ``noun`` names
    the elements in sentences (``locales``)."""

    extra: DeltaStatus = DeltaStatus.UNCHANGED
    noun: str = "elements"
    name: str = "set"

    def decide(self, baseline: Observation | None, candidate: Observation | None) -> Judgement:
        """Compare the two sets (an absent side counts as empty)."""
        base = baseline if isinstance(baseline, ElementSet) else ElementSet.of(())
        cand = candidate if isinstance(candidate, ElementSet) else ElementSet.of(())
        if base.digest == cand.digest:
            return Judgement(DeltaStatus.UNCHANGED, f"the same {base.count} {self.noun}")
        lost = sorted(set(base.elements) - set(cand.elements))
        gained = sorted(set(cand.elements) - set(base.elements))
        if lost:
            return Judgement(DeltaStatus.REGRESSION,
                             f"the candidate lacks {len(lost)} {self.noun} the baseline has: "
                             f"{_names(lost)}")
        if gained:
            return Judgement(self.extra, f"the candidate has {len(gained)} {self.noun} the "
                                         f"baseline lacks: {_names(gained)}")
        return Judgement(DeltaStatus.INCONCLUSIVE,
                         f"the {self.noun} differ beyond the stored elements "
                         f"({base.count} on the baseline, {cand.count} on the candidate)")


@dataclass(frozen=True)
class Ordering:
    """Equal order fingerprints are *unchanged*; different ones a *regression*, naming the
    first differing position when the kept first elements show it. A side with no order
    (``None``, or another kind) is absent: absent on the candidate only is a regression."""

    noun: str = "elements"
    name: str = "ordering"

    def decide(self, baseline: Observation | None, candidate: Observation | None) -> Judgement:
        """Compare the two fingerprints."""
        base = baseline if isinstance(baseline, Order) else None
        cand = candidate if isinstance(candidate, Order) else None
        if base is None or cand is None:
            if cand is None and base is not None:
                return Judgement(DeltaStatus.REGRESSION, "the candidate has no order "
                                                         f"({_shown(candidate)})")
            return Judgement(DeltaStatus.UNCHANGED, "the baseline has no order to compare with")
        if base.digest == cand.digest and base.length == cand.length:
            return Judgement(DeltaStatus.UNCHANGED, f"the same order of {base.length} "
                                                    f"{self.noun}")
        return Judgement(DeltaStatus.REGRESSION, "the order differs: " + first_difference(
            base, cand, self.noun))


def first_difference(base: Order, cand: Order, noun: str = "elements") -> str:
    """Where two orders first differ, as far as their kept first elements tell."""
    for position, (b, c) in enumerate(zip(base.head, cand.head, strict=False)):
        if b != c:
            return (f"first at position {position}: the baseline has {b!r}, the candidate "
                    f"{c!r}")
    if base.length != cand.length:
        return f"{base.length} {noun} on the baseline, {cand.length} on the candidate"
    return f"beyond the first {min(len(base.head), len(cand.head))} of {base.length} {noun}"


def seconds_of(obs: Observation | None) -> float | None:
    """The seconds a :class:`Value` observation holds: a number, or a mapping with
    ``seconds`` (and ``passed``: False means it ran out); ``None``: it ran out of its bound."""
    value = obs.value if isinstance(obs, Value) else None
    if isinstance(value, dict):
        value = value.get("seconds") if value.get("passed", True) is True else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@dataclass(frozen=True)
class Bound:
    """A time bound judged against the baseline's time on the same lab (observations: the
    seconds each side took as a :class:`Value`, ``Value(None)`` when it ran out of the bound; or
    a mapping with ``seconds`` and ``passed``, as a check's result).
    A lab too slow to tell (the baseline itself came within ``margin`` of the bound) is
    *inconclusive*."""

    bound: float
    margin: float = 2.0
    name: str = "bound"

    def decide(self, baseline: Observation | None, candidate: Observation | None) -> Judgement:
        """Judge the candidate's time (see the class)."""
        base, cand = seconds_of(baseline), seconds_of(candidate)
        status = bound_verdict(cand, base, self.bound, margin=self.margin)

        def took(seconds: float | None) -> str:
            return f"ran out of {self.bound:g}s" if seconds is None else f"took {seconds:.1f}s"

        detail = f"the candidate {took(cand)}, the baseline {took(base)} (bound {self.bound:g}s)"
        if status is None:
            return Judgement(DeltaStatus.INCONCLUSIVE, detail + ": the baseline did not finish "
                             "within a safe margin of the bound either (the lab is too slow)")
        return Judgement(status, detail)
