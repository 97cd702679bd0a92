"""The roll-forward checks, Jepsen-style: read everything back and hold it against the history.

Each check returns a JSON-ready mapping with ``ok`` and what it saw, so that the run records
observations and the suite's rules judge them against the control run:

``no_lost_writes``
    every row's key read from the final primary (and, at the end, from a fresh point-in-time
    restore of the backup) against the client's history (:func:`~.history.check`): lost,
    duplicates, unexpected, failed-but-present must be empty; indeterminate writes may go
    either way.
``converge``
    every node's row count and md5 of each table, once the standbys have caught up.
``amcheck``
    ``pg_amcheck --all --heapallindexed`` on every node.
``collation_versions``
    each node's collation versions, by the image it runs; a version that differs between the
    old (baseline) and new (candidate) nodes, or a recorded version that differs from the C
    library's, is a mismatch whose action is REINDEX (or logical replication instead of
    physical).

A check that cannot run (the node is down, a query times out) records ``ok: false`` with the
error: the suite judges it against the control, on the same lab.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from distrogate.scenario import sql
from distrogate.scenario.cluster import APP_DATABASE, Cluster
from distrogate.scenario.history import KeyCheck, Status, Write, check
from distrogate.scenario.model import Check
from distrogate.scenario.pgnode import PgNode

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT = 180.0
HISTORY_SETTLE_SECONDS = 2.0  # a live check reads the history this long after the keys
READ_KEYS = ("SET enable_indexscan = off; SET enable_indexonlyscan = off; "
             "SET enable_bitmapscan = off; " + sql.READ_KEYS)


def word_order_query() -> str:
    """The SQL that sorts :data:`~.sql.WORDS` in the database's collation, joined by ``|``."""
    values = ", ".join(f"({sql.literal(w)})" for w in sql.WORDS)
    return (f"SELECT string_agg(w, '|' ORDER BY w COLLATE \"default\", w COLLATE \"C\") "
            f"FROM (VALUES {values}) AS t(w)")


def node_collations(node: PgNode, image: str) -> dict[str, Any]:
    """``node``'s collation versions, the order its C library gives the words in the
    database's locale, and the image role it runs (recorded when it joins, so that old nodes
    are on record after they leave)."""
    try:
        versions = [asdict(v) | {"mismatch": v.mismatch} for v in node.collation_versions()]
        order = node.sql(word_order_query(), database=APP_DATABASE)[0][0]
    except Exception as exc:  # evidence; the check reports it
        return {"image": image, "error": str(exc), "versions": [], "order": ""}
    return {"image": image, "versions": versions, "order": order}


def _first_difference(old: str, new: str) -> str:
    a, b = old.split("|"), new.split("|")
    for index, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return (f"position {index + 1}: old …{'|'.join(a[max(0, index - 1):index + 3])}…, "
                    f"new …{'|'.join(b[max(0, index - 1):index + 3])}…")
    return "lengths differ"


def keys_of(rows: Iterable[Sequence[str]]) -> list[int]:
    """The integer keys of ``psql`` rows."""
    return [int(row[0]) for row in rows if row and row[0]]


def _key_check(found: KeyCheck) -> dict[str, Any]:
    doc = asdict(found)
    for name in ("lost", "duplicates", "unexpected", "indeterminate_present",
                 "indeterminate_absent", "failed_present"):
        doc[name] = list(doc[name])[:200]
        doc[f"{name}_count"] = len(getattr(found, name))
    doc["summary"] = found.summary()
    doc["findings"] = found.findings()
    doc["ok"] = found.ok
    return doc


def _guarded(name: str, body: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return body()
    except Exception as exc:  # a check that could not run is data for the judge
        log.warning("check %s could not run: %s", name, exc)
        return {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:2000]}


def as_of_read(history: Sequence[Write], started: float, ended: float) -> list[Write]:
    """The history as a read taken while the load runs can judge it: writes acknowledged
    before the read began must be present; writes that started after it ended cannot be (left
    out: one that is present is *unexpected*); the ones in between may go either way
    (indeterminate). A failed write stays failed: it may never be present."""
    found = []
    for write in history:
        if write.started > ended:
            continue
        if write.status is Status.ACKNOWLEDGED and write.ended > started:
            write = replace(write, status=Status.INDETERMINATE)
        found.append(write)
    return found


