"""The client load's history, and the Jepsen-style checks of it against what the cluster holds.

The history is a JSON lines file, one :class:`Write` per write attempt, appended (and flushed)
by :mod:`distrogate.scenario.writer` as each attempt ends::

    {"writer": 0, "key": 17, "value": "Émile-17", "started": 5123.41, "ended": 5123.43,
     "status": "acknowledged", "error": ""}

``key`` is the attempt's unique id, the primary key it inserts. ``started`` and ``ended`` are
``CLOCK_MONOTONIC`` seconds (one clock for every process on the host, network namespaces
included, so the runner's step times compare with them directly). ``status`` says what the
client knows:

* ``acknowledged``: COMMIT returned: the row must be there, now and after any later step;
* ``failed``: the write certainly did not commit (see :class:`Status`);
* ``indeterminate``: the client cannot know (the connection broke or timed out while COMMIT
  was in flight): either way is correct.

Everything here is pure: :func:`check_keys` takes the history and the keys read back from a
node (and :func:`check` a point-in-time restore's too) and returns frozen results;
:func:`unavailability` measures the longest gap between acknowledged writes around an
interval (a switchover).
"""

from __future__ import annotations

import itertools
import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

from distrogate.errors import InfraError

log = logging.getLogger(__name__)


class Status(StrEnum):
    """What the client knows about one write attempt.

    ``failed`` means the transaction certainly did not commit: the connection could not be
    made, the server answered the INSERT with an error (a read-only standby, a statement
    timeout, a shutdown), or the connection broke before COMMIT was sent (PostgreSQL rolls
    back an open transaction whose client is gone), or the server answered COMMIT itself with
    an error other than a lost connection (a rolled-back transaction).
    ``indeterminate`` is a lost connection or a client-side timeout while COMMIT was in
    flight: the server may have committed before the answer was lost.
    """

    ACKNOWLEDGED = "acknowledged"
    FAILED = "failed"
    INDETERMINATE = "indeterminate"


@dataclass(frozen=True)
class Write:
    """One write attempt of the client load (see the module)."""

    writer: int
    key: int
    value: str
    started: float
    ended: float
    status: Status
    error: str = ""

    def to_json(self) -> str:
        """The record as one JSON line (without the newline)."""
        return json.dumps({**asdict(self), "status": str(self.status)}, ensure_ascii=False)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> Write:
        """The record from its JSON form; a wrong field raises ``KeyError``/``ValueError``/
        ``TypeError``."""
        return cls(writer=int(doc["writer"]), key=int(doc["key"]), value=str(doc["value"]),
                   started=float(doc["started"]), ended=float(doc["ended"]),
                   status=Status(doc["status"]), error=str(doc.get("error", "")))


def read_history(path: Path) -> tuple[Write, ...]:
    """The records of the history file ``path`` in file order. A torn last line (the writer
    killed in the middle of a write) is left out with a warning; any other bad line is an
    :class:`InfraError` naming it. A missing file is an empty history."""
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    except FileNotFoundError:
        return ()
    except OSError as exc:
        raise InfraError(f"{path}: cannot read the write history: {exc.strerror}") from None
    if lines and lines[-1] == "":
        lines.pop()
    records = []
    for number, line in enumerate(lines, 1):
        try:
            records.append(Write.from_json(json.loads(line)))
        except (ValueError, KeyError, TypeError) as exc:
            if number == len(lines):
                log.warning("%s: line %d is torn (the writer was killed while writing it): "
                            "left out", path, number)
                break
            raise InfraError(f"{path}: line {number}: not a write record: {exc}") from None
    return tuple(records)


@dataclass(frozen=True)
class KeyCheck:
    """The history checked against the keys read back from one source (a node, a restore).

    ``lost``: acknowledged but absent: data loss, must be empty.
    ``duplicates``: keys read more than once (the key is the primary key: a duplicate means a
    broken unique index or a heap with two live versions): must be empty.
    ``unexpected``: keys read that no attempt of this history wrote: must be empty (a row out
    of nowhere, or a history that lost records: a writer killed with SIGKILL mid-write).
    ``indeterminate_present`` / ``indeterminate_absent``: how the indeterminate writes
    resolved; either way is correct.
    ``failed_present``: writes recorded as failed that are present. With the writer's
    classification (:class:`Status`) a failed write never reached COMMIT, or COMMIT was
    refused, so PostgreSQL cannot have committed it: one that is present means a wrong
    classification in the client, or a database that made visible a transaction it reported
    as not committed, and is a finding. It would be legitimate only for a client that calls
    a lost answer to COMMIT "failed" (a timeout is not a refusal), which this one does not.
    """

    source: str
    attempted: int
    acknowledged: int
    failed: int
    indeterminate: int
    read: int
    lost: tuple[int, ...]
    duplicates: tuple[int, ...]
    unexpected: tuple[int, ...]
    indeterminate_present: tuple[int, ...]
    indeterminate_absent: tuple[int, ...]
    failed_present: tuple[int, ...]

    @property
    def ok(self) -> bool:
        """Whether nothing is wrong: no lost, duplicate, unexpected or failed-but-present
        key."""
        return not (self.lost or self.duplicates or self.unexpected or self.failed_present)

    def findings(self) -> list[str]:
        """One line per problem, naming the source and up to ten keys."""
        def keys(found: tuple[int, ...]) -> str:
            shown = ", ".join(str(k) for k in found[:10])
            return shown + (f", … ({len(found)} in all)" if len(found) > 10 else "")

        lines = []
        for what, found in (("lost (acknowledged but absent)", self.lost),
                            ("duplicated (read more than once)", self.duplicates),
                            ("unexpected (read but never written)", self.unexpected),
                            ("present although recorded as failed", self.failed_present)):
            if found:
                lines.append(f"{self.source}: {len(found)} write(s) {what}: {keys(found)}")
        return lines

    def summary(self) -> str:
        """The counts on one line."""
        return (f"{self.source}: {self.attempted} attempted, {self.acknowledged} acknowledged, "
                f"{self.failed} failed, {self.indeterminate} indeterminate "
                f"({len(self.indeterminate_present)} present, "
                f"{len(self.indeterminate_absent)} absent); {self.read} read; "
                f"lost {len(self.lost)}, duplicates {len(self.duplicates)}, unexpected "
                f"{len(self.unexpected)}, failed but present {len(self.failed_present)}")


