"""Statistical power of the numeric rule, by simulation: how often it calls a real change of a
given size a regression with ``n`` runs per image, and how often it calls no change one (the
false-positive rate).

Noise model: each run's value is the true value times a log-normal factor with ``sigma`` = the
coefficient of variation (CV) of the runs (TCG on a shared host: a few % to 15 %). A change of
``effect`` (0.20: 20 %) is a ratio in the metric's bad direction: 1 - effect for throughput,
1 + effect for latency. Every simulated pair of samples is judged by the very rule the suite
uses (Mann-Whitney U with Bonferroni, the bootstrap interval, the threshold), so the figure is
the power of the gate, not of a textbook test.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from distrogate.differential import DeltaStatus, Direction, Numeric, Sample


@dataclass(frozen=True)
class Power:
    """The simulated rates of one setting."""

    runs: int
    cv: float
    effect: float
    detected: float  # fraction judged a regression
    inconclusive: float  # fraction judged too noisy
    simulations: int

    def sentence(self) -> str:
        """``detects a 20 % change with 87 % power (6 runs per image, noise CV 5 %)``."""
        return (f"detects a {self.effect * 100:g} % change with {self.detected * 100:.0f} % "
                f"power ({self.runs} runs per image, noise CV {self.cv * 100:g} %, "
                f"{self.simulations} simulations)")


def simulate(rule: Numeric, runs: int, cv: float, effect: float, *, simulations: int = 200,
             seed: int = 1, resamples: int = 500) -> Power:
    """Judge ``simulations`` simulated sample pairs under ``rule`` (see the module)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    bad = 1 - effect if rule.direction is Direction.HIGHER_IS_BETTER else 1 + effect
    fast = replace(rule, resamples=resamples)
    detected = inconclusive = 0
    for _ in range(simulations):
        base = 1000.0 * rng.lognormal(0.0, cv, runs)
        cand = 1000.0 * bad * rng.lognormal(0.0, cv, runs)
        status = fast.decide(Sample.of(base, "x"), Sample.of(cand, "x")).status
        detected += status is DeltaStatus.REGRESSION
        inconclusive += status is DeltaStatus.INCONCLUSIVE
    return Power(runs, cv, effect, detected / simulations, inconclusive / simulations,
                 simulations)


def runs_for(rule: Numeric, cv: float, effect: float = 0.20, power: float = 0.80, *,
             low: int = 5, high: int = 15, simulations: int = 200) -> Power | None:
    """The fewest runs per image (``low`` to ``high``) that detect ``effect`` with at least
    ``power`` at noise ``cv``; None if none does."""
    for runs in range(low, high + 1):
        found = simulate(rule, runs, cv, effect, simulations=simulations)
        if found.detected >= power:
            return found
    return None


def cv_of(sample: Sample) -> float:
    """A robust coefficient of variation of a sample: 1.4826 × MAD / median (0 for an
    empty or zero-median sample)."""
    import numpy as np

    values = np.asarray(sample.values, dtype=float)
    if values.size == 0:
        return 0.0
    median = float(np.median(values))
    if median == 0:
        return 0.0
    return float(1.4826 * np.median(np.abs(values - median)) / abs(median))
