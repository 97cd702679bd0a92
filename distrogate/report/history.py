"""The history of gate runs: an sqlite3 database and a trends page for nightly runs.

:func:`record_run` stores one run (recording the same run id again replaces it);
:func:`write_trends` writes an HTML page with the last runs and, for every measurement, its value
per run, the change against the previous run, and an inline SVG sparkline.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from distrogate.fsutil import atomic_write_text
from distrogate.report.page import number, render, render_fragment
from distrogate.results import Results
from distrogate.verdict import Verdict

log = logging.getLogger(__name__)

DEFAULT_DB = Path("reports/history.sqlite")
DEFAULT_LAST = 20
_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started TEXT NOT NULL,
    finished TEXT NOT NULL,
    candidate TEXT NOT NULL,
    candidate_digest TEXT NOT NULL,
    baseline TEXT NOT NULL,
    baseline_digest TEXT NOT NULL,
    decision TEXT NOT NULL,
    exit_code INTEGER NOT NULL,
    passed INTEGER NOT NULL,
    failed INTEGER NOT NULL,
    error INTEGER NOT NULL,
    skipped INTEGER NOT NULL,
    waived INTEGER NOT NULL,
    total INTEGER NOT NULL,
    duration REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS measurements (
    run_id TEXT NOT NULL REFERENCES runs(run_id) ON DELETE CASCADE,
    nodeid TEXT NOT NULL,
    name TEXT NOT NULL,
    value REAL NOT NULL,
    unit TEXT NOT NULL,
    PRIMARY KEY (run_id, nodeid, name)
);
"""
_COUNT_KEYS = ("passed", "failed", "error", "skipped", "waived", "total")


@dataclass(frozen=True)
class RunRow:
    """One stored run."""

    run_id: str
    started: str
    candidate: str
    baseline: str
    decision: str
    counts: dict[str, int]
    duration: float


@contextmanager
def _connect(db: Path) -> Iterator[sqlite3.Connection]:
    db.parent.mkdir(parents=True, exist_ok=True)
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA foreign_keys = ON")
        conn.executescript(_SCHEMA)
        with conn:
            yield conn


def record_run(db: Path, results: Results, verdict: Verdict) -> None:
    """Store a run and its measurements in the history database at ``db``."""
    run = results.run
    counts = [verdict.counts.get(k, 0) for k in _COUNT_KEYS]
    duration = sum(r.duration for r in results.records)
    with _connect(db) as conn:
        conn.execute("DELETE FROM runs WHERE run_id = ?", (run.run_id,))
        conn.execute(
            "INSERT INTO runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (run.run_id, run.started, run.finished,
             str(run.candidate.get("name", "")), str(run.candidate.get("digest", "")),
             str(run.baseline.get("name", "")), str(run.baseline.get("digest", "")),
             str(verdict.decision), verdict.exit_code, *counts, duration),
        )
        conn.executemany(
            "INSERT OR REPLACE INTO measurements VALUES (?, ?, ?, ?, ?)",
            [(run.run_id, r.nodeid, name, m.value, m.unit)
             for r in results.records for name, m in r.measurements.items()],
        )
    log.info("recorded run %s in %s", run.run_id, db)


def last_runs(db: Path, last: int = DEFAULT_LAST) -> list[RunRow]:
    """The last ``last`` runs, oldest first."""
    with _connect(db) as conn:
        rows = conn.execute(
            "SELECT run_id, started, candidate, baseline, decision, passed, failed, error,"
            " skipped, waived, total, duration FROM runs ORDER BY started DESC, run_id DESC"
            " LIMIT ?", (last,),
        ).fetchall()
    return [
        RunRow(run_id=r[0], started=r[1], candidate=r[2], baseline=r[3], decision=r[4],
               counts=dict(zip(_COUNT_KEYS, r[5:11], strict=True)), duration=r[11])
        for r in reversed(rows)
    ]


