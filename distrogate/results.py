"""results.json: the one record of a gate run that everything downstream reads.

The pytest plugin builds a :class:`RunInfo` and one :class:`TestRecord` per test and calls
:func:`write_results`; the verdict and the reports call :func:`load_results`. The file is
validated against ``schemas/results.schema.json`` (JSON Schema draft 2020-12) both ways, and
carries ``schema_version: 1``.

Image dicts (``RunInfo.candidate``/``baseline``) have the string keys ``name``, ``digest``,
``release``, ``glibc``, ``kernel`` and ``boot``; ``name`` and ``digest`` are required.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict, dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import jsonschema

from distrogate.errors import InputError
from distrogate.fsutil import atomic_write_json

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
IMAGE_KEYS = ("name", "digest", "release", "glibc", "kernel", "boot")
_MAX_PROBLEM = 200


class Outcome(StrEnum):
    """What pytest said about one test (before any waiver)."""

    PASSED = "passed"
    FAILED = "failed"
    ERROR = "error"
    SKIPPED = "skipped"


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


def headline(message: str, limit: int = 300) -> str:
    """A test message's first non-empty line, at most ``limit`` characters, without the colon
    that introduced the detail lines below it (``"3 locales changed:"`` → ``"3 locales changed"``)."""
    line = next((ln.strip() for ln in message.splitlines() if ln.strip()), "").rstrip(":;, ")
    return line if len(line) <= limit else line[: limit - 1] + "…"


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
        "records": [_record_to_dict(r) for r in records],
    }


def _record_to_dict(record: TestRecord) -> dict[str, Any]:
    doc = asdict(record)
    doc["outcome"] = str(Outcome(record.outcome))
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
    _validate(doc, path)
    return results_from_dict(doc)


def results_from_dict(doc: dict[str, Any]) -> Results:
    """Build :class:`Results` from an already validated document."""
    run = RunInfo(**doc["run"])
    records = [_record_from_dict(r) for r in doc["records"]]
    return Results(run=run, records=records, schema_version=doc["schema_version"])


def _record_from_dict(doc: dict[str, Any]) -> TestRecord:
    fields = dict(doc)
    fields["outcome"] = Outcome(doc["outcome"])
    fields["duration"] = float(doc["duration"])
    fields["measurements"] = {
        name: Measurement(value=float(m["value"]), unit=m["unit"], note=m.get("note", ""))
        for name, m in doc.get("measurements", {}).items()
    }
    fields["findings"] = [Finding(**f) for f in doc.get("findings", [])]
    fields["artifacts"] = [Artifact(**a) for a in doc.get("artifacts", [])]
    return TestRecord(**fields)


@cache
def schema() -> dict[str, Any]:
    """The results JSON Schema shipped with the package."""
    text = resources.files("distrogate").joinpath("schemas/results.schema.json").read_text()
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def _validate(doc: Any, path: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema())
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