def check_keys(history: Sequence[Write], read: Iterable[int], source: str = "node",
               until: float | None = None) -> KeyCheck:
    """Check ``history`` against the keys ``read`` from ``source`` (every row's key, read
    without an index so that duplicates show: see :data:`distrogate.scenario.sql.READ_KEYS`).

    With ``until`` (a monotonic time: a point-in-time restore's target), only writes
    acknowledged by then must be present, and writes started after it must be absent (one
    present is ``unexpected``); writes in flight at ``until`` may go either way.
    """
    counts = Counter(read)
    present = set(counts)
    by_key = {w.key: w for w in history}
    status = Counter(w.status for w in history)

    acked = {w.key for w in history if w.status is Status.ACKNOWLEDGED
             and (until is None or w.ended <= until)}
    failed = {w.key for w in history if w.status is Status.FAILED}
    # before ``until``: what the history says; in flight at ``until``: either way
    maybe = {w.key for w in history if w.status is Status.INDETERMINATE
             or (until is not None and w.started <= until < w.ended
                 and w.status is Status.ACKNOWLEDGED)}
    late = {k for k, w in by_key.items() if until is not None and w.started > until}
    unexpected = (present - set(by_key)) | (present & late)
    return KeyCheck(
        source=source,
        attempted=len(history),
        acknowledged=status[Status.ACKNOWLEDGED],
        failed=status[Status.FAILED],
        indeterminate=status[Status.INDETERMINATE],
        read=sum(counts.values()),
        lost=tuple(sorted(acked - present)),
        duplicates=tuple(sorted(k for k, n in counts.items() if n > 1)),
        unexpected=tuple(sorted(unexpected)),
        indeterminate_present=tuple(sorted((maybe & present) - late)),
        indeterminate_absent=tuple(sorted(maybe - present - late)),
        failed_present=tuple(sorted((failed & present) - late)),
    )


@dataclass(frozen=True)
class Report:
    """The history checked against the final primary and, when taken, a fresh point-in-time
    restore of the backup."""

    primary: KeyCheck
    restored: KeyCheck | None = None

    @property
    def ok(self) -> bool:
        """Whether both checks are clean."""
        return self.primary.ok and (self.restored is None or self.restored.ok)

    def findings(self) -> list[str]:
        """Every problem of both checks, one line each."""
        return self.primary.findings() + (self.restored.findings() if self.restored else [])


def check(history: Sequence[Write], primary_keys: Iterable[int],
          restored_keys: Iterable[int] | None = None, *,
          restored_until: float | None = None) -> Report:
    """:func:`check_keys` on the final primary's keys and, when given, a point-in-time
    restore's (restored up to the monotonic time ``restored_until``, or to the end of the
    archive when it is None: then every acknowledged write must be there too, which holds once
    the runner stopped the load, switched WAL and waited for it to be archived)."""
    return Report(
        primary=check_keys(history, primary_keys, "primary"),
        restored=None if restored_keys is None
        else check_keys(history, restored_keys, "restore", until=restored_until))


@dataclass(frozen=True)
class Window:
    """The longest gap between acknowledged writes around the interval ``start``..``end``.

    The gap runs from ``gap_start`` (the last acknowledgement before it, or ``start`` when no
    write was acknowledged before) to ``gap_end`` (the next one, or ``end`` when none came
    after): it may reach outside the interval, since a switchover's unavailability begins
    before the step's call and ends after it. ``acknowledged`` counts the acknowledgements
    inside the interval.
    """

    start: float
    end: float
    gap: float
    gap_start: float
    gap_end: float
    acknowledged: int


def unavailability(history: Iterable[Write], start: float, end: float) -> Window:
    """The longest gap between consecutive acknowledged writes (of any writer, by the time
    each acknowledgement arrived) over the interval ``start``..``end`` (see :class:`Window`)."""
    if end < start:
        raise ValueError(f"an interval ends ({end}) before it starts ({start})")
    times = sorted(w.ended for w in history if w.status is Status.ACKNOWLEDGED)
    inside = [t for t in times if start <= t <= end]
    before = [t for t in times if t < start]
    after = [t for t in times if t > end]
    points = [before[-1] if before else start, *inside, after[0] if after else end]
    gap, gap_start, gap_end = 0.0, points[0], points[0]
    for a, b in itertools.pairwise(points):
        if b - a > gap:
            gap, gap_start, gap_end = b - a, a, b
    return Window(start=start, end=end, gap=gap, gap_start=gap_start, gap_end=gap_end,
                  acknowledged=len(inside))