def measurement_series(
    db: Path, run_ids: list[str]
) -> dict[tuple[str, str], tuple[str, dict[str, float]]]:
    """For each (nodeid, measurement): its unit and its value per run id (runs that have it)."""
    series: dict[tuple[str, str], tuple[str, dict[str, float]]] = {}
    if not run_ids:
        return series
    marks = ",".join("?" * len(run_ids))
    with _connect(db) as conn:
        rows = conn.execute(
            f"SELECT run_id, nodeid, name, value, unit FROM measurements"
            f" WHERE run_id IN ({marks}) ORDER BY nodeid, name", run_ids,
        ).fetchall()
    for run_id, nodeid, name, value, unit in rows:
        _, values = series.setdefault((nodeid, name), (unit, {}))
        values[run_id] = value
    return series


def write_trends(db: Path = DEFAULT_DB, out_html: Path = Path("reports/trends.html"),
                 last: int = DEFAULT_LAST) -> Path:
    """Write the trends page for the last ``last`` runs in ``db`` and return its path."""
    runs = last_runs(db, last)
    series = measurement_series(db, [r.run_id for r in runs])
    text = render("trends.html", title="distrogate trends", db=str(db), count_keys=_COUNT_KEYS,
                  runs=[_run_row(r) for r in reversed(runs)],
                  columns=[r.started[:10] or r.run_id for r in runs],
                  series=[_series_row(key, unit, values, runs)
                          for key, (unit, values) in series.items()])
    atomic_write_text(out_html, text)
    log.info("wrote %s (%d runs, %d measurements)", out_html, len(runs), len(series))
    return out_html


def _run_row(run: RunRow) -> dict[str, Any]:
    return {"started": run.started, "run_id": run.run_id, "candidate": run.candidate,
            "baseline": run.baseline, "decision": run.decision,
            "counts": [str(run.counts[k]) for k in _COUNT_KEYS],
            "duration": f"{run.duration:.1f} s"}


def _series_row(key: tuple[str, str], unit: str, values: dict[str, float],
                runs: list[RunRow]) -> dict[str, Any]:
    cells = []
    previous: float | None = None
    for run in runs:
        value = values.get(run.run_id)
        cells.append(_value_cell(value, previous))
        if value is not None:
            previous = value
    points = [values[r.run_id] for r in runs if r.run_id in values]
    return {"nodeid": key[0], "name": key[1], "unit": unit, "spark": spark(points),
            "cells": cells}


def _value_cell(value: float | None, previous: float | None) -> dict[str, str] | None:
    if value is None:
        return None
    cell = {"text": number(value), "change": "", "css": ""}
    if previous is not None and value != previous:
        delta = value - previous
        rel = f" ({delta / previous:+.1%})" if previous else ""
        cell.update(change=f"{delta:+.4g}{rel}", css="up" if delta > 0 else "down")
    return cell


def spark(values: list[float], width: int = 120, height: int = 24) -> dict[str, Any] | None:
    """The geometry of a sparkline of ``values`` (None for fewer than two points): numbers
    only, drawn as an SVG polyline by the template."""
    if len(values) < 2:
        return None
    low, high = min(values), max(values)
    span = (high - low) or 1.0
    step = (width - 4) / (len(values) - 1)
    coords = [(f"{2 + i * step:.1f}", f"{height - 2 - (v - low) / span * (height - 4):.1f}")
              for i, v in enumerate(values)]
    return {"width": width, "height": height, "low": number(low), "high": number(high),
            "points": " ".join(f"{x},{y}" for x, y in coords),
            "last_x": coords[-1][0], "last_y": coords[-1][1]}


def sparkline(values: list[float], width: int = 120, height: int = 24) -> str:
    """An inline SVG polyline of ``values`` (empty for fewer than two points)."""
    geometry = spark(values, width, height)
    if geometry is None:
        return ""
    return render_fragment('{% from "macros.html" import sparkline %}{{ sparkline(s) }}',
                           s=geometry)
