"""Reading real fio 3.33 JSON output (taken on the host against a file, with the shipped job
file): every job's iops, bandwidth and completion-latency percentiles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distrogate.fio.jobs import JOBS, METRICS
from distrogate.fio.parse import FioOutputError, parse_output

DATA = Path(__file__).resolve().parent / "data" / "fio"
ALL = (DATA / "fio-3.33-all-jobs.json").read_text()
MIXED = (DATA / "fio-3.33-libaio-randrw.json").read_text()


def test_every_job_and_metric_of_a_real_run() -> None:
    result = parse_output(ALL, expected=tuple(JOBS))
    assert result.version == "fio-3.33"
    assert result.engine == "io_uring"
    assert sorted(result.jobs) == sorted(JOBS)
    for job, metrics in result.jobs.items():
        assert sorted(metrics) == sorted(METRICS), job
        assert metrics["iops"] > 0 and metrics["bw"] > 0, job
        assert metrics["clat_p50"] <= metrics["clat_p99"] <= metrics["clat_p99_9"], job


def test_values_follow_fio_s_fields() -> None:
    doc = json.loads(ALL)
    seq = next(j for j in doc["jobs"] if j["jobname"] == "seqwrite-128k")
    parsed = parse_output(ALL).jobs["seqwrite-128k"]
    assert parsed["iops"] == pytest.approx(seq["write"]["iops"])
    assert parsed["bw"] == seq["write"]["bw"]
    assert parsed["clat_p99"] == seq["write"]["clat_ns"]["percentile"]["99.000000"] / 1000


def test_a_mixed_job_sums_throughput_and_takes_the_reads_latency() -> None:
    doc = json.loads(MIXED)
    rw = next(j for j in doc["jobs"] if j["jobname"] == "randrw-70-30-4k")
    parsed = parse_output(MIXED, expected=("randrw-70-30-4k", "randread-4k-qd1"))
    assert parsed.engine == "libaio"
    got = parsed.jobs["randrw-70-30-4k"]
    assert got["iops"] == pytest.approx(rw["read"]["iops"] + rw["write"]["iops"])
    assert got["bw"] == rw["read"]["bw"] + rw["write"]["bw"]
    assert got["clat_p50"] == rw["read"]["clat_ns"]["percentile"]["50.000000"] / 1000


def test_warnings_before_the_json_are_skipped() -> None:
    assert parse_output("fio: some warning\n" + ALL).version == "fio-3.33"


@pytest.mark.parametrize(("text", "problem"), [
    ("fio: engine nosuchengine not loadable\n", "no JSON"),
    ("{not json", "not valid JSON"),
    ('{"fio version": "fio-3.33"}', "no 'jobs' list"),
])
def test_unreadable_output_is_an_error(text: str, problem: str) -> None:
    with pytest.raises(FioOutputError, match=problem):
        parse_output(text)


def test_a_missing_job_or_a_job_in_error_is_an_error() -> None:
    with pytest.raises(FioOutputError, match="lacks job"):
        parse_output(MIXED, expected=("seqread-128k",))
    doc = json.loads(ALL)
    doc["jobs"][0]["error"] = 5
    with pytest.raises(FioOutputError, match="error 5"):
        parse_output(json.dumps(doc))
    del doc["jobs"][1]["read"]["clat_ns"]["percentile"]["99.900000"]
    doc["jobs"][0]["error"] = 0
    with pytest.raises(FioOutputError, match=r"percentile 99\.900000 missing"):
        parse_output(json.dumps(doc))
