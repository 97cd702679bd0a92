"""The Jepsen-style checker: generated histories with known lost, duplicated, unexpected and
indeterminate keys; the unavailability window; the history file round trip."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distrogate.errors import InfraError
from distrogate.scenario.history import (
    Status,
    Write,
    check,
    check_keys,
    read_history,
    unavailability,
)


@st.composite
def histories(draw: st.DrawFn) -> tuple[Write, ...]:
    """Writes with unique keys, increasing start times, random statuses."""
    n = draw(st.integers(0, 60))
    statuses = draw(st.lists(st.sampled_from(list(Status)), min_size=n, max_size=n))
    gaps = draw(st.lists(st.floats(0.001, 3.0), min_size=n, max_size=n))
    times = list(itertools.accumulate(gaps, initial=100.0))
    return tuple(Write(writer=i % 3, key=1000 + i, value=f"v{i}", started=times[i],
                       ended=times[i] + 0.01, status=statuses[i],
                       error="" if statuses[i] is Status.ACKNOWLEDGED else "boom")
                 for i in range(n))


@settings(max_examples=150, deadline=None)
@given(data=st.data(), history=histories())
def test_the_checker_finds_exactly_the_planted_problems(data: st.DataObject,
                                                        history: tuple[Write, ...]) -> None:
    acked = [w.key for w in history if w.status is Status.ACKNOWLEDGED]
    maybe = [w.key for w in history if w.status is Status.INDETERMINATE]
    failed = [w.key for w in history if w.status is Status.FAILED]
    lost = set(data.draw(st.lists(st.sampled_from(acked), unique=True) if acked
                         else st.just([])))
    landed = set(data.draw(st.lists(st.sampled_from(maybe), unique=True) if maybe
                           else st.just([])))
    ghosts = set(data.draw(st.lists(st.sampled_from(failed), unique=True, max_size=2)
                           if failed else st.just([])))
    strangers = set(data.draw(st.lists(st.integers(1, 999), unique=True, max_size=3)))
    read = sorted((set(acked) - lost) | landed | ghosts | strangers)
    doubled = set(data.draw(st.lists(st.sampled_from(read), unique=True, max_size=3)
                            if read else st.just([])))
    result = check_keys(history, data.draw(st.permutations(read + sorted(doubled))))
    assert set(result.lost) == lost
    assert set(result.duplicates) == doubled
    assert set(result.unexpected) == strangers
    assert set(result.indeterminate_present) == landed
    assert set(result.indeterminate_absent) == set(maybe) - landed
    assert set(result.failed_present) == ghosts
    assert (result.acknowledged, result.failed, result.indeterminate) == (
        len(acked), len(failed), len(maybe))
    assert result.read == len(read) + len(doubled)
    assert result.ok == (not lost and not doubled and not strangers and not ghosts)
    assert len(result.findings()) == sum(map(bool, (lost, doubled, strangers, ghosts)))


def w(key: int, started: float, ended: float, status: Status = Status.ACKNOWLEDGED) -> Write:
    return Write(writer=0, key=key, value=str(key), started=started, ended=ended, status=status)


def test_a_restore_to_a_point_in_time_needs_only_what_was_acknowledged_by_then() -> None:
    history = [w(1, 1.0, 1.1), w(2, 2.0, 2.2), w(3, 2.9, 3.1), w(4, 4.0, 4.1),
               w(5, 4.5, 4.6, Status.FAILED)]
    # restored to t=3.0: 1 and 2 must be there, 3 was in flight, 4 and 5 came later
    result = check_keys(history, [1, 2], "restore", until=3.0)
    assert result.ok and result.indeterminate_absent == (3,)
    assert check_keys(history, [1, 2, 3], until=3.0).indeterminate_present == (3,)
    assert check_keys(history, [1], until=3.0).lost == (2,)
    assert check_keys(history, [1, 2, 4], until=3.0).unexpected == (4,)
    report = check(history, [1, 2, 3, 4], [1, 2], restored_until=3.0)
    assert report.ok and report.restored is not None
    bad = check(history, [1, 3, 4], [1, 2, 3, 4, 5])
    assert not bad.ok
    assert [line.split(":")[0] for line in bad.findings()] == ["primary", "restore"]
    assert "lost (acknowledged but absent): 2" in bad.findings()[0]


@settings(max_examples=150, deadline=None)
@given(acks=st.lists(st.floats(0, 100), max_size=40), start=st.floats(0, 100),
       length=st.floats(0, 50))
def test_the_window_is_the_longest_gap_between_acknowledgements(acks: list[float],
                                                                 start: float,
                                                                 length: float) -> None:
    end = start + length
    history = [w(i, t - 0.01, t) for i, t in enumerate(acks)]
    history.append(w(999, start, start + 0.5, Status.FAILED))  # failures are no acknowledgement
    window = unavailability(history, start, end)
    before = [t for t in acks if t < start]
    after = [t for t in acks if t > end]
    points = sorted([max(before) if before else start, *[t for t in acks if start <= t <= end],
                     min(after) if after else end])
    expected = max((b - a for a, b in itertools.pairwise(points)), default=0.0)
    assert window.gap == pytest.approx(expected)
    assert window.gap_end - window.gap_start == pytest.approx(window.gap)
    assert window.acknowledged == sum(start <= t <= end for t in acks)


def test_a_switchover_window_reaches_to_the_acknowledgements_around_it() -> None:
    history = [w(1, 0.9, 1.0), w(2, 1.9, 2.0), w(3, 9.0, 9.5), w(4, 9.9, 10.0)]
    window = unavailability(history, 3.0, 5.0)  # the switchover call
    assert (window.gap, window.gap_start, window.gap_end) == (7.5, 2.0, 9.5)
    assert window.acknowledged == 0
    with pytest.raises(ValueError, match="ends"):
        unavailability(history, 5.0, 3.0)


def test_the_history_file_round_trips_and_a_torn_last_line_is_left_out(tmp_path: Path) -> None:
    records = [w(1, 1.0, 1.1), Write(1, 2, "Ésaïe-Œuvre", 1.2, 4.0, Status.INDETERMINATE,
                                     "connection lost during COMMIT")]
    path = tmp_path / "history.jsonl"
    path.write_text("".join(r.to_json() + "\n" for r in records) + '{"writer": 0, "ke')
    assert read_history(path) == tuple(records)
    path.write_text('garbage\n' + records[0].to_json() + "\n")
    with pytest.raises(InfraError, match="line 1: not a write record"):
        read_history(path)
    assert read_history(tmp_path / "none.jsonl") == ()
