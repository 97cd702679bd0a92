"""The numeric rule: two samples of measurements compared with statistics (scipy).

The effect is the ratio of medians (candidate / baseline) with a bootstrap confidence interval
(:func:`scipy.stats.bootstrap`, percentile method, seeded: the same samples give the same
judgement). Significance is a two-sided Mann-Whitney U test at ``alpha`` divided by the number
of metrics judged together (Bonferroni); the interval's level is ``1 - alpha / metrics`` too.

* **regression**: significant, the ratio beyond the practical ``threshold`` in the bad direction,
  and the interval clear of the no-change neighbourhood (``1 ± threshold / 2``) on that side;
* **inconclusive** ("too noisy"): fewer than ``min_samples`` per side, or no regression but an
  interval that reaches past the bad threshold (the data cannot rule a practical regression
  out), or an interval wider than ``max_width``. With ``undecided=Undecided.ESTIMATE`` the
  second condition is the *estimate* past the bad threshold instead of the interval (a
  possible regression the data cannot confirm): for measurements with few runs on a noisy
  machine, where a 99 % interval of a handful of runs nearly always reaches 10 % (the fio
  suite; its A/A calibration measures what this costs);
* **unchanged** for a practical *improvement* (not a regression; the detail says how much);
* **within-noise** otherwise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from distrogate.differential.delta import Judgement
from distrogate.differential.observations import Observation, Sample
from distrogate.differential.status import DeltaStatus

if TYPE_CHECKING:
    import numpy as np


class Undecided(StrEnum):
    """When a comparison that is not a regression is "too noisy" rather than "within noise"."""

    INTERVAL = "interval"  # the interval reaches past the bad threshold
    ESTIMATE = "estimate"  # the estimate itself is past the bad threshold


class Direction(StrEnum):
    """Which way is better for a metric."""

    HIGHER_IS_BETTER = "higher_is_better"  # throughput
    LOWER_IS_BETTER = "lower_is_better"  # latency, time


@dataclass(frozen=True)
class Effect:
    """The measured effect: ratio of medians with its interval and the test's p-value."""

    ratio: float
    low: float
    high: float
    p_value: float
    alpha: float

    def percent(self) -> str:
        """``+12.3 % (CI +8.1 % … +16.0 %, p=0.001)``."""
        def pct(x: float) -> str:
            return f"{(x - 1) * 100:+.1f} %"
        return f"{pct(self.ratio)} (CI {pct(self.low)} … {pct(self.high)}, p={self.p_value:.3g})"


