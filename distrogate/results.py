"""results.json: the one record of a gate run that everything downstream reads.

The pytest plugin builds a :class:`RunInfo` and one :class:`TestRecord` per test and calls
:func:`write_results`; the verdict and the reports call :func:`load_results`. The file is
validated against ``schemas/results.schema.json`` (JSON Schema draft 2020-12) both ways, and
carries ``schema_version: 2``: each record's comparisons are ``deltas``
(:class:`~distrogate.differential.Delta`, with the baseline's and the candidate's observations).

A version 1 file (a test-level ``delta`` and per-item ``items``, no observations) is migrated when
read (:func:`migrate_v1`): each item becomes a delta without observations (rule ``v1``), and a
test-level delta with no items one delta named after the test. Other versions are refused with
one line naming the file.

Image dicts (``RunInfo.candidate``/``baseline``) have the string keys ``name``, ``digest``,
``release``, ``glibc``, ``kernel`` and ``boot``; ``name`` and ``digest`` are required.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from distrogate.differential import Delta
from distrogate.errors import InputError
from distrogate.fsutil import atomic_write_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
V1_RULE = "v1"  # the rule named by deltas migrated from a version 1 file
IMAGE_KEYS = ("name", "digest", "release", "glibc", "kernel", "boot")
_MAX_PROBLEM = 200


class Outcome(StrEnum):
    """What happened to one test (before any waiver), by cause: *failed* is a statement about
    the image, *error* a problem of the lab or the harness."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"

    @property
    def severity(self) -> int:
        """The one severity order: failed > error > skipped > passed. Where a test has several
        outcomes (its phases, several records), the most severe one stands."""
        return _SEVERITY[self]


_SEVERITY = {Outcome.PASSED: 0, Outcome.SKIPPED: 1, Outcome.ERROR: 2, Outcome.FAILED: 3}


def worst(outcomes: Iterable[Outcome | str]) -> Outcome:
    """The most severe of ``outcomes`` (passed when there are none)."""
    return max((Outcome(o) for o in outcomes), key=lambda o: o.severity, default=Outcome.PASSED)


@dataclass(frozen=True)
class Measurement:
    """A number a test measured, with its unit (``"ms"``, ``"MiB/s"``, ``"count"``)."""

    value: float
    unit: str
    note: str = ""


@dataclass(frozen=True)
class Finding:
    """What changed between the images: a title, prose detail, structured data, an artifact."""

    title: str
    detail: str = ""
    data: dict[str, Any] = field(default_factory=dict)
    artifact: str | None = None


@dataclass(frozen=True)
class Artifact:
    """A file a test left behind (console log, diff); ``path`` is relative to the run dir."""

    name: str
    path: str
    kind: str


@dataclass(frozen=True)
class TestRecord:
    """The result of one test; ``images`` maps a role (candidate, baseline) to an image dict."""

    __test__ = False  # not a pytest test class

    nodeid: str
    outcome: Outcome
    suite: str
    duration: float
    message: str = ""
    images: dict[str, dict[str, Any]] = field(default_factory=dict)
    measurements: dict[str, Measurement] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)
    markers: list[str] = field(default_factory=list)
    started: str = ""
    deltas: list[Delta] = field(default_factory=list)  # the test's comparisons of the images
    role: str = ""  # candidate | baseline for a test parametrized over the images
    pair: str = ""  # that test's id with the role left out


@dataclass(frozen=True)
class RunInfo:
    """What ran, when, on which images, from which command line, in which lab, on which host."""

    run_id: str
    started: str
    finished: str
    candidate: dict[str, Any]
    baseline: dict[str, Any]
    suites: list[str]
    argv: list[str]
    lab: dict[str, Any]
    host: dict[str, Any]


@dataclass(frozen=True)
class Results:
    """A loaded results.json."""

    run: RunInfo
    records: list[TestRecord]
    schema_version: int = SCHEMA_VERSION
    migrated_from: int | None = None  # the version of the file read, when it was migrated


def headline(message: str, limit: int = 300) -> str:
    """A test message's first non-empty line, at most ``limit`` characters, without the colon
    that introduced the detail lines below it (``"3 locales changed:"`` → ``"3 locales changed"``)."""
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "").rstrip(":;, ")
    return line if len(line) <= limit else line[: limit - 1] + "…"


