"""Judging one job's metrics with the numeric rule (:class:`~distrogate.differential.Numeric`).

Per metric: a Mann-Whitney U test at ``alpha`` corrected (Bonferroni) for the number of metrics
judged per job, and the effect as the ratio of medians (candidate / baseline) with a bootstrap
interval at the corrected level. A regression needs significance, a ratio beyond the practical
threshold in the metric's bad direction, and the interval clear of the no-change neighbourhood;
otherwise the delta is within noise, or inconclusive (too noisy: the test is an *error*, never a
reject). Too noisy here means a possible regression the data cannot confirm: the *estimate* is
past the threshold without the rest (``Undecided.ESTIMATE``), or the interval is wider than the
rule's ``max_width``. A 99 % interval of five or six runs nearly always reaches 10 % on a TCG
guest, so with the interval as the criterion every A/A run would be inconclusive. See
:mod:`distrogate.differential.numeric`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from distrogate.differential import Delta, DeltaStatus, Numeric, Sample, Undecided, compare
from distrogate.differential.numeric import Effect
from distrogate.fio.jobs import JOBS, METRICS, check_id
from distrogate.fio.settings import FioSettings


@dataclass(frozen=True)
class Judged:
    """One job's metric judged: the delta (with both samples) and the effect behind it."""

    job: str
    metric: str
    delta: Delta
    effect: Effect | None

    @property
    def status(self) -> DeltaStatus:
        """The delta's status."""
        return self.delta.status


def rule_for(metric: str, settings: FioSettings) -> Numeric:
    """The numeric rule one metric is judged under."""
    return Numeric(direction=METRICS[metric].direction, threshold=settings.threshold,
                   alpha=settings.alpha, metrics=len(settings.metrics),
                   undecided=Undecided.ESTIMATE, name="numeric")


def judge_metric(job: str, metric: str, baseline: Sample, candidate: Sample,
                 settings: FioSettings) -> Judged:
    """Compare one job's metric (see the module)."""
    rule = rule_for(metric, settings)
    title = f"{job}: {METRICS[metric].title} ({JOBS[job].title})"
    delta = compare(check_id(job, metric), rule, baseline, candidate, title=title)
    effect = None
    if min(len(baseline.values), len(candidate.values)) >= rule.min_samples:
        effect = rule.effect(baseline, candidate)
    return Judged(job, metric, delta, effect)


def summary_line(judged: Judged) -> str:
    """``seqread-128k bw: -45.2 % [-50.1 %, -40.3 %], regression``: for findings and notes."""
    if judged.effect is None:
        return f"{judged.job} {judged.metric}: {judged.status}"
    e = judged.effect
    return (f"{judged.job} {judged.metric}: ratio {e.ratio:.3f} ({(e.ratio - 1) * 100:+.1f} %), "
            f"CI [{e.low:.3f}, {e.high:.3f}], p={e.p_value:.3g}: {judged.status}")


def confirmed(first: Judged, repeat: list[Judged] | None) -> Judged:
    """``first`` as the confirmation runs leave it (``repeat``: the same job's metrics judged
    on runs measured anew): a regression stands where the repeat shows the job slower too (a
    regression of any of its metrics: which one clears the corrected level varies with the
    host's load), and is *inconclusive* otherwise (too noisy: the repeat did not show it).
    Anything but a regression in ``first``, or no repeat, is returned unchanged."""
    if first.status is not DeltaStatus.REGRESSION or repeat is None:
        return first
    again = [j for j in repeat if j.status is DeltaStatus.REGRESSION]
    if again:
        status = DeltaStatus.REGRESSION
        detail = (f"{first.delta.detail}; confirmed by the repeat: "
                  + "; ".join(summary_line(j) for j in again))
    else:
        status = DeltaStatus.INCONCLUSIVE
        same = next((j for j in repeat if j.metric == first.metric), None)
        detail = (f"too noisy to decide: the first runs showed a regression "
                  f"({first.delta.detail}), the repeat did not"
                  + (f" ({summary_line(same)})" if same is not None else ""))
    return replace(first, delta=replace(first.delta, status=status, detail=detail))
