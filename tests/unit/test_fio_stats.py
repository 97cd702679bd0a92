"""The fio suite's statistics on synthetic samples with known effects: the numeric rule
(Mann-Whitney U, bootstrap interval on the median ratio, Bonferroni, the practical threshold)
as the suite configures it, and the power simulation."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from distrogate.differential import DeltaStatus, Direction, Numeric, Sample, Undecided
from distrogate.fio.judge import confirmed, judge_metric, rule_for, summary_line
from distrogate.fio.power import cv_of, runs_for, simulate
from distrogate.fio.settings import FioSettings

SETTINGS = FioSettings()


def _sample(centre: float, cv: float, n: int, seed: int, unit: str = "IO/s") -> Sample:
    rng = np.random.default_rng(seed)
    return Sample.of(centre * rng.lognormal(0.0, cv, n), unit)


def test_a_40_percent_throughput_loss_is_a_regression_named_with_ratio_and_interval() -> None:
    judged = judge_metric("seqread-128k", "bw", _sample(1000, 0.05, 6, 1),
                          _sample(600, 0.05, 6, 2), SETTINGS)
    assert judged.status is DeltaStatus.REGRESSION
    assert judged.effect is not None
    assert 0.5 < judged.effect.low < judged.effect.ratio < judged.effect.high < 0.7
    assert judged.delta.id == "seqread-128k:bw"
    assert "lower" in judged.delta.detail and "CI" in judged.delta.detail
    assert "seqread-128k bw: ratio 0." in summary_line(judged)


def test_a_40_percent_latency_rise_is_a_regression_and_a_fall_is_not() -> None:
    slower = judge_metric("randread-4k-qd1", "clat_p99", _sample(100, 0.05, 6, 3, "µs"),
                          _sample(140, 0.05, 6, 4, "µs"), SETTINGS)
    assert slower.status is DeltaStatus.REGRESSION
    faster = judge_metric("randread-4k-qd1", "clat_p99", _sample(100, 0.05, 6, 3, "µs"),
                          _sample(60, 0.05, 6, 4, "µs"), SETTINGS)
    assert faster.status is DeltaStatus.UNCHANGED  # an improvement, never a regression


def test_a_change_below_the_threshold_is_within_noise() -> None:
    judged = judge_metric("randread-4k-qd32", "iops", _sample(1000, 0.02, 9, 5),
                          _sample(970, 0.02, 9, 6), SETTINGS)
    assert judged.status is DeltaStatus.WITHIN_NOISE


def test_a_possible_regression_the_noise_hides_is_inconclusive() -> None:
    judged = judge_metric("randread-4k-qd32", "iops", _sample(1000, 0.30, 6, 7),
                          _sample(800, 0.30, 6, 8), SETTINGS)
    assert judged.status is DeltaStatus.INCONCLUSIVE


def test_the_correction_follows_the_number_of_metrics_judged() -> None:
    one = rule_for("iops", FioSettings(metrics=("iops",)))
    five = rule_for("iops", SETTINGS)
    assert one.metrics == 1 and five.metrics == 5
    assert five.undecided is Undecided.ESTIMATE
    base, cand = _sample(1000, 0.08, 5, 9), _sample(780, 0.08, 5, 10)
    assert one.effect(base, cand).alpha == 0.05
    assert five.effect(base, cand).alpha == 0.01


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), cv=st.floats(0.0, 0.3), n=st.integers(5, 12),
       metric=st.sampled_from(["iops", "clat_p99"]))
def test_the_same_sample_on_both_sides_is_never_a_regression(seed: int, cv: float, n: int,
                                                             metric: str) -> None:
    sample = _sample(500, cv, n, seed)
    judged = judge_metric("randread-4k-qd32", metric, sample, sample, SETTINGS)
    assert judged.status is not DeltaStatus.REGRESSION
    assert judged.effect is not None and judged.effect.ratio == 1.0


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31), scale=st.floats(0.01, 1000.0),
       factor=st.floats(0.3, 3.0))
def test_the_judgement_does_not_depend_on_the_unit(seed: int, scale: float,
                                                   factor: float) -> None:
    base, cand = _sample(100, 0.1, 6, seed), _sample(100 * factor, 0.1, 6, seed + 1)
    rule = Numeric(direction=Direction.HIGHER_IS_BETTER, metrics=5)
    plain = rule.decide(base, cand).status
    scaled = rule.decide(Sample.of([v * scale for v in base.values], "x"),
                         Sample.of([v * scale for v in cand.values], "x")).status
    assert plain is scaled


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**31), effect=st.floats(0.35, 0.6))
def test_a_large_clean_slowdown_is_always_caught(seed: int, effect: float) -> None:
    judged = judge_metric("seqwrite-128k", "iops", _sample(1000, 0.03, 6, seed),
                          _sample(1000 * (1 - effect), 0.03, 6, seed + 1), SETTINGS)
    assert judged.status is DeltaStatus.REGRESSION


def test_power_of_the_quick_profile_at_low_noise() -> None:
    """The quick profile (6 runs per image) detects a 20 % change with at least 80 % power
    at the noise the A/A calibration measured for throughput here (see bench/results)."""
    rule = rule_for("iops", SETTINGS)
    power = simulate(rule, SETTINGS.runs, 0.05, 0.20, simulations=100)
    assert power.detected >= 0.80, power.sentence()
    assert "detects a 20 % change with" in power.sentence()
    none = simulate(rule, SETTINGS.runs, 0.05, 0.0, simulations=100)
    assert none.detected == 0.0  # no false positive on A/A samples


def test_more_noise_needs_more_runs() -> None:
    rule = rule_for("iops", SETTINGS)
    quiet = runs_for(rule, 0.03, simulations=60)
    assert quiet is not None and quiet.runs == 5
    assert runs_for(rule, 0.5, high=7, simulations=30) is None


def test_robust_cv() -> None:
    assert cv_of(Sample.of([100, 100, 100], "x")) == 0.0
    assert cv_of(Sample.of([], "x")) == 0.0
    assert 0.05 < cv_of(_sample(100, 0.1, 200, 11)) < 0.15


def test_a_regression_stands_only_where_the_confirmation_runs_repeat_it() -> None:
    first = judge_metric("seqwrite-128k", "bw", _sample(1000, 0.05, 6, 11),
                         _sample(700, 0.05, 6, 12), SETTINGS)
    assert first.status is DeltaStatus.REGRESSION
    slower = judge_metric("seqwrite-128k", "clat_p50", _sample(100, 0.05, 6, 13, "µs"),
                          _sample(145, 0.05, 6, 14, "µs"), SETTINGS)
    same = judge_metric("seqwrite-128k", "bw", _sample(1000, 0.05, 6, 15),
                        _sample(980, 0.05, 6, 16), SETTINGS)
    kept = confirmed(first, [same, slower])  # the job is slower again, by its latency
    assert kept.status is DeltaStatus.REGRESSION
    assert "confirmed by the repeat: seqwrite-128k clat_p50" in kept.delta.detail
    assert kept.effect == first.effect  # the finding keeps the first runs' ratio and interval
    noisy = confirmed(first, [same])
    assert noisy.status is DeltaStatus.INCONCLUSIVE
    assert noisy.delta.detail.startswith("too noisy to decide: the first runs showed")
    assert "the repeat did not (seqwrite-128k bw: ratio" in noisy.delta.detail
    assert confirmed(same, [slower]) is same  # only a regression is put to the test
    assert confirmed(first, None) is first
