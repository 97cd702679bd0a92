"""One bounded retry loop for everything that waits."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from distrogate.errors import GuestTimeout

T = TypeVar("T")


def retry_until(attempt: Callable[[], T | None], *, timeout: float, what: str,
                interval: float = 0.5, console_log: object | None = None) -> T:
    """Call ``attempt`` until it returns something other than None; give up after ``timeout``.

    Exceptions from ``attempt`` propagate (so a definite failure stops the wait at once).
    Raises :class:`GuestTimeout` naming ``what`` when the time runs out.
    """
    deadline = time.monotonic() + timeout
    while True:
        result = attempt()
        if result is not None:
            return result
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise GuestTimeout(f"{what}: still not done after {timeout:g}s", console_log)
        time.sleep(min(interval, remaining))