def suite_of(nodeid: str) -> str:
    """The suite a test belongs to: ``suites/test_smoke.py::x`` → ``smoke``;
    ``suites/collation/test_y.py::x`` → ``collation``; a test file elsewhere (a suite of your
    own, ``../my/test_kafka.py::x``) → ``kafka``; anything else → ``harness``."""
    path = nodeid.split("::", 1)[0]
    parts = Path(path).parts
    if len(parts) >= 2 and parts[0] == "suites":
        if len(parts) > 2:
            return parts[1]
        return Path(parts[1]).stem.removeprefix("test_")
    if parts and parts[0] != "tests" and path.endswith(".py"):
        return Path(path).stem.removeprefix("test_")
    return "harness"


def relative_artifact_path(path: Path, run_dir: Path) -> str:
    """``path`` relative to ``run_dir`` when it lies inside it, else the path as given."""
    try:
        return path.resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def results_to_dict(run: RunInfo, records: list[TestRecord]) -> dict[str, Any]:
    """The JSON document for a run (plain dicts, lists, strings and numbers)."""
    return {
        "schema_version": SCHEMA_VERSION,
        "run": asdict(run),
        "records": [record_to_dict(r) for r in records],
    }


def record_to_dict(record: TestRecord) -> dict[str, Any]:
    """A :class:`TestRecord` in its JSON form (the inverse of :func:`record_from_dict`)."""
    doc = asdict(record)
    doc["outcome"] = str(Outcome(record.outcome))
    doc["deltas"] = [d.to_dict() for d in record.deltas]
    return doc


def write_results(path: Path, run: RunInfo, records: list[TestRecord]) -> None:
    """Validate the run against the schema, then write it atomically to ``path``.

    Raises :class:`InputError` naming the JSON path of the first problem (a record that does
    not fit the schema, a value that is not JSON, a measurement that is NaN or infinite).
    """
    doc = results_to_dict(run, records)
    try:
        # Round-trip: tuples become lists, and anything JSON cannot hold fails here.
        doc = json.loads(json.dumps(doc, allow_nan=False))
    except (TypeError, ValueError) as exc:
        raise InputError(f"{path}: results are not plain JSON data: {_one_line(str(exc))}") from exc
    _validate(doc, path)
    atomic_write_json(path, doc)
    log.info("wrote %d test records to %s", len(records), path)


