"""Judging a fault cell: regressions raw or through the wrapper, "needs the wrapper",
half-applied transactions; the matrix page."""

from __future__ import annotations

from typing import Any

from distrogate.differential import DeltaStatus, Value, compare
from distrogate.dnf.judge import CellRule, closing_note, matrix_html, verdict_word

OK = {"ok": True, "class": "ok", "step": "", "exit": 0, "seconds": 3.0, "requests": 9,
      "faults": 4, "consistent": True}
TIMEOUT = {"ok": False, "class": "timeout", "step": "makecache", "exit": 1, "seconds": 10.4,
           "requests": 8, "faults": 8, "consistent": True}


def side(raw: dict[str, Any], wrapper: dict[str, Any]) -> Value:
    return Value({"raw": raw, "wrapper": wrapper})


def test_the_candidate_failing_raw_where_the_baseline_survives_is_a_regression() -> None:
    delta = compare("stall@repomd", CellRule("stall@repomd"), side(OK, OK), side(TIMEOUT, OK))
    assert delta.status is DeltaStatus.REGRESSION
    assert "fault class stall@repomd" in delta.detail
    assert "survives it with plain dnf" in delta.detail
    assert "timeout at makecache (exit 1) in 10.4s" in delta.detail


def test_a_regression_through_the_wrapper_only_is_a_regression_too() -> None:
    delta = compare("c", CellRule("c"), side(TIMEOUT, OK), side(TIMEOUT, TIMEOUT))
    assert delta.status is DeltaStatus.REGRESSION
    assert "with the retry wrapper" in delta.detail


def test_both_failing_raw_and_surviving_wrapped_needs_the_wrapper() -> None:
    delta = compare("c", CellRule("c"), side(TIMEOUT, OK), side(TIMEOUT, OK))
    assert delta.status is DeltaStatus.UNCHANGED
    assert "needs the wrapper" in delta.detail
    assert verdict_word({"raw": TIMEOUT, "wrapper": OK},
                        {"raw": TIMEOUT, "wrapper": OK}) == "needs the wrapper"


def test_both_failing_everywhere_is_not_a_regression() -> None:
    delta = compare("c", CellRule("c"), side(TIMEOUT, TIMEOUT), side(TIMEOUT, TIMEOUT))
    assert delta.status is DeltaStatus.ALSO_FAILS_ON_BASELINE


def test_the_candidate_surviving_where_the_baseline_does_not_is_fixed() -> None:
    delta = compare("c", CellRule("c"), side(TIMEOUT, OK), side(OK, OK))
    assert delta.status is DeltaStatus.FIXED


def test_a_half_applied_transaction_is_named() -> None:
    half = dict(TIMEOUT, consistent=False, consistency="half-applied: installed dg-base")
    delta = compare("c", CellRule("c"), side(OK, OK), side(half, OK))
    assert delta.status is DeltaStatus.REGRESSION
    assert "leaves a transaction half-applied" in delta.detail


def test_the_matrix_escapes_and_shows_every_side() -> None:
    rows = {"stall@repomd": {"baseline": {"raw": OK, "wrapper": OK},
                             "candidate": {"raw": TIMEOUT, "wrapper": OK}}}
    page = matrix_html(rows, {"candidate": {"dnf": "<4.23>"}}, "t")
    assert "REGRESSION" in page and "&lt;4.23&gt;" in page and "<4.23>" not in page
    assert page.count("<td") == 5
    assert "default-src 'none'" in page
    note = closing_note(rows, "candidate")
    assert note == ("candidate: survives raw: none; only through the wrapper: stall@repomd; "
                    "not at all: none")
