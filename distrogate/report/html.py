"""The run's summary page: ``reports/<run-id>/summary.html``, one self-contained HTML file.

It shows the verdict banner with its exit code and reasons, the two images side by side, a
table per suite with counts and wall time, every test that did not pass with its message, its
deltas (each with the baseline's and the candidate's observation side by side), findings and
artifact links, the waivers, the measurements, and a footer with run and host.
"""

from __future__ import annotations

import base64
import logging
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from distrogate.differential import Delta, DeltaStatus, Observation
from distrogate.fsutil import atomic_write_text
from distrogate.report.page import data_block, href, number, render, web_link
from distrogate.results import Artifact, Finding, Results, TestRecord
from distrogate.verdict import Effective, TestVerdict, Verdict, WaiverUse

log = logging.getLogger(__name__)

SUMMARY_NAME = "summary.html"
_IMAGE_ROWS = ("name", "release", "glibc", "kernel", "digest", "boot")
_DIGEST_CHARS = 12
_DELTAS_SHOWN = 100
PLOT_KIND = "plot"  # an artifact of this kind (an SVG file) is shown on the page
_PLOT_LIMIT = 2 << 20  # bytes: a larger plot is linked, not embedded


def write_html(run_dir: Path, results: Results, verdict: Verdict) -> Path:
    """Write ``run_dir/summary.html`` and return its path."""
    out = run_dir / SUMMARY_NAME
    atomic_write_text(out, render_html(results, verdict, run_dir))
    log.info("wrote %s", out)
    return out


def render_html(results: Results, verdict: Verdict, run_dir: Path) -> str:
    """The summary page as a string; ``run_dir`` is where relative artifact links start."""
    records = _records_by_nodeid(results.records)
    return render("summary.html",
                  title=f"distrogate {results.run.run_id}: {verdict.decision}",
                  verdict=_verdict(verdict), images=_images(results),
                  suites=_suites(results, verdict), problems=_problems(verdict, records, run_dir),
                  waivers=_waivers(verdict), measurements=_measurements(results),
                  plots=_plots(results, run_dir),
                  footer=_footer(results))


def _records_by_nodeid(records: Iterable[TestRecord]) -> dict[str, list[TestRecord]]:
    grouped: dict[str, list[TestRecord]] = {}
    for record in records:
        grouped.setdefault(record.nodeid, []).append(record)
    return grouped


def _verdict(verdict: Verdict) -> dict[str, Any]:
    counts = ", ".join(f"{n} {k}" for k, n in verdict.counts.items() if n and k != "total")
    return {"decision": str(verdict.decision), "exit_code": verdict.exit_code,
            "run_id": verdict.run_id, "total": verdict.counts.get("total", 0),
            "counts": counts or "none", "policy": verdict.policy, "today": str(verdict.today),
            "reasons": list(verdict.reasons), "advisories": list(verdict.advisories)}


def _images(results: Results) -> dict[str, Any]:
    cand, base = results.run.candidate, results.run.baseline
    rows = [{"key": key, "candidate": _image_cell(key, cand.get(key)),
             "baseline": _image_cell(key, base.get(key))} for key in _IMAGE_ROWS]
    return {"rows": rows, "suites": ", ".join(results.run.suites) or "—"}


def _image_cell(key: str, value: object) -> dict[str, str | None]:
    if value in (None, ""):
        return {"text": None, "title": None}
    text = str(value)
    if key == "digest" and len(text) > _DIGEST_CHARS:
        return {"text": text.split(":", 1)[-1][:_DIGEST_CHARS], "title": text}
    return {"text": text, "title": None}


def _suites(results: Results, verdict: Verdict) -> dict[str, Any]:
    kinds = [str(k) for k in Effective]
    per_suite: dict[str, dict[str, float]] = {}
    for test in verdict.tests:
        row = per_suite.setdefault(test.suite, dict.fromkeys([*kinds, "time", "total"], 0.0))
        row[str(test.effective)] += 1
        row["total"] += 1
    spans: dict[str, list[tuple[float, float]]] = {}
    for record in results.records:
        per_suite.setdefault(record.suite, dict.fromkeys([*kinds, "time", "total"], 0.0))
        per_suite[record.suite]["time"] += record.duration
        start = _timestamp(record.started)
        if start is not None:
            spans.setdefault(record.suite, []).append((start, start + record.duration))
    rows = [{"name": suite or "(none)",
             "counts": [f"{int(row[k])}" if row[k] else "" for k in kinds],
             "total": f"{int(row['total'])}",
             "wall": _seconds(_wall(spans.get(suite), row["time"])),
             "time": _seconds(row["time"])}
            for suite, row in sorted(per_suite.items())]
    total = sum(r.duration for r in results.records)
    return {"kinds": kinds, "rows": rows, "total": _seconds(total)}


def _timestamp(text: str) -> float | None:
    try:
        return datetime.fromisoformat(text).timestamp() if text else None
    except ValueError:
        return None


def _wall(spans: list[tuple[float, float]] | None, fallback: float) -> float:
    if not spans:
        return fallback
    return max(end for _, end in spans) - min(start for start, _ in spans)


def _seconds(value: float) -> str:
    if value >= 120:
        return f"{int(value // 60)} min {value % 60:.0f} s"
    return f"{value:.1f} s"