def load_results(path: Path) -> Results:
    """Read and validate a results.json; one-line :class:`InputError` for any bad file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: results file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read results: {_one_line(str(exc))}") from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{path}: not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    version = doc.get("schema_version") if isinstance(doc, dict) else None
    if version == 1:
        _validate(doc, path, schema_v1())
        log.warning("%s: results schema version 1, migrated to version %d (items and the "
                    "test-level delta became deltas without observations)", path, SCHEMA_VERSION)
        doc = migrate_v1(doc)
    elif isinstance(version, int) and not isinstance(version, bool) \
            and version != SCHEMA_VERSION:
        raise InputError(f"{path}: results schema version {version} is not supported (this "
                         f"distrogate reads versions 1 and {SCHEMA_VERSION})")
    _validate(doc, path)
    return results_from_dict(doc, migrated_from=1 if version == 1 else None)


def results_from_dict(doc: dict[str, Any], migrated_from: int | None = None) -> Results:
    """Build :class:`Results` from an already validated (version 2) document."""
    run = RunInfo(**doc["run"])
    records = [record_from_dict(r) for r in doc["records"]]
    return Results(run=run, records=records, schema_version=doc["schema_version"],
                   migrated_from=migrated_from)


def migrate_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """A version 1 results document as version 2 (a new document; ``doc`` is unchanged)."""
    return {**doc, "schema_version": SCHEMA_VERSION,
            "records": [migrate_record_v1(r) for r in doc["records"]]}


def migrate_record_v1(doc: dict[str, Any]) -> dict[str, Any]:
    """One version 1 record (``delta``, ``items``) as version 2 (``deltas`` without
    observations); a record without those keys is returned as it is."""
    if "items" not in doc and "delta" not in doc:
        return doc
    out = {k: v for k, v in doc.items() if k not in ("items", "delta")}
    deltas = [{"id": i["id"], "status": i["status"], "title": i.get("title", ""),
               "rule": V1_RULE, "detail": "", "baseline": None, "candidate": None}
              for i in doc.get("items", [])]
    if not deltas and doc.get("delta"):
        name = doc["nodeid"].split("::")[-1] or doc["nodeid"]
        deltas = [{"id": name, "status": doc["delta"], "title": "", "rule": V1_RULE,
                   "detail": "", "baseline": None, "candidate": None}]
    out["deltas"] = out.get("deltas", []) + deltas
    return out


NO_RESULT = "no result: the test was planned but never reported"
DIED_RUNNING = ("no result: the process running this test died while it ran (a crashed or "
                "killed worker)")


def missing_records(planned: Iterable[str], records: Iterable[TestRecord],
                    started: Iterable[str] = ()) -> list[TestRecord]:
    """An *error* record for each planned test that has no record: a test that started and
    never reported died with its process; the others never ran."""
    seen = {r.nodeid for r in records}
    began = set(started)
    return [TestRecord(nodeid=n, outcome=Outcome.ERROR, suite=suite_of(n), duration=0.0,
                       message=DIED_RUNNING if n in began else
                       NO_RESULT + " (the run stopped before it)")
            for n in dict.fromkeys(planned) if n not in seen]


def journal_starts(path: Path) -> list[str]:
    """The test ids a run journal says started."""
    return [e["nodeid"] for e in read_journal(path) if e.get("event") == "start"]


def journal_records(path: Path) -> list[TestRecord]:
    """The last record of each test in a run journal (what finished before a crash)."""
    docs: dict[str, dict[str, Any]] = {}
    for entry in read_journal(path):
        if entry.get("event") == "record":
            docs[entry["doc"]["nodeid"]] = entry["doc"]
    return [record_from_dict(d) for d in docs.values()]


def read_journal(path: Path) -> list[dict[str, Any]]:
    """The entries of a journal.jsonl; a torn last line (the writer died) is skipped."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    entries = []
    for line in lines:
        try:
            entries.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s: skipping a torn line", path)
    return entries


def record_from_dict(doc: dict[str, Any]) -> TestRecord:
    """A :class:`TestRecord` from its JSON form (keys the record does not know are ignored; a
    version 1 record, as an old run journal holds, is migrated)."""
    doc = migrate_record_v1(doc)
    known = set(TestRecord.__dataclass_fields__)
    fields = {k: v for k, v in doc.items() if k in known}
    fields["outcome"] = Outcome(doc["outcome"])
    fields["duration"] = float(doc["duration"])
    fields["measurements"] = {
        name: Measurement(value=float(m["value"]), unit=m["unit"], note=m.get("note", ""))
        for name, m in doc.get("measurements", {}).items()
    }
    fields["findings"] = [Finding(**f) for f in doc.get("findings", [])]
    fields["artifacts"] = [Artifact(**a) for a in doc.get("artifacts", [])]
    fields["deltas"] = [Delta.from_dict(d) for d in doc.get("deltas", [])]
    return TestRecord(**fields)


@cache
def schema() -> dict[str, Any]:
    """The results JSON Schema shipped with the package."""
    text = resources.files("distrogate").joinpath("schemas/results.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


@cache
def schema_v1() -> dict[str, Any]:
    """The version 1 results schema (to check a file before migrating it)."""
    text = resources.files("distrogate").joinpath("schemas/results.v1.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _validate(doc: Any, path: Path, against: dict[str, Any] | None = None) -> None:
    validator = jsonschema.Draft202012Validator(against or schema())
    errors = sorted(validator.iter_errors(doc), key=_document_order)
    if errors:
        first = errors[0]
        where = first.json_path
        raise InputError(f"{path}: at {where}: {_one_line(first.message)}")
    for record in doc["records"]:
        for name, m in record.get("measurements", {}).items():
            if not math.isfinite(m["value"]):
                raise InputError(
                    f"{path}: measurement {name!r} of {record['nodeid']} is not finite")


def _document_order(error: jsonschema.ValidationError) -> list[tuple[int, int, str]]:
    return [(0, p, "") if isinstance(p, int) else (1, 0, str(p)) for p in error.absolute_path]


def _one_line(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= _MAX_PROBLEM else line[: _MAX_PROBLEM - 1] + "…"
