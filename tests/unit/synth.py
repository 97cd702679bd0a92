"""Synthetic results for the data-side tests (no VMs)."""

from __future__ import annotations

from distrogate.results import Outcome, Results, RunInfo, TestRecord

CANDIDATE = {"name": "trixie", "digest": "sha256:" + "c" * 64, "release": "trixie",
             "glibc": "2.41", "kernel": "6.12.0", "boot": "direct"}
BASELINE = {"name": "bookworm", "digest": "sha256:" + "b" * 64, "release": "bookworm",
            "glibc": "2.36", "kernel": "6.1.0", "boot": "direct"}


def run_info(run_id: str = "run-1", started: str = "2025-06-01T10:00:00+00:00") -> RunInfo:
    """A plausible RunInfo."""
    return RunInfo(run_id=run_id, started=started, finished="2025-06-01T10:09:00+00:00",
                   candidate=dict(CANDIDATE), baseline=dict(BASELINE),
                   suites=["collation", "pg"], argv=["distrogate", "gate"],
                   lab={"accel": "tcg"}, host={"hostname": "ci-1", "cpus": 2})


def record(nodeid: str, outcome: Outcome | str = Outcome.PASSED, suite: str = "core",
           **kwargs: object) -> TestRecord:
    """A record with a given outcome."""
    return TestRecord(nodeid=nodeid, outcome=Outcome(outcome), suite=suite,
                      duration=float(kwargs.pop("duration", 1.0)),  # type: ignore[arg-type]
                      **kwargs)  # type: ignore[arg-type]


def results(*records: TestRecord, run_id: str = "run-1") -> Results:
    """Results of a run with these records."""
    return Results(run=run_info(run_id), records=list(records))
