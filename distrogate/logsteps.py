"""Timed, nested log steps: ``with step("boot %s", name): ...`` logs start, end and duration."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Iterator

_log = logging.getLogger(__name__)
_depth = threading.local()


def _current_depth() -> int:
    return getattr(_depth, "value", 0)


@contextlib.contextmanager
def step(message: str, *args: object, logger: logging.Logger | None = None) -> Iterator[None]:
    """Log ``message`` as a step, run the body, then log how long it took (or that it failed).

    The lines go to ``logger`` when given, else to this module's logger."""
    log = logger or _log
    depth = _current_depth()
    indent = "  " * depth
    text = message % args if args else message
    log.info("%s▶ %s", indent, text)
    start = time.monotonic()
    _depth.value = depth + 1
    try:
        yield
    except BaseException as exc:
        log.info("%s✗ %s failed after %.1fs: %s", indent, text, time.monotonic() - start, exc)
        raise
    finally:
        _depth.value = depth
    log.info("%s✓ %s (%.1fs)", indent, text, time.monotonic() - start)
