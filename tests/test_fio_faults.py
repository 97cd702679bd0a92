"""The fio suite through the gate: a planted block-layer fault is rejected naming the jobs and
metrics it slows with their ratios and intervals, a clean derived image is promoted, and a bad
suite setting is exit 3 before anything boots."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli

FAULTS = Path(__file__).resolve().parent / "images"


#: The jobs the gate tests run (the quick profile otherwise): the two the planted fault slows and
#: two it must leave alone, to keep `make test` short (the suite itself runs every job there).
JOBS = ("randread-4k-qd32", "randread-4k-qd1", "seqread-128k", "seqwrite-128k")


def _gate(cli: Cli, tmp_path: Path, candidate: str, *extra: str,
          baseline: str = "promoted") -> tuple[Any, dict[str, Any]]:
    reports = tmp_path / "reports"
    policy = tmp_path / "policy.yaml"
    # the packaged policy's fio rule (regressions block, noise advises), the jobs above
    policy.write_text("rules:\n  - {pattern: fio, mode: blocking, noise: advisory}\n"
                      f"suites:\n  fio: {{jobs: [{', '.join(JOBS)}]}}\n")
    result = cli("gate", "--candidate", candidate, "--baseline", baseline, "--suite", "fio",
                 "--policy", str(policy), "--reports-dir", str(reports), *extra, timeout=2400)
    run_dir = (reports / "latest").resolve()
    verdict = json.loads((run_dir / "verdict.json").read_text())
    return result, verdict


def _deltas(tmp_path: Path) -> dict[str, dict[str, Any]]:
    results = json.loads(((tmp_path / "reports" / "latest").resolve() / "results.json")
                         .read_text())
    return {d["id"]: d for r in results["records"] for d in r.get("deltas", [])}


@pytest.mark.parametrize(("setting", "problem"), [
    ("jobs: [randread-4k-qd64]", "suites.fio.jobs: unknown job 'randread-4k-qd64'"),
    ("metrics: [iops, clat_p95]", "suites.fio.metrics: unknown metric 'clat_p95'"),
    ("threshold: 1.5", "suites.fio.threshold: expected a fraction strictly between 0 and 1"),
    ("threshold: 0", "suites.fio.threshold: expected a fraction strictly between 0 and 1"),
])
def test_a_bad_setting_is_exit_3_before_any_boot(cli: Cli, tmp_path: Path, setting: str,
                                                 problem: str) -> None:
    policy = tmp_path / "policy.yaml"
    policy.write_text(f"suites:\n  fio: {{{setting}}}\n")
    result = cli("gate", "--suite", "fio", "--policy", str(policy), "--reports-dir",
                 str(tmp_path / "reports"), timeout=120)
    assert result.returncode == 3, result.stderr[-2000:]
    assert problem in result.stderr
    assert len([line for line in result.stderr.splitlines() if problem in line]) == 1
    labs = cli.home / "labs"
    assert not labs.exists() or not any(labs.iterdir()), "a lab was started"


@pytest.mark.vm
@pytest.mark.slow
def test_a_capped_request_size_is_rejected_naming_the_sequential_jobs(cli: Cli,
                                                                      tmp_path: Path) -> None:
    """max_sectors_kb=4 on every virtio disk: 128k sequential I/O is split into 4k requests.
    The verdict rejects, naming the sequential jobs' metrics with ratios and intervals,
    confirmed by a repeat of those jobs; the 4k QD1 latency job is not named; the report
    embeds the plots. (Under the packaged policy's fio rule: regressions block.)"""
    result, verdict = _gate(cli, tmp_path, str(FAULTS / "fio-max-sectors.yaml"))
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "reject"
    deltas = _deltas(tmp_path)
    regressed = {i for i, d in deltas.items() if d["status"] == "regression"}
    for job in ("seqread-128k", "seqwrite-128k"):
        # which of a slowed job's metrics clears the corrected significance level depends on
        # the other make test worker's load (bw at p=0.015 against alpha 0.01 once, while
        # clat_p50 cleared it): the job must be named by at least one of its throughput or
        # median-latency metrics, each with its ratio and interval
        named = sorted(i for i in regressed if i.split(":")[0] == job)
        assert set(named) & {f"{job}:{m}" for m in ("bw", "iops", "clat_p50")}, sorted(regressed)
        assert any(f"test_job[{job}]" in reason for reason in verdict["reasons"]), verdict
        for item in named:
            detail = deltas[item]["detail"]
            assert "median ratio" in detail and "CI" in detail, detail
            assert "confirmed by the repeat" in detail, detail  # six fresh runs a side agree
    assert not any(i.startswith("randread-4k-qd1:") for i in regressed), sorted(regressed)
    run_dir = (tmp_path / "reports" / "latest").resolve()
    summary = (run_dir / "summary.html").read_text()
    assert summary.count('<img src="data:image/svg+xml;base64,') == len(JOBS)
    assert len(list((run_dir / "fio").glob("*-run*.json"))) == 12  # 6 runs per image
    assert len(list((run_dir / "fio").glob("*-confirm*.json"))) == 12  # and 6 to confirm


@pytest.mark.vm
@pytest.mark.slow
@pytest.mark.nightly  # make test's time budget, and its fio load slowed the IPsec tests' guests
@pytest.mark.parametrize("candidate", [
    pytest.param(str(FAULTS / "fio-clean.yaml"), id="clean-derived"),
    pytest.param("promoted", id="a-a"),
])
def test_a_clean_derived_image_and_the_promoted_image_itself_are_promoted(
        cli: Cli, tmp_path: Path, candidate: str) -> None:
    """The clean control (a udev rule that sets what the kernel sets) and an A/A run (the
    promoted image against itself) promote: no regression, and the comparisons too noisy to
    decide under TCG (runs of one image differ by 16-21 % here) only advise."""
    result, verdict = _gate(cli, tmp_path, candidate)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert verdict["decision"] == "promote", verdict["reasons"]
    regressed = [i for i, d in _deltas(tmp_path).items() if d["status"] == "regression"]
    assert not regressed, regressed
