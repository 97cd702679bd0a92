"""When a stalled guest agent may be asked again (pure logic of ``stall_retry``)."""

from __future__ import annotations

import pytest

from distrogate.guest.agent import SYNC_WAIT, stall_retry

STALLED = "Guest agent is not responding: Guest agent not available for now"


def test_a_read_only_command_is_asked_again_whenever_the_agent_stalled() -> None:
    assert stall_retry("guest-exec-status", STALLED, elapsed=30.2, seconds=30)
    assert stall_retry("guest-exec-status", STALLED, elapsed=5.1, seconds=30)


def test_a_command_that_changes_the_guest_is_repeated_only_when_never_sent() -> None:
    # libvirt's guest-sync gave up after its own ~5 s wait: the command never left.
    assert stall_retry("guest-exec", STALLED, elapsed=SYNC_WAIT + 0.3, seconds=30)
    # The command itself waited its full time: it may have run; never start it twice.
    assert not stall_retry("guest-exec", STALLED, elapsed=30.1, seconds=30)
    assert not stall_retry("guest-file-write", STALLED, elapsed=10.4, seconds=10)


def test_a_timeout_too_short_to_tell_sync_from_command_is_not_repeated() -> None:
    assert not stall_retry("guest-exec", STALLED, elapsed=5.0, seconds=5)
    assert not stall_retry("guest-shutdown", STALLED, elapsed=5.0, seconds=5)


@pytest.mark.parametrize("error", [
    "Guest agent is not responding: QEMU guest agent is not connected",
    "Guest agent is not responding: Guest agent disappeared while executing command",
    "internal error: unable to execute QEMU agent command 'guest-exec-status': "
    "Invalid parameter 'pid'",
    "Requested operation is not valid: domain is not running",
])
def test_other_agent_errors_are_not_stalls(error: str) -> None:
    assert not stall_retry("guest-exec-status", error, elapsed=0.1, seconds=30)


def test_guest_ping_is_left_to_its_callers_polling() -> None:
    assert not stall_retry("guest-ping", STALLED, elapsed=2.0, seconds=2)
    assert not stall_retry("guest-ping", STALLED, elapsed=5.0, seconds=30)