@dataclass(frozen=True)
class Numeric:
    """Compare two :class:`Sample` observations (see the module)."""

    direction: Direction = Direction.LOWER_IS_BETTER
    threshold: float = 0.10
    alpha: float = 0.05
    metrics: int = 1
    min_samples: int = 5
    max_width: float = 1.0  # widest acceptable interval, as a ratio span
    resamples: int = 2000
    seed: int = 0
    undecided: Undecided = Undecided.INTERVAL
    name: str = "numeric"

    def effect(self, base: Sample, cand: Sample) -> Effect:
        """The ratio of medians, its bootstrap interval and the Mann-Whitney U p-value."""
        import numpy as np  # scipy and numpy load only where samples are compared
        from scipy import stats

        alpha = self.alpha / max(1, self.metrics)
        b, c = np.asarray(base.values, dtype=float), np.asarray(cand.values, dtype=float)
        p_value = float(stats.mannwhitneyu(c, b, alternative="two-sided").pvalue)
        ratio = _ratio(b, c)
        if np.ptp(b) == 0 and np.ptp(c) == 0:
            low = high = ratio  # no spread: nothing to resample
        else:
            result = stats.bootstrap((b, c), _ratio_statistic, paired=False, vectorized=True,
                                     confidence_level=1 - alpha, n_resamples=self.resamples,
                                     method="percentile", rng=np.random.default_rng(self.seed))
            low = float(result.confidence_interval.low)
            high = float(result.confidence_interval.high)
        return Effect(ratio, low, high, p_value, alpha)

    def decide(self, baseline: Observation | None, candidate: Observation | None) -> Judgement:
        """Judge the candidate's sample against the baseline's (see the module)."""
        if not isinstance(baseline, Sample) or not isinstance(candidate, Sample):
            return Judgement(DeltaStatus.INCONCLUSIVE, "too noisy to decide: a side has no "
                                                       "sample of measurements")
        fewest = min(len(baseline.values), len(candidate.values))
        if fewest < self.min_samples:
            return Judgement(DeltaStatus.INCONCLUSIVE,
                             f"too noisy to decide: {fewest} measurements on a side, at least "
                             f"{self.min_samples} needed")
        if min(baseline.values) <= 0 and self.direction is Direction.LOWER_IS_BETTER \
                and _median(baseline.values) <= 0:
            return Judgement(DeltaStatus.INCONCLUSIVE, "the baseline's median is not positive: "
                                                       "a ratio cannot be taken")
        effect = self.effect(baseline, candidate)
        return Judgement(self._status(effect), self._detail(effect, baseline.unit))

    def status_of(self, e: Effect) -> DeltaStatus:
        """The status an effect gets under this rule (see the module)."""
        return self._status(e)

    def _status(self, e: Effect) -> DeltaStatus:
        t = self.threshold
        worse = self.direction is Direction.LOWER_IS_BETTER
        # "bad" side of 1: above for lower-is-better metrics, below for higher-is-better ones
        bad_estimate = e.ratio > 1 + t if worse else e.ratio < 1 - t
        clear_bad = e.low > 1 + t / 2 if worse else e.high < 1 - t / 2
        good_estimate = e.ratio < 1 - t if worse else e.ratio > 1 + t
        clear_good = e.high < 1 - t / 2 if worse else e.low > 1 + t / 2
        significant = e.p_value < e.alpha
        if not all(math.isfinite(x) for x in (e.ratio, e.low, e.high)):
            return DeltaStatus.INCONCLUSIVE
        if significant and bad_estimate and clear_bad:
            return DeltaStatus.REGRESSION
        if significant and good_estimate and clear_good:
            return DeltaStatus.UNCHANGED
        if self.undecided is Undecided.ESTIMATE:
            reaches_bad = bad_estimate
        else:
            reaches_bad = e.high > 1 + t if worse else e.low < 1 - t
        if reaches_bad or e.high - e.low > self.max_width:
            return DeltaStatus.INCONCLUSIVE
        return DeltaStatus.WITHIN_NOISE

    def _detail(self, e: Effect, unit: str) -> str:
        worse = "slower" if self.direction is Direction.LOWER_IS_BETTER else "lower"
        status = self._status(e)
        lead = {
            DeltaStatus.REGRESSION: f"the candidate is {worse}",
            DeltaStatus.UNCHANGED: "the candidate is better",
            DeltaStatus.INCONCLUSIVE: "too noisy to decide",
            DeltaStatus.WITHIN_NOISE: "within noise",
        }.get(status, str(status))
        return (f"{lead}: median ratio {e.percent()} in {unit or 'the unit measured'}; practical "
                f"threshold {self.threshold * 100:g} %, alpha {e.alpha:.3g} "
                f"({self.metrics} metric(s))")


def _median(values: tuple[float, ...]) -> float:
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def _ratio(b: np.ndarray, c: np.ndarray) -> float:
    import numpy as np

    mb = float(np.median(b))
    return float(np.median(c)) / mb if mb else math.inf


def _ratio_statistic(b: np.ndarray, c: np.ndarray, axis: int = -1) -> np.ndarray:
    """Ratio of medians along ``axis`` (vectorized, for the bootstrap's resamples)."""
    import numpy as np

    with np.errstate(divide="ignore", invalid="ignore"):
        out: np.ndarray = np.median(c, axis=axis) / np.median(b, axis=axis)
    return out
