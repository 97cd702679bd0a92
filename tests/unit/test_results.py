"""results.json: round trip, schema validation, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from synth import run_info

from distrogate.differential import (
    Delta,
    DeltaStatus,
    ElementSet,
    Exit,
    Order,
    Output,
    Sample,
    Value,
)
from distrogate.errors import InputError
from distrogate.results import (
    Artifact,
    Finding,
    Measurement,
    Outcome,
    TestRecord,
    journal_records,
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
                   artifacts=[Artifact("diff", "artifacts/order.diff", "diff")],
                   deltas=[Delta("th_TH.UTF-8", DeltaStatus.REGRESSION, "th_TH.UTF-8: moved",
                                 "ordering", "the order differs", Order.of("abc"),
                                 Order.of("acb")),
                           Delta("locales", DeltaStatus.REGRESSION, "", "set", "lacks x",
                                 ElementSet.of(["x", "y"]), ElementSet.of(["y"])),
                           Delta("out", DeltaStatus.UNCHANGED, "", "exact", "",
                                 Output.of("a" * 5000), Output.of("a" * 5000)),
                           Delta("t", DeltaStatus.WITHIN_NOISE, "", "numeric", "",
                                 Sample.of([1.0, 2.0], "s"), Sample.of([1.5], "s")),
                           Delta("rc", DeltaStatus.FIXED, "", "exact", "", Exit.of(1, "no"),
                                 Exit.of(0, "")),
                           Delta("v", DeltaStatus.UNCHANGED, "", "exact", "",
                                 Value({"k": [1]}), None)]),
    ]


def test_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "results.json"
    write_results(path, run_info(), _records())
    loaded = load_results(path)
    assert loaded.run == run_info()
    assert loaded.records == _records()
    assert loaded.schema_version == 2 and loaded.migrated_from is None
    assert json.loads(path.read_text())["schema_version"] == 2


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
        (lambda d: d.__setitem__("schema_version", "2"), r"\$\.schema_version"),
        (lambda d: d["records"][1]["deltas"][0].__setitem__("status", "worse"),
         r"\$\.records\[1\]\.deltas\[0\]\.status"),
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


def _v1_file(tmp_path: Path, version: int = 1) -> Path:
    doc = {"schema_version": version, "run": json.loads(json.dumps(run_info().__dict__)),
           "records": [
               {"nodeid": "suites/test_collation.py::test_locale_order[blocking]",
                "outcome": "failed", "suite": "collation", "duration": 3.0, "delta": "",
                "items": [{"id": "th_TH.UTF-8", "status": "regression",
                           "title": "th_TH.UTF-8: 12 strings moved. Action: REINDEX"},
                          {"id": "strcoll:th_TH.UTF-8", "status": "also-fails-on-baseline"}]},
               {"nodeid": "suites/test_smoke.py::test_image_facts", "outcome": "passed",
                "suite": "smoke", "duration": 1.0, "delta": "unchanged", "items": []},
               {"nodeid": "suites/test_smoke.py::test_x[candidate]", "outcome": "passed",
                "suite": "smoke", "duration": 1.0, "delta": "", "items": [],
                "role": "candidate", "pair": "suites/test_smoke.py::test_x[*]"}]}
    path = tmp_path / "results.json"
    path.write_text(json.dumps(doc))
    return path


def test_a_v1_file_is_migrated_items_and_delta_become_deltas(tmp_path: Path) -> None:
    loaded = load_results(_v1_file(tmp_path))
    assert loaded.schema_version == 2 and loaded.migrated_from == 1
    collation, facts, pair = loaded.records
    assert [(d.id, d.status, d.rule) for d in collation.deltas] == [
        ("th_TH.UTF-8", DeltaStatus.REGRESSION, "v1"),
        ("strcoll:th_TH.UTF-8", DeltaStatus.ALSO_FAILS_ON_BASELINE, "v1")]
    assert "REINDEX" in collation.deltas[0].title
    assert collation.deltas[0].baseline is None and collation.deltas[0].candidate is None
    assert [(d.id, d.status) for d in facts.deltas] == [("test_image_facts",
                                                        DeltaStatus.UNCHANGED)]
    assert pair.deltas == [] and pair.role == "candidate"
    again = tmp_path / "again.json"  # a migrated run writes back as a valid v2 file
    write_results(again, loaded.run, loaded.records)
    assert load_results(again).records == loaded.records


def test_a_bad_v1_file_and_an_unknown_version_are_one_line_errors(tmp_path: Path) -> None:
    path = _v1_file(tmp_path)
    doc = json.loads(path.read_text())
    doc["records"][0]["items"][0]["status"] = "worse"
    path.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=r"records\[0\]\.items\[0\]\.status"):
        load_results(path)
    with pytest.raises(InputError, match="results schema version 3 is not supported") as info:
        load_results(_v1_file(tmp_path, version=3))
    assert str(info.value).startswith(str(tmp_path / "results.json"))
    assert "\n" not in str(info.value)


def test_an_old_journal_with_v1_records_replays(tmp_path: Path) -> None:
    journal = tmp_path / "journal.jsonl"
    old = {"nodeid": "s/t.py::t", "outcome": "failed", "suite": "s", "duration": 1.0,
           "delta": "also-fails-on-baseline", "items": []}
    journal.write_text(json.dumps({"event": "record", "doc": old}) + "\n")
    [rec] = journal_records(journal)
    assert [(d.id, d.status) for d in rec.deltas] == [("t", DeltaStatus.ALSO_FAILS_ON_BASELINE)]
