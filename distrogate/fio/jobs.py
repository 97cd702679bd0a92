"""The fio suite's jobs and metrics: what the shipped job file (``jobs.fio``) measures.

Each job is one section of ``jobs.fio`` (``direct=1``, time-based, with a ramp, ``stonewall``ed);
each metric is read from fio's JSON output (:mod:`distrogate.fio.parse`) and judged in its
direction (throughput: higher is better; completion latency: lower is better).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from distrogate.differential import Direction

JOB_FILE = Path(__file__).resolve().parent / "jobs.fio"


@dataclass(frozen=True)
class Job:
    """One section of the job file."""

    name: str
    title: str
    reads: bool
    writes: bool


@dataclass(frozen=True)
class Metric:
    """One number fio reports per job."""

    name: str
    title: str
    unit: str
    direction: Direction


JOBS: dict[str, Job] = {j.name: j for j in (
    Job("randread-4k-qd32", "4k random read, queue depth 32", True, False),
    Job("randread-4k-qd1", "4k random read, queue depth 1 (latency)", True, False),
    Job("randwrite-4k-qd32", "4k random write, queue depth 32", False, True),
    Job("seqread-128k", "128k sequential read", True, False),
    Job("seqwrite-128k", "128k sequential write", False, True),
    Job("randrw-70-30-4k", "70/30 random read/write, 4k", True, True),
)}

METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("iops", "IOPS", "IO/s", Direction.HIGHER_IS_BETTER),
    Metric("bw", "bandwidth", "KiB/s", Direction.HIGHER_IS_BETTER),
    Metric("clat_p50", "completion latency p50", "µs", Direction.LOWER_IS_BETTER),
    Metric("clat_p99", "completion latency p99", "µs", Direction.LOWER_IS_BETTER),
    Metric("clat_p99_9", "completion latency p99.9", "µs", Direction.LOWER_IS_BETTER),
)}

#: fio's percentile keys (``percentile_list=50:99:99.9`` in the job file) per metric
PERCENTILES = {"clat_p50": "50.000000", "clat_p99": "99.000000", "clat_p99_9": "99.900000"}


def check_id(job: str, metric: str) -> str:
    """The id of one job's metric, an item a waiver can name: ``seqread-128k:bw``."""
    return f"{job}:{metric}"


def job_file_sections() -> list[str]:
    """The section names in the shipped job file (``global`` left out)."""
    names = []
    for line in JOB_FILE.read_text().splitlines():
        line = line.strip()
        if line.startswith("[") and line.endswith("]") and line != "[global]":
            names.append(line[1:-1])
    return names
