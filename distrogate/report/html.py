"""The run's summary page: ``reports/<run-id>/summary.html``, one self-contained HTML file.

It shows the verdict banner with its exit code and reasons, the two images side by side, a
table per suite with counts and wall time, every test that did not pass with its message, its
deltas (each with the baseline's and the candidate's observation side by side), findings and
artifact links, the waivers, the measurements, and a footer with run and host.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path

from distrogate.differential import Delta, DeltaStatus, Observation
from distrogate.fsutil import atomic_write_text
from distrogate.report.page import data_block, esc, href, number, page, pill, table
from distrogate.results import Artifact, Finding, Results, TestRecord
from distrogate.verdict import Effective, TestVerdict, Verdict, WaiverUse

log = logging.getLogger(__name__)

SUMMARY_NAME = "summary.html"
_IMAGE_ROWS = ("name", "release", "glibc", "kernel", "digest", "boot")
_DIGEST_CHARS = 12
_DELTAS_SHOWN = 100


def write_html(run_dir: Path, results: Results, verdict: Verdict) -> Path:
    """Write ``run_dir/summary.html`` and return its path."""
    out = run_dir / SUMMARY_NAME
    atomic_write_text(out, render_html(results, verdict, run_dir))
    log.info("wrote %s", out)
    return out


def render_html(results: Results, verdict: Verdict, run_dir: Path) -> str:
    """The summary page as a string; ``run_dir`` is where relative artifact links start."""
    records = _records_by_nodeid(results.records)
    sections = [
        _banner(verdict),
        _images(results),
        _suites(results, verdict),
        _problems(verdict, records, run_dir),
        _waivers(verdict),
        _measurements(results),
        _footer(results, verdict),
    ]
    title = f"distrogate {results.run.run_id}: {verdict.decision}"
    return page(title, "\n".join(s for s in sections if s))


def _records_by_nodeid(records: Iterable[TestRecord]) -> dict[str, list[TestRecord]]:
    grouped: dict[str, list[TestRecord]] = {}
    for record in records:
        grouped.setdefault(record.nodeid, []).append(record)
    return grouped


def _banner(verdict: Verdict) -> str:
    reasons = "".join(f"<li>{esc(r)}</li>" for r in verdict.reasons)
    counts = ", ".join(f"{n} {k}" for k, n in verdict.counts.items() if n and k != "total")
    advisories = ""
    if verdict.advisories:
        items = "".join(f"<li>{esc(a)}</li>" for a in verdict.advisories)
        advisories = (f"<h3>Advisory (does not change the verdict)</h3>\n<ul>{items}</ul>")
    return (
        f"<section class=\"banner {esc(verdict.decision)}\">\n"
        f"<h1>{esc(verdict.decision)}</h1>\n"
        f"<div>exit code {verdict.exit_code} · run {esc(verdict.run_id)} · "
        f"{verdict.counts.get('total', 0)} tests ({esc(counts or 'none')}) · "
        f"policy {esc(verdict.policy)} · judged on {esc(verdict.today)}</div>\n"
        f"<ul>{reasons}</ul>\n</section>\n{advisories}"
    )


def _images(results: Results) -> str:
    cand, base = results.run.candidate, results.run.baseline
    rows = [[f"<strong>{esc(key)}</strong>",
             _image_cell(key, cand.get(key)), _image_cell(key, base.get(key))]
            for key in _IMAGE_ROWS]
    suites = ", ".join(results.run.suites) or "—"
    return (f"<h2>Images</h2>\n{table(['', 'candidate', 'baseline (promoted)'], rows)}\n"
            f"<p class=\"muted\">Suites run: {esc(suites)}</p>")


def _image_cell(key: str, value: object) -> str:
    if value in (None, ""):
        return "<span class=\"muted\">—</span>"
    text = str(value)
    if key == "digest" and len(text) > _DIGEST_CHARS:
        short = text.split(":", 1)[-1][:_DIGEST_CHARS]
        return f"<code title=\"{esc(text)}\">{esc(short)}…</code>"
    return esc(text)


def _suites(results: Results, verdict: Verdict) -> str:
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
    rows = [
        [esc(suite or "(none)"), *(f"{int(row[k])}" if row[k] else "" for k in kinds),
         f"{int(row['total'])}", _seconds(_wall(spans.get(suite), row["time"])),
         _seconds(row["time"])]
        for suite, row in sorted(per_suite.items())
    ]
    total = sum(r.duration for r in results.records)
    return (f"<h2>Suites</h2>\n"
            f"{table(['suite', *kinds, 'tests', 'wall time', 'test time'], rows, numeric=range(1, 9))}\n"
            f"<p class=\"muted\">Wall time: from the suite's first test starting to its last one "
            f"ending (VM boots included). Test time: the sum of its tests' durations "
            f"({_seconds(total)} over all suites).</p>")


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


def _problems(verdict: Verdict, records: dict[str, list[TestRecord]], run_dir: Path) -> str:
    order = {Effective.FAILED: 0, Effective.ERROR: 1, Effective.SKIPPED: 2, Effective.WAIVED: 3,
             Effective.ALSO_FAILS: 4}
    shown = sorted((t for t in verdict.tests if t.effective is not Effective.PASSED and t.judged),
                   key=lambda t: (t.mode != "blocking", order.get(t.effective, 9), t.nodeid))
    if not shown:
        return "<h2>Tests that did not pass</h2>\n<p>None: every test passed.</p>"
    blocks = [_problem(t, records.get(t.nodeid, []), run_dir) for t in shown]
    return "<h2>Tests that did not pass</h2>\n" + "\n".join(blocks)


def _problem(test: TestVerdict, records: list[TestRecord], run_dir: Path) -> str:
    parts = [
        f"<div class=\"test\" id=\"{esc(test.nodeid)}\">",
        f"<h3>{pill(test.effective)} <code>{esc(test.nodeid)}</code> "
        f"<span class=\"muted\">{esc(test.mode)} · suite {esc(test.suite)}</span></h3>",
    ]
    if test.waiver:
        parts.append(f"<p>Waived by <code>{esc(test.waiver)}</code></p>")
    if test.effective is Effective.ALSO_FAILS:
        parts.append("<p>Also fails on the promoted image: not a regression (the policy can make "
                     "the suite absolute).</p>")
    if test.baseline_outcome:
        parts.append(f"<p>The baseline's side of this test: {esc(test.baseline_outcome)}.</p>")
    if test.regressions:
        regressions = "".join(f"<li>{esc(r)}</li>" for r in test.regressions)
        waived = (f"<p>Waived items: {esc(', '.join(test.waived_items))}</p>"
                  if test.waived_items else "")
        parts.append(f"<p>Regressions not waived:</p><ul>{regressions}</ul>{waived}")
    messages = [r.message for r in records if r.message]
    for message in dict.fromkeys(messages):
        parts.append(f"<pre>{esc(message)}</pre>")
    deltas = _deltas(records)
    if deltas:
        parts.append(deltas)
    artifacts = [a for r in records for a in r.artifacts]
    for finding in (f for r in records for f in r.findings):
        parts.append(_finding(finding, artifacts, run_dir))
    if artifacts:
        links = "".join(
            f"<li><a href=\"{href(_link(a.path, run_dir))}\">{esc(a.name)}</a> "
            f"<span class=\"muted\">({esc(a.kind)})</span></li>"
            for a in artifacts
        )
        parts.append(f"<p>Artifacts:</p><ul>{links}</ul>")
    parts.append("</div>")
    return "\n".join(parts)


def _deltas(records: list[TestRecord]) -> str:
    """The test's deltas that are not *unchanged*, worst first: the check, its status and
    rule, the sentence, and the two observations side by side."""
    deltas = [d for d in {d.id: d for r in records for d in r.deltas}.values()
              if d.status is not DeltaStatus.UNCHANGED]
    if not deltas:
        return ""
    deltas.sort(key=lambda d: (-d.status.rank, d.id))
    rows = [[f"<code>{esc(d.id)}</code>", pill(str(d.status)), esc(d.rule),
             esc(_delta_text(d)), _observation(d.baseline), _observation(d.candidate)]
            for d in deltas[:_DELTAS_SHOWN]]
    more = len(deltas) - _DELTAS_SHOWN
    note = f"<p class=\"muted\">and {more} more deltas (results.json has them all)</p>" \
        if more > 0 else ""
    return ("<p>Deltas (candidate against baseline):</p>\n"
            + table(["check", "status", "rule", "what changed", "baseline", "candidate"], rows)
            + note)


def _delta_text(delta: Delta) -> str:
    title = delta.title if delta.title and delta.title != delta.id else ""
    return " — ".join(t for t in (title, delta.detail) if t)


def _observation(obs: Observation | None) -> str:
    if obs is None:
        return "<span class=\"muted\">nothing observed</span>"
    return f"<span class=\"muted\">{esc(obs.kind)}</span> {esc(obs.describe())}"


def _finding(finding: Finding, artifacts: list[Artifact], run_dir: Path) -> str:
    parts = [f"<p><strong>Finding: {esc(finding.title)}</strong></p>"]
    if finding.detail:
        parts.append(f"<p>{esc(finding.detail)}</p>")
    if finding.data:
        parts.append(data_block(finding.data))
    if finding.artifact:
        named = next((a for a in artifacts if a.name == finding.artifact), None)
        target = named.path if named is not None else finding.artifact
        parts.append(f"<p>See <a href=\"{href(_link(target, run_dir))}\">"
                     f"{esc(finding.artifact)}</a></p>")
    return "\n".join(parts)


def _link(path: str, run_dir: Path) -> str:
    """A relative link from the run dir to an artifact path."""
    if os.path.isabs(path):
        return Path(os.path.relpath(path, run_dir)).as_posix()
    return path


def _waivers(verdict: Verdict) -> str:
    sections = []
    for title, uses in (("Waivers applied", verdict.waivers_applied),
                        ("Expired waivers (ignored)", verdict.expired_waivers_ignored),
                        ("Live waivers that covered nothing", verdict.unused_waivers)):
        if uses:
            sections.append(f"<h3>{esc(title)}</h3>\n{_waiver_table(uses)}")
    if not sections:
        return ""
    return "<h2>Waivers</h2>\n" + "\n".join(sections)


def _waiver_table(uses: list[WaiverUse]) -> str:
    rows = [
        [f"<code>{esc(u.pattern)}</code>" + (f" items {esc(', '.join(u.items))}" if u.items
                                            else ""),
         esc(u.reason), f"<a href=\"{esc(u.tracker)}\">{esc(u.tracker)}</a>", esc(u.expires),
         ("<br>".join(f"<code>{esc(t)}</code>" for t in u.tests) or "—")
         + (f"<br><span class=\"muted\">{esc(u.why)}</span>" if u.why else "")]
        for u in uses
    ]
    return table(["pattern", "reason", "tracker", "expires", "tests"], rows)


def _measurements(results: Results) -> str:
    rows = [
        [f"<code>{esc(r.nodeid)}</code>", esc(name), number(m.value), esc(m.unit), esc(m.note)]
        for r in results.records for name, m in sorted(r.measurements.items())
    ]
    if not rows:
        return ""
    return ("<h2>Measurements</h2>\n"
            + table(["test", "measurement", "value", "unit", "note"], rows, numeric=[2]))


def _footer(results: Results, verdict: Verdict) -> str:
    run = results.run
    host = ", ".join(f"{k}: {v}" for k, v in sorted(run.host.items())) or "—"
    lab = ", ".join(f"{k}: {v}" for k, v in sorted(run.lab.items())) or "—"
    argv = " ".join(run.argv)
    return (
        "<footer>\n"
        f"<p>Run <code>{esc(run.run_id)}</code> · started {esc(run.started)} · "
        f"finished {esc(run.finished)} · results schema v{results.schema_version}"
        + (f" (migrated from v{results.migrated_from})" if results.migrated_from else "")
        + "</p>\n"
        f"<p>Host: {esc(host)}</p>\n<p>Lab: {esc(lab)}</p>\n"
        f"<p>Command: <code>{esc(argv or '—')}</code></p>\n"
        f"<p class=\"muted\">Verdict {esc(verdict.decision)} (exit code {verdict.exit_code}) "
        f"under policy {esc(verdict.policy)}</p>\n"
        "</footer>"
    )
