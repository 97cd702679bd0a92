"""The HTML summary and the history database, from synthetic results."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import date
from pathlib import Path

from synth import record, results

from distrogate.differential import Delta, DeltaStatus, Output
from distrogate.policy import parse_policy
from distrogate.report.history import last_runs, record_run, sparkline, write_trends
from distrogate.report.html import render_html, write_html
from distrogate.results import Artifact, Finding, Measurement, Outcome, Results, RunInfo
from distrogate.verdict import decide

TODAY = date(2025, 6, 1)
POLICY = parse_policy("""
waivers:
  - {pattern: "suites/test_w.py::test_*", reason: "known <b>bug</b>", tracker: "https://t/1",
     expires: 2025-07-01}
  - {pattern: "suites/test_old.py::test_*", reason: "gone", tracker: "https://t/2",
     expires: 2025-01-01}
""")


def _run(run_id: str = "run-1", boot: float = 17.0) -> Results:
    res = results(
        record("suites/test_pg.py::test_ok", suite="pg", duration=2.5,
               measurements={"boot_s": Measurement(boot, "s", "cold boot")}),
        record("suites/test_collation.py::test_order[de_DE]", Outcome.FAILED, suite="collation",
               duration=4.0, message="AssertionError: <script>alert(1)</script>",
               findings=[Finding("3 strings sort differently", "glibc 2.41 vs 2.36",
                                 {"changed": 3, "locale": "de_DE"}, "order diff"),
                         Finding("nested data", data={"pairs": [["a", "b"]]})],
               artifacts=[Artifact("order diff", "artifacts/order diff.txt", "diff"),
                          Artifact("console", "artifacts/console-cand.log", "console")]),
        record("suites/test_w.py::test_known", Outcome.FAILED, suite="w", message="known"),
        record("suites/test_pg.py::test_skip", Outcome.SKIPPED, suite="pg", message="no kvm"),
        run_id=run_id,
    )
    return res


def test_summary_contains_verdict_failures_findings_and_links(tmp_path: Path) -> None:
    res = _run()
    verdict = decide(res, POLICY, TODAY)
    out = write_html(tmp_path, res, verdict)
    assert out == tmp_path / "summary.html"
    text = out.read_text()
    assert "banner reject" in text and "exit code 1" in text
    assert "suites/test_collation.py::test_order[de_DE]" in text
    assert "3 strings sort differently" in text
    assert 'href="artifacts/order%20diff.txt"' in text
    assert 'href="artifacts/console-cand.log"' in text
    assert "<td>locale</td><td>de_DE</td>" in text  # dict of scalars as a table
    assert "&#34;pairs&#34;" in text  # nested data as JSON (quotes escaped)
    assert 'title="sha256:' in text  # full digest on hover
    assert "2.41" in text and "2.36" in text
    assert "known &lt;b&gt;bug&lt;/b&gt;" in text  # waiver applied, escaped
    assert "suites/test_old.py::test_*" in text  # expired waiver listed
    assert "boot_s" in text and "cold boot" in text
    assert "ci-1" in text  # host in the footer
    assert "<link" not in text and "<script" not in text and "src=" not in text


def test_summary_escapes_messages(tmp_path: Path) -> None:
    res = _run()
    text = write_html(tmp_path, res, decide(res, POLICY, TODAY)).read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "<script>" not in text


def test_summary_for_promote_has_green_banner(tmp_path: Path) -> None:
    res = results(record("a::t", suite="a"))
    text = write_html(tmp_path, res, decide(res, POLICY, TODAY)).read_text()
    assert "banner promote" in text and "every test passed" in text


def test_absolute_artifact_paths_become_relative(tmp_path: Path) -> None:
    run_dir = tmp_path / "reports" / "run-1"
    log = tmp_path / "labs" / "console.log"
    res = results(record("a::t", Outcome.FAILED, artifacts=[Artifact("c", str(log), "console")]))
    text = write_html(run_dir, res, decide(res, POLICY, TODAY)).read_text()
    assert 'href="../../labs/console.log"' in text


def test_history_records_and_trends(tmp_path: Path) -> None:
    db = tmp_path / "reports" / "history.sqlite"
    for i, boot in enumerate([17.0, 20.0, 15.0]):
        res = _run(f"run-{i}", boot)
        res = Results(run=_with_started(res, f"2025-06-0{i + 1}T10:00:00+00:00"),
                      records=res.records)
        record_run(db, res, decide(res, POLICY, TODAY))
    record_run(db, res, decide(res, POLICY, TODAY))  # re-recording replaces
    runs = last_runs(db)
    assert [r.run_id for r in runs] == ["run-0", "run-1", "run-2"]
    assert runs[0].decision == "reject" and runs[0].counts["failed"] == 1
    assert last_runs(db, last=2)[0].run_id == "run-1"
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT COUNT(*) FROM measurements").fetchone() == (3,)
    out = write_trends(db, tmp_path / "trends.html")
    text = out.read_text()
    assert "run-2" in text and "trixie" in text and "bookworm" in text
    assert "boot_s" in text and "<svg" in text
    assert "+3 (+17.6%)" in text and "-5 (-25.0%)" in text


def test_trends_on_empty_db(tmp_path: Path) -> None:
    text = write_trends(tmp_path / "h.sqlite", tmp_path / "t.html").read_text()
    assert "No runs recorded yet" in text


def test_sparkline() -> None:
    assert sparkline([1.0]) == ""
    svg = sparkline([1.0, 2.0, 2.0])
    assert svg.startswith("<svg") and "polyline" in svg


def _with_started(res: Results, started: str) -> RunInfo:
    return replace(res.run, started=started)


def test_deltas_show_both_observations_side_by_side_escaped(tmp_path: Path) -> None:
    delta = Delta("shell_output", DeltaStatus.REGRESSION, "machinectl shell <box>", "exact",
                  "expected 'a'; the candidate gave '<b>'", Output.of("alpha <ok>"),
                  Output.of("<script>x</script>"))
    rec = record("suites/test_nspawn.py::test_nspawn[shell_output]", "failed", suite="nspawn",
                 message="AssertionError: x", deltas=[delta])
    res = results(rec)
    html = render_html(res, decide(res, parse_policy("{}", "p.yaml"), date(2026, 1, 1)),
                       tmp_path)
    assert "<script>x" not in html and "&lt;script&gt;x&lt;/script&gt;" in html
    assert "alpha &lt;ok&gt;" in html and "machinectl shell &lt;box&gt;" in html
    row = html[html.index("<code>shell_output</code>"):]
    assert row.index("alpha &lt;ok&gt;") < row.index("&lt;script&gt;")  # baseline, then candidate


def test_plots_are_embedded_as_images_and_only_from_inside_the_run_dir(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    (run_dir / "fio").mkdir(parents=True)
    svg = '<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><text>ratio</text></svg>'
    (run_dir / "fio" / "seqread-128k.svg").write_text(svg)
    (tmp_path / "outside.svg").write_text(svg)
    res = results(record("suites/test_fio.py::test_job[seqread-128k]", suite="fio",
                         artifacts=[Artifact("plot: seqread-128k", "fio/seqread-128k.svg",
                                             "plot"),
                                    Artifact("plot: outside", "../outside.svg", "plot"),
                                    Artifact("fio JSON", "fio/baseline-run01.json", "json")]))
    text = render_html(res, decide(res, POLICY, TODAY), run_dir)
    assert "<h2>Plots</h2>" in text
    assert text.count('<img src="data:image/svg+xml;base64,') == 1
    assert "plot: seqread-128k" in text and "plot: outside" not in text
    assert "<svg" not in text  # an image, never markup in the page
