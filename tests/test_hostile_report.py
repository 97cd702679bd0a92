"""Guest text in the reports cannot add markup or script: a summary and a trends page whose
guest-derived strings (command output, journal lines, locale, unit and file names, os-release
fields, the host name) carry ``<script>``, ``</table>``, event handlers and attribute breakouts
are opened in headless Chromium, and the DOM it builds is checked: no element or attribute
of the payloads exists, the page's structure is exactly that of the same report with harmless
text, and the payloads are there as text."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import time
from dataclasses import replace
from datetime import date
from html.parser import HTMLParser
from pathlib import Path

import pytest

from distrogate.differential import Delta, DeltaStatus, Output
from distrogate.policy import parse_policy
from distrogate.report.history import record_run, write_trends
from distrogate.report.html import write_html
from distrogate.results import Artifact, Finding, Measurement, Outcome, Results
from distrogate.verdict import decide
from tests.conftest import Cli
from tests.unit.synth import record, results

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PAYLOADS = (
    "<script>document.documentElement.setAttribute('data-pwned','script')</script>",
    "</table></pre></div></td><img src=x onerror=\"document.documentElement"
    ".setAttribute('data-pwned','img')\">",
    "\"><svg onload=\"document.documentElement.setAttribute('data-pwned','svg')\">",
    "javascript:document.documentElement.setAttribute('data-pwned','href')",
)
TODAY = date(2026, 1, 1)
TEST_IMAGES = Path(__file__).resolve().parent / "images"


def hostile_results(text: str) -> Results:
    """Results in which every string a guest can influence is ``text`` (or contains it)."""
    journal = "\n".join(f"Jan 01 00:00:0{i} distrogate evil.service[1]: {text}" for i in range(3))
    delta = Delta(f"unit_state[{text}]", DeltaStatus.REGRESSION, f"unit {text}", "exact",
                  f"the candidate printed {text}", Output.of(f"ok {text}"),
                  Output.of(f"{text}\n{journal}"))
    failing = record(
        f"suites/test_smoke.py::test_boots_to_multi_user[{text}]", Outcome.FAILED, suite="smoke",
        message=f"AssertionError: failed units: evil.service {text}\n{journal}",
        findings=[Finding(f"journal of evil.service {text}", journal,
                          {"unit": f"evil.service {text}", "journal": journal}),
                  Finding(f"locale {text}", "", {"lines": journal.splitlines(),
                                                 "locale": text}, artifact=text)],
        artifacts=[Artifact(f"console {text}", f"consoles/{text}.log", "console"),
                   Artifact("link", text, "file")],
        deltas=[delta],
        measurements={f"boot {text}": Measurement(1.5, f"s {text}", f"note {text}")})
    res = results(failing, record("suites/test_smoke.py::test_agent_answers", suite="smoke"))
    run = res.run
    guest_image = {**run.candidate, "release": f"trixie {text}", "kernel": f"6.12 {text}",
                   "glibc": f"2.41 {text}", "name": f"candidate {text}"}
    return Results(run=replace(run, candidate=guest_image, host={"hostname": f"ci {text}"},
                               argv=["distrogate", "gate", "--candidate", text]),
                   records=res.records)


class DomShape(HTMLParser):
    """The element structure of a page (tags and attribute names) and its text."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, tuple[str, ...]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, tuple(sorted(name for name, _ in attrs))))
        for name, value in attrs:
            assert not name.startswith("on"), f"event handler attribute {name}={value!r}"
            assert name != "data-pwned", "a payload ran"
            if name in ("href", "src") and value:
                assert not value.lower().startswith("javascript:"), value

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def dom(page: Path) -> DomShape:
    """The DOM Chromium builds for ``page`` (after scripts, had any run), parsed."""
    assert CHROMIUM is not None
    profile = page.parent / f".chromium-{page.stem}"
    result = subprocess.run(
        [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         f"--user-data-dir={profile}", "--virtual-time-budget=2000", "--dump-dom",
         page.as_uri()], capture_output=True, text=True, timeout=120, check=True)
    shutil.rmtree(profile, ignore_errors=True)
    assert "<html" in result.stdout, result.stderr[-2000:]
    shape = DomShape()
    shape.feed(result.stdout)
    return shape


def pages(tmp_path: Path, text: str) -> tuple[Path, Path]:
    """The summary and trends pages of :func:`hostile_results` with ``text``."""
    out = tmp_path / ("hostile" if text != "X" else "harmless")
    out.mkdir()
    res = hostile_results(text)
    verdict = decide(res, parse_policy("{}", "policy.yaml"), TODAY)
    summary = write_html(out, res, verdict)
    db = out / "history.sqlite"
    for index in range(3):
        record_run(db, replace(res, run=replace(res.run, run_id=f"run-{index} {text}")), verdict)
    with sqlite3.connect(db) as conn:  # a measurement that moves, for the sparkline
        conn.execute("UPDATE measurements SET value = value + rowid")
    trends = write_trends(db, out / "trends.html")
    return summary, trends


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make setup)")
def test_guest_text_cannot_add_markup_or_script(tmp_path: Path) -> None:
    started = time.monotonic()
    hostile = " ".join(PAYLOADS)
    for evil, harmless in zip(pages(tmp_path, hostile), pages(tmp_path, "X"), strict=True):
        evil_dom, harmless_dom = dom(evil), dom(harmless)
        tags = {tag for tag, _ in evil_dom.tags}
        assert not tags & {"script", "img", "iframe", "object", "embed"}, tags
        assert evil_dom.tags == harmless_dom.tags, f"{evil.name}: the structure changed"
        text = "".join(evil_dom.text)
        for payload in PAYLOADS[:2]:
            assert payload in text, f"{evil.name}: {payload!r} is not shown as text"
    print(f"checked in headless Chromium in {time.monotonic() - started:.1f}s")


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make setup)")
def test_a_hostile_candidates_output_is_text_in_the_summary(cli: Cli, tmp_path: Path) -> None:
    """A real gate of a candidate whose failing unit's description (in command output) and
    journal lines carry ``<script>`` and ``</table>``: the summary, opened in Chromium, shows
    them as text and has no element or handler of theirs."""
    reports = tmp_path / "reports"
    result = cli("gate", "--candidate", str(TEST_IMAGES / "hostile-output.yaml"),
                 "--suite", "smoke", "--reports-dir", str(reports), timeout=1800)
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 1, result.stderr[-3000:]  # reject: a unit fails on it alone
    summary = (reports / "latest").resolve() / "summary.html"
    shape = dom(summary)
    tags = {tag for tag, _ in shape.tags}
    assert not tags & {"script", "img", "iframe", "object", "embed"}, tags
    text = "".join(shape.text)
    assert "data-pwned','unit')</script></table>" in text  # the unit's description, as text
    assert "<script>document.title=1</script></table></pre><img src=x onerror=alert(1)>" in text
    cli.assert_nothing_left()
