"""The roll-forward cluster's backup schedule: when an ``add`` takes a fresh backup first."""

from __future__ import annotations

from distrogate.scenario.cluster import backup_is_due


def test_no_backup_yet_or_since_a_switchover_is_due() -> None:
    assert backup_is_due(None, 600)


def test_a_recent_backup_is_restored_from() -> None:
    assert not backup_is_due(30, 600)


def test_an_old_backup_is_refreshed() -> None:
    assert backup_is_due(601, 600)


def test_a_schedule_of_zero_backs_up_before_every_add() -> None:
    assert backup_is_due(1, 0)