def _problems(verdict: Verdict, records: dict[str, list[TestRecord]],
              run_dir: Path) -> list[dict[str, Any]]:
    order = {Effective.FAILED: 0, Effective.ERROR: 1, Effective.SKIPPED: 2, Effective.WAIVED: 3,
             Effective.ALSO_FAILS: 4}
    shown = sorted((t for t in verdict.tests if t.effective is not Effective.PASSED and t.judged),
                   key=lambda t: (t.mode != "blocking", order.get(t.effective, 9), t.nodeid))
    return [_problem(t, records.get(t.nodeid, []), run_dir) for t in shown]


def _problem(test: TestVerdict, records: list[TestRecord], run_dir: Path) -> dict[str, Any]:
    artifacts = [a for r in records for a in r.artifacts]
    return {
        "effective": str(test.effective), "nodeid": test.nodeid, "mode": test.mode,
        "suite": test.suite, "waiver": test.waiver or "",
        "also_fails": test.effective is Effective.ALSO_FAILS,
        "baseline_outcome": test.baseline_outcome or "",
        "regressions": list(test.regressions), "waived_items": list(test.waived_items),
        "messages": list(dict.fromkeys(r.message for r in records if r.message)),
        "deltas": _deltas(records),
        "findings": [_finding(f, artifacts, run_dir) for r in records for f in r.findings],
        "artifacts": [{"href": href(_link(a.path, run_dir)), "name": a.name, "kind": a.kind}
                      for a in artifacts],
    }


def _deltas(records: list[TestRecord]) -> dict[str, Any]:
    """The test's deltas that are not *unchanged*, worst first: the check, its status and
    rule, the sentence, and the two observations side by side."""
    deltas = [d for d in {d.id: d for r in records for d in r.deltas}.values()
              if d.status is not DeltaStatus.UNCHANGED]
    deltas.sort(key=lambda d: (-d.status.rank, d.id))
    rows = [{"id": d.id, "status": str(d.status), "rule": d.rule, "text": _delta_text(d),
             "baseline": _observation(d.baseline), "candidate": _observation(d.candidate)}
            for d in deltas[:_DELTAS_SHOWN]]
    return {"rows": rows, "more": len(deltas) - _DELTAS_SHOWN}


def _delta_text(delta: Delta) -> str:
    title = delta.title if delta.title and delta.title != delta.id else ""
    return " — ".join(t for t in (title, delta.detail) if t)


def _observation(obs: Observation | None) -> dict[str, str] | None:
    return None if obs is None else {"kind": str(obs.kind), "text": obs.describe()}


def _finding(finding: Finding, artifacts: list[Artifact], run_dir: Path) -> dict[str, Any]:
    link = None
    if finding.artifact:
        named = next((a for a in artifacts if a.name == finding.artifact), None)
        target = named.path if named is not None else finding.artifact
        link = {"href": href(_link(target, run_dir)), "name": finding.artifact}
    return {"title": finding.title, "detail": finding.detail or "",
            "data": data_block(finding.data) if finding.data else None, "link": link}


def _link(path: str, run_dir: Path) -> str:
    """A relative link from the run dir to an artifact path."""
    if os.path.isabs(path):
        return Path(os.path.relpath(path, run_dir)).as_posix()
    return path


def _waivers(verdict: Verdict) -> list[dict[str, Any]]:
    return [{"title": title, "uses": [_waiver_use(u) for u in uses]}
            for title, uses in (("Waivers applied", verdict.waivers_applied),
                                ("Expired waivers (ignored)", verdict.expired_waivers_ignored),
                                ("Live waivers that covered nothing", verdict.unused_waivers))
            if uses]


def _waiver_use(use: WaiverUse) -> dict[str, Any]:
    return {"pattern": use.pattern, "item_names": list(use.items), "reason": use.reason,
            "tracker": use.tracker, "tracker_href": web_link(use.tracker),
            "expires": str(use.expires), "tests": list(use.tests), "why": use.why or ""}


def _measurements(results: Results) -> list[dict[str, str]]:
    return [{"nodeid": r.nodeid, "name": name, "value": number(m.value), "unit": m.unit,
             "note": m.note}
            for r in results.records for name, m in sorted(r.measurements.items())]


def _plots(results: Results, run_dir: Path) -> list[dict[str, str]]:
    """Every SVG artifact of kind ``plot`` inside the run dir, as an image embedded in the page
    (a ``data:`` URI: the page stays one file that works offline, and an SVG shown as an image
    runs no script)."""
    shown = []
    root = run_dir.resolve()
    for record in results.records:
        for artifact in record.artifacts:
            if artifact.kind != PLOT_KIND or not artifact.path.endswith(".svg"):
                continue
            path = (run_dir / artifact.path).resolve()
            if not path.is_relative_to(root) or not path.is_file():
                continue
            entry = {"nodeid": record.nodeid, "name": artifact.name,
                     "href": href(_link(artifact.path, run_dir)), "src": ""}
            if path.stat().st_size <= _PLOT_LIMIT:
                entry["src"] = ("data:image/svg+xml;base64,"
                                + base64.b64encode(path.read_bytes()).decode("ascii"))
            shown.append(entry)
    return shown


def _footer(results: Results) -> dict[str, Any]:
    run = results.run
    return {"run_id": run.run_id, "started": run.started, "finished": run.finished,
            "schema_version": results.schema_version,
            "migrated_from": results.migrated_from or "",
            "host": ", ".join(f"{k}: {v}" for k, v in sorted(run.host.items())) or "—",
            "lab": ", ".join(f"{k}: {v}" for k, v in sorted(run.lab.items())) or "—",
            "argv": " ".join(run.argv) or "—"}
