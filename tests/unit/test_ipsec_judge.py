"""Judging the three pairs: regressions, interop regressions, time bounds."""

from __future__ import annotations

from distrogate.differential import DeltaStatus, compare
from distrogate.ipsec.judge import CB, CC, StepRule, check_id, outcome


def test_a_pair_that_works_like_the_baseline_pair_is_unchanged() -> None:
    delta = compare(check_id("ping6", CC), StepRule("ping6", CC), outcome(True, "3 received"),
                    outcome(True, "3 received"))
    assert delta.id == "ping6:candidate-candidate"
    assert delta.status is DeltaStatus.UNCHANGED


def test_candidate_baseline_failing_while_candidate_candidate_works_is_an_interop_regression(
) -> None:
    rule = StepRule("sa_up", CB, interop_ok=True)
    delta = compare(check_id("sa_up", CB), rule, outcome(True, "SA up", 1.2),
                    outcome(False, "NO_PROPOSAL_CHOSEN"))
    assert delta.status is DeltaStatus.REGRESSION
    assert delta.detail.startswith("interop regression: candidate↔baseline fails at sa_up "
                                   "while candidate↔candidate works: NO_PROPOSAL_CHOSEN")
    assert "the baseline pair (baseline↔baseline) did: SA up in 1.2s" in delta.detail


def test_failing_on_both_candidate_pairs_is_a_plain_regression() -> None:
    delta = compare("x", StepRule("kernel_sa", CB, interop_ok=False), outcome(True),
                    outcome(False, "Protocol not supported"))
    assert delta.status is DeltaStatus.REGRESSION
    assert delta.detail.startswith("regression: candidate↔baseline fails at kernel_sa: "
                                   "Protocol not supported")


def test_what_the_baseline_pair_fails_too_is_not_a_regression() -> None:
    delta = compare("x", StepRule("rekey", CC), outcome(False, "no new SPI"),
                    outcome(False, "no new SPI"))
    assert delta.status is DeltaStatus.ALSO_FAILS_ON_BASELINE
    fixed = compare("x", StepRule("rekey", CC), outcome(False, "no"), outcome(True, "yes"))
    assert fixed.status is DeltaStatus.FIXED


def test_the_time_bound_is_judged_against_the_baseline_pair() -> None:
    rule = StepRule("sa_up", CC, bound=60)
    assert compare("x", rule, outcome(True, "", 2.0),
                   outcome(True, "", 5.0)).status is DeltaStatus.UNCHANGED
    # over the bound while the baseline pair was well inside it
    slow = compare("x", rule, outcome(True, "", 2.0), outcome(True, "", 75.0))
    assert slow.status is DeltaStatus.REGRESSION
    # both close to the bound: the lab is too slow to judge
    lab = compare("x", rule, outcome(True, "", 45.0), outcome(True, "", 70.0))
    assert lab.status is DeltaStatus.INCONCLUSIVE


def test_an_unobserved_side_fails() -> None:
    delta = compare("x", StepRule("ping6", CC), outcome(True), None)
    assert delta.status is DeltaStatus.REGRESSION and "not observed" in delta.detail


def test_a_wait_that_ran_out_where_the_baseline_needed_most_of_it_is_inconclusive() -> None:
    """A peer that did not reboot within 300 s while the baseline pair's took 293 s on the
    same lab says the lab was slow, not that the image hangs; 60 s on the baseline says the
    image does."""
    rule = StepRule("peer_reboot", CC)
    hung = outcome(False, "cc2 did not come back: still not done after 300s", waited=300.4)
    slow = compare("r", rule, outcome(True, "rebooted", 340.8), hung)
    assert slow.status is DeltaStatus.INCONCLUSIVE, slow.detail
    assert "too slow a lab" in slow.detail
    quick = compare("r", rule, outcome(True, "rebooted", 60.0), hung)
    assert quick.status is DeltaStatus.REGRESSION, quick.detail
    # a failure that is not a wait running out stays a regression however slow the lab
    broken = compare("r", rule, outcome(True, "rebooted", 340.8), outcome(False, "no unit"))
    assert broken.status is DeltaStatus.REGRESSION
