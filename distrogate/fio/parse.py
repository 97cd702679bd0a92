"""Reading fio's JSON output (``--output-format=json``): per job, the suite's metrics.

* ``iops``, ``bw`` (KiB/s): of the job's direction; a mixed job (``randrw``) sums reads and
  writes;
* ``clat_p50``, ``clat_p99``, ``clat_p99_9`` (µs, from ``clat_ns.percentile``, which the job
  file's ``percentile_list=50:99:99.9`` asks for): of the job's direction; a mixed job's are
  its reads' (what a database waits for).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from distrogate.fio.jobs import JOBS, PERCENTILES


class FioOutputError(ValueError):
    """fio's output is not what the suite expects (not JSON, a job missing or in error)."""


@dataclass(frozen=True)
class FioResult:
    """One fio invocation: its version and, per job, each metric's value."""

    version: str
    engine: str
    jobs: dict[str, dict[str, float]]


def _direction(job_doc: dict[str, Any], side: str, name: str) -> dict[str, Any]:
    part = job_doc.get(side)
    if not isinstance(part, dict):
        raise FioOutputError(f"job {name}: no {side!r} section in fio's output")
    return part


def _percentiles(part: dict[str, Any], name: str) -> dict[str, float]:
    found = part.get("clat_ns", {}).get("percentile")
    if not isinstance(found, dict):
        raise FioOutputError(f"job {name}: no completion-latency percentiles (clat_ns) in "
                             "fio's output")
    out = {}
    for metric, key in PERCENTILES.items():
        if key not in found:
            raise FioOutputError(f"job {name}: percentile {key} missing (the job file asks "
                                 "for percentile_list=50:99:99.9)")
        out[metric] = float(found[key]) / 1000.0  # ns -> µs
    return out


def job_metrics(job_doc: dict[str, Any]) -> dict[str, float]:
    """The metrics of one entry of fio's ``jobs`` list (see the module)."""
    name = str(job_doc.get("jobname", "?"))
    if job_doc.get("error"):
        raise FioOutputError(f"job {name}: fio reports error {job_doc['error']}")
    spec = JOBS.get(name)
    reads = spec.reads if spec is not None else True
    writes = spec.writes if spec is not None else False
    sides = [s for s, on in (("read", reads), ("write", writes)) if on]
    parts = {s: _direction(job_doc, s, name) for s in sides}
    metrics = {"iops": sum(float(p.get("iops", 0.0)) for p in parts.values()),
               "bw": sum(float(p.get("bw", 0.0)) for p in parts.values())}
    metrics.update(_percentiles(parts[sides[0]], name))
    return metrics


def parse_output(text: str, expected: tuple[str, ...] = ()) -> FioResult:
    """fio's JSON output (text before the first ``{``, such as warnings, is skipped); raises
    :class:`FioOutputError` when it is not JSON, a job of ``expected`` is missing, or a job
    reports an error."""
    start = text.find("{")
    if start < 0:
        raise FioOutputError(f"fio's output has no JSON: {text[-300:]!r}")
    try:
        doc = json.loads(text[start:])
    except json.JSONDecodeError as exc:
        raise FioOutputError(f"fio's output is not valid JSON ({exc}): "
                             f"{text[start:start + 200]!r}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("jobs"), list):
        raise FioOutputError("fio's output has no 'jobs' list")
    jobs = {str(j.get("jobname")): job_metrics(j) for j in doc["jobs"] if isinstance(j, dict)}
    missing = [name for name in expected if name not in jobs]
    if missing:
        raise FioOutputError(f"fio's output lacks job(s) {', '.join(missing)}")
    engine = str(doc.get("global options", {}).get("ioengine", ""))
    return FioResult(str(doc.get("fio version", "")), engine, jobs)
