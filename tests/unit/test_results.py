"""results.json: round trip, schema validation, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synth import run_info

from distrogate.errors import InputError
from distrogate.results import (
    Artifact,
    Finding,
    Measurement,
    Outcome,
    TestRecord,
    load_results,
    record_from_dict,
    record_to_dict,
    relative_artifact_path,
    write_results,
)


def _records() -> list[TestRecord]:
    return [
        TestRecord(nodeid="suites/test_a.py::test_ok", outcome=Outcome.PASSED, suite="a",
                   duration=0.5, measurements={"boot_s": Measurement(17.2, "s", "cold")},
                   markers=["vm"], started="2025-06-01T10:00:01+00:00"),
        TestRecord(nodeid="suites/test_a.py::test_bad", outcome=Outcome.FAILED, suite="a",
                   duration=1.5, message="assert 1 == 2",
                   images={"candidate": {"name": "trixie"}},
                   findings=[Finding("order changed", "3 strings", {"n": 3}, "diff")],
                   artifacts=[Artifact("diff", "artifacts/order.diff", "diff")]),
    ]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_results(path, run_info(), _records())
    loaded = load_results(path)
    assert loaded.run == run_info()
    assert loaded.records == _records()
    assert loaded.schema_version == 1
    assert json.loads(path.read_text())["schema_version"] == 1


def test_record_dict_round_trip_through_json() -> None:
    """The one JSON form of a record (what crosses xdist and the journal) reads back equal."""
    for record in _records():
        doc = json.loads(json.dumps(record_to_dict(record)))
        assert doc["outcome"] == str(record.outcome)
        assert record_from_dict(doc) == record


def test_missing_file_is_one_line_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not found") as info:
        load_results(tmp_path / "nope.json")
    assert "\n" not in str(info.value)
    assert "nope.json" in str(info.value)


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match=r"results\.json: not valid JSON: line 1"):
        load_results(path)


def _bad_file(tmp_path: Path, mutate: object) -> Path:
    path = tmp_path / "results.json"
    write_results(path, run_info(), _records())
    doc = json.loads(path.read_text())
    mutate(doc)  # type: ignore[operator]
    path.write_text(json.dumps(doc))
    return path


@pytest.mark.parametrize(
    ("mutate", "where"),
    [
        (lambda d: d["records"][1].__setitem__("outcome", "exploded"),
         r"\$\.records\[1\]\.outcome"),
        (lambda d: d["records"][0]["measurements"]["boot_s"].pop("unit"),
         r"\$\.records\[0\]\.measurements\.boot_s"),
        (lambda d: d["run"].pop("run_id"), r"at \$\.run: 'run_id' is a required property"),
        (lambda d: d.__setitem__("schema_version", 2), r"\$\.schema_version"),
        (lambda d: d["records"][1]["findings"][0].__setitem__("title", 5),
         r"\$\.records\[1\]\.findings\[0\]\.title"),
    ],
)
def test_schema_violation_names_json_path(tmp_path: Path, mutate: object, where: str) -> None:
    path = _bad_file(tmp_path, mutate)
    with pytest.raises(InputError, match=where) as info:
        load_results(path)
    assert str(info.value).startswith(str(path))
    assert "\n" not in str(info.value)


def test_first_violation_in_document_order(tmp_path: Path) -> None:
    def mutate(doc: dict) -> None:  # type: ignore[type-arg]
        doc["records"][1]["duration"] = -1
        doc["records"][0]["duration"] = "slow"

    with pytest.raises(InputError, match=r"\$\.records\[0\]\.duration"):
        load_results(_bad_file(tmp_path, mutate))


def test_write_rejects_bad_records(tmp_path: Path) -> None:
    bad = TestRecord(nodeid="", outcome=Outcome.PASSED, suite="a", duration=1.0)
    with pytest.raises(InputError, match=r"\$\.records\[0\]\.nodeid"):
        write_results(tmp_path / "r.json", run_info(), [bad])
    assert not (tmp_path / "r.json").exists()


def test_write_rejects_non_json_and_nan(tmp_path: Path) -> None:
    weird = TestRecord(nodeid="t", outcome=Outcome.FAILED, suite="a", duration=1.0,
                       findings=[Finding("x", data={"s": {1, 2}})])
    with pytest.raises(InputError, match="not plain JSON"):
        write_results(tmp_path / "r.json", run_info(), [weird])
    nan = TestRecord(nodeid="t", outcome=Outcome.PASSED, suite="a", duration=1.0,
                     measurements={"m": Measurement(float("nan"), "s")})
    with pytest.raises(InputError):
        write_results(tmp_path / "r.json", run_info(), [nan])


def test_outcome_accepts_plain_strings(tmp_path: Path) -> None:
    rec = TestRecord(nodeid="t", outcome="skipped", suite="a", duration=0.0)  # type: ignore[arg-type]
    write_results(tmp_path / "r.json", run_info(), [rec])
    assert load_results(tmp_path / "r.json").records[0].outcome is Outcome.SKIPPED


def test_relative_artifact_path(tmp_path: Path) -> None:
    inside = tmp_path / "artifacts" / "console.log"
    assert relative_artifact_path(inside, tmp_path) == "artifacts/console.log"
    assert relative_artifact_path(Path("/elsewhere/x.log"), tmp_path) == "/elsewhere/x.log"