def no_lost_writes(cluster: Cluster, history_of: Callable[[], Sequence[Write]], *,
                   pitr: bool, live: bool = False) -> dict[str, Any]:
    """The history against the final primary (and a point-in-time restore with ``pitr``).
    ``live``: the load still runs (a check step mid-scenario; see :func:`as_of_read`): the
    history is read after the keys, once the writers have recorded what they had in flight."""
    started = time.monotonic()
    primary_keys = keys_of(cluster.primary.sql(READ_KEYS, database=APP_DATABASE, timeout=300))
    ended = time.monotonic()
    if live:
        time.sleep(HISTORY_SETTLE_SECONDS)
    history = as_of_read(history_of(), started, ended) if live else history_of()
    restored: list[int] | None = None
    if pitr:
        cluster.flush_archive()
        spare = next(iter(cluster.replicas()), cluster.primary)
        with cluster.repo.point_in_time(spare) as server:
            restored = keys_of(server.sql(READ_KEYS, database=APP_DATABASE, timeout=300))
    report = check(history, primary_keys, restored)
    doc: dict[str, Any] = {"primary": _key_check(report.primary), "ok": report.ok}
    if report.restored is not None:
        doc["restored"] = _key_check(report.restored)
    return doc


def converge(cluster: Cluster, *, live: bool = False) -> dict[str, Any]:
    """Every node's checksums of every table, after the standbys caught up. ``live``: the
    load still runs, so only the initial data (which it does not touch) can agree."""
    for node in cluster.replicas():
        with contextlib.suppress(Exception):
            cluster.catch_up(node.name, max_lag_bytes=0, timeout=CATCH_UP_TIMEOUT)
    tables = [t for t in sql.TABLES if not (live and t == "dg_writes")]
    sums = {node.name: {table: list(node.table_checksum(table, database=APP_DATABASE))
                        for table in tables}
            for node in cluster.nodes.values()}
    distinct = {repr(v) for v in sums.values()}
    return {"ok": len(distinct) == 1, "checksums": sums,
            "primary": cluster.primary.name}


def amcheck(cluster: Cluster) -> dict[str, Any]:
    """``pg_amcheck`` on every node; ``ok`` when every node is clean."""
    found = cluster.amcheck()  # the primary first: it installs the extension
    return {"ok": all(r.clean for r in found.values()),
            "nodes": {n: {"exit_code": r.exit_code, "output": r.output[-4000:],
                          "clean": r.clean} for n, r in found.items()}}


def collation_versions(collations: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    """Compare the collation versions the nodes recorded when they joined: by image, and
    recorded against actual on each node."""
    by_image: dict[str, dict[str, str]] = {}
    mismatches: list[str] = []
    for node, seen in collations.items():
        for version in seen.get("versions", []):
            key = f"{version['kind']}:{version['name']}"
            by_image.setdefault(seen["image"], {})[key] = version["actual"]
            if version.get("mismatch"):
                mismatches.append(f"{node} ({seen['image']}): {key} recorded "
                                  f"{version['recorded']}, the C library reports "
                                  f"{version['actual']}")
    orders: dict[str, str] = {}
    for seen in collations.values():
        if seen.get("order"):
            orders.setdefault(seen["image"], seen["order"])
    if len(orders) > 1 and orders.get("baseline") != orders.get("candidate"):
        mismatches.append(
            "the database's locale sorts the test words differently on the new (candidate) "
            "nodes than on the old (baseline) ones, whatever version the C library reports "
            f"({_first_difference(orders.get('baseline', ''), orders.get('candidate', ''))})")
    images = sorted(by_image)
    if len(images) > 1:
        old, new = by_image.get("baseline", {}), by_image.get("candidate", {})
        for key in sorted(set(old) & set(new)):
            if old[key] != new[key]:
                mismatches.append(f"{key}: the old (baseline) nodes' C library reports "
                                  f"version {old[key]}, the new (candidate) nodes' "
                                  f"{new[key]}")
    action = ("REINDEX the text indexes on the new nodes (or move the data by logical "
              "replication instead of physical)") if mismatches else ""
    return {"ok": not mismatches, "mismatches": mismatches, "by_image": by_image,
            "orders": orders, "action": action}


def final_checks(cluster: Cluster, history: Callable[[], Sequence[Write]],
                 what: Iterable[Check] | None,
                 *, pitr: bool, collations: Mapping[str, Mapping[str, Any]] | None = None,
                 live: bool = False) -> dict[str, dict[str, Any]]:
    """Run the checks ``what`` (None: all) and return each one's result (see the module).
    ``history`` reads the client's history; ``live``: a check step while the load still
    runs."""
    chosen = set(Check) if what is None else set(what)
    found: dict[str, dict[str, Any]] = {}
    if Check.NO_LOST_WRITES in chosen:
        found["no_lost_writes"] = _guarded("no_lost_writes",
                                           lambda: no_lost_writes(cluster, history, pitr=pitr,
                                                                  live=live))
    if Check.CONVERGE in chosen:
        found["converge"] = _guarded("converge", lambda: converge(cluster, live=live))
    if Check.AMCHECK in chosen:
        found["amcheck"] = _guarded("amcheck", lambda: amcheck(cluster))
    if Check.COLLATION_VERSIONS in chosen:
        found["collation_versions"] = collation_versions(collations or {})
    return found
