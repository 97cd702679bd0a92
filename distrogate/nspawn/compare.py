"""The nspawn checks in the differential model: each check's result on an image is an
observation, and a rule turns the two sides into a :class:`~distrogate.differential.Delta`.

A check is an expectation about an operation: the rule is :class:`~distrogate.differential.Exact`
with a predicate (the check passed), so a check failing on the candidate and passing on the
baseline is a regression, failing on both is not (also-fails-on-baseline), passing on the
candidate only is fixed. A check the candidate failed by running out of its time bound is judged
by :class:`~distrogate.differential.Bound` against the baseline's time on the same lab: a
regression when the baseline finished well inside the bound, *inconclusive* (a lab problem) when
the baseline itself came close to it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from distrogate.differential import (
    Bound,
    Delta,
    DeltaStatus,
    Exact,
    Observation,
    Rule,
    Value,
    compare,
)
from distrogate.nspawn.checks import CheckResult


def passed(observation: Observation | None) -> bool:
    """Whether a check's observation (:meth:`CheckResult.observation`) says it passed."""
    return isinstance(observation, Value) and isinstance(observation.value, dict) \
        and observation.value.get("passed") is True


def timed_out(result: CheckResult) -> bool:
    """Whether a failed check failed only by running out of its time bound."""
    return not result.ok and not result.not_attempted and (
        result.got.exit_code is None or result.detail.startswith("not reached within"))


def rule_for(candidate: CheckResult, baseline: CheckResult | None,
             bound: float | None = None) -> Rule:
    """The rule that judges ``candidate`` against ``baseline``: its time bound when the
    candidate ran out of it (the bound rule reads ``seconds`` and ``passed`` from the
    observations), else the check's expectation."""
    if bound is not None and baseline is not None and timed_out(candidate) \
            and (baseline.ok or timed_out(baseline)):
        return Bound(bound)
    return Exact(predicate=passed, wanted=candidate.expected)


def observations(candidate: CheckResult, baseline: CheckResult | None,
                 bound: float | None = None) -> tuple[Rule, Observation | None, Observation]:
    """The rule and the two observations (baseline, candidate) that judge one check."""
    return (rule_for(candidate, baseline, bound),
            baseline.observation() if baseline is not None else None, candidate.observation())


def delta_of(candidate: CheckResult, baseline: CheckResult | None,
             bound: float | None = None) -> Delta:
    """The delta of one check from its results on both images (``bound``: the check's time
    bound in seconds). With no baseline result there is nothing to judge a failure against:
    *inconclusive* (a lab problem); a pass is *unchanged*."""
    if baseline is None:
        seen = candidate.observation()
        status = DeltaStatus.UNCHANGED if candidate.ok else DeltaStatus.INCONCLUSIVE
        return Delta(candidate.check, status, candidate.operation, "exact",
                     f"the baseline has no result for this check; the candidate "
                     f"{'passes' if candidate.ok else 'fails'} it", None, seen)
    rule, base, cand = observations(candidate, baseline, bound)
    return compare(candidate.check, rule, base, cand, title=candidate.operation)


def deltas(candidate: Sequence[CheckResult], baseline: Sequence[CheckResult],
           bound_of: Callable[[str], float | None] = lambda _check: None) -> list[Delta]:
    """Pair the results by check name (in the candidate's order) and compare each."""
    by_name = {r.check: r for r in baseline}
    if len(by_name) != len(baseline):
        raise ValueError("baseline results name a check twice")
    return [delta_of(r, by_name.get(r.check), bound_of(r.check)) for r in candidate]
