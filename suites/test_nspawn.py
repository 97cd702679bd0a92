"""machinectl / systemd-nspawn: customer services run in locked-down nspawn containers.

A PostgreSQL container tree (built on the host, cached) is installed under /var/lib/machines on
the candidate and on the baseline (read-only root, writable config and data volumes, private
network), and each check runs on both (see ``distrogate.nspawn.checks``): its result on each
image is an observation, and the check's rule turns the two into a delta
(``distrogate.nspawn.compare``). A check the candidate fails is a finding naming the operation,
what was expected and what came back, with the journal lines of the host and the container, and
what the baseline did. Host-side checks (``host_journal``, ``host_metrics``) observe what the
fleet's host agents rely on: the container's journal in the host's own journal files, its
control group on the host. A check the baseline fails too
is not a regression (the verdict lists it apart, unless the policy makes the suite absolute);
a time bound the candidate ran out of is judged against the baseline's time on the same lab,
after both images ran again back to back (``distrogate.nspawn.suite``).

Settings: the policy's ``suites: {nspawn: {...}}`` (or ``machinectl``; see
``distrogate.nspawn.suite.CONFIG_KEYS``), as the ``suite_config`` fixture (a ``SuiteConfig``).
"""

from __future__ import annotations

import json

import pytest

from distrogate.differential import DeltaStatus
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.run import LabRun
from distrogate.nspawn.checks import CHECK_NAMES, OPERATIONS
from distrogate.nspawn.compare import observations
from distrogate.nspawn.suite import SuiteConfig, SuiteRun, bound_of, run_suite
from fixtures.recording import Recorder

pytestmark = [pytest.mark.vm, pytest.mark.slow]


@pytest.fixture(scope="module")
def nspawn_run(lab_run: LabRun, candidate_image: ImageArtifact, baseline_image: ImageArtifact,
               suite_config: SuiteConfig) -> SuiteRun:
    """Every check on both images (one VM at a time), compared."""
    return run_suite(lab_run, candidate_image, baseline_image, suite_config)


def test_every_check_ran_on_both_images(nspawn_run: SuiteRun, suite_config: SuiteConfig,
                                        record: Recorder) -> None:
    """Every selected check has exactly one result on each image (run, or not attempted with
    the reason); records the suite's wall time and the parts' times."""
    record.measure("nspawn_suite_wall_time", nspawn_run.wall_seconds, "s",
                   note="tree from cache, both images booted cold with the tree disk")
    for run in (nspawn_run.candidate, nspawn_run.baseline):
        record.measure(f"{run.role}_boot_time", run.boot_seconds, "s")
        record.measure(f"{run.role}_install_time", run.install_seconds, "s",
                       note="copy the tree to /var/lib/machines, seed the volumes")
        path = record.run_dir / f"nspawn-{run.role}.json"
        path.write_text(json.dumps(run.to_dict(), indent=2) + "\n")
        record.artifact(f"nspawn checks on the {run.role}", path, "json")
    for run in nspawn_run.first_try or ():  # a timeout-only regression, run again since
        path = record.run_dir / f"nspawn-{run.role}-first-try.json"
        path.write_text(json.dumps(run.to_dict(), indent=2) + "\n")
        record.artifact(f"nspawn checks on the {run.role}, first try (judged: the second)",
                        path, "json")
    selected = suite_config.checks or CHECK_NAMES
    for run in (nspawn_run.candidate, nspawn_run.baseline):
        names = [r.check for r in run.results]
        assert sorted(names) == sorted(selected), (
            f"{run.role}: checks with results {sorted(names)}, selected {sorted(selected)}")


@pytest.mark.parametrize("check", CHECK_NAMES)
def test_nspawn(check: str, nspawn_run: SuiteRun, record: Recorder) -> None:
    """One check on both images: the candidate must do what the baseline does. Each image's
    result is observed, and the check's rule (the expectation, or its time bound) compares
    them; an inconclusive delta (the lab too slow to judge a bound) is an error."""
    try:
        cand, base = nspawn_run.results(check)
    except KeyError:
        pytest.skip(f"check {check} not selected (suites.nspawn.checks)")
    if cand.ok:
        record.measure(f"candidate_{check}_time", cand.seconds, "s")
    if base is not None and base.ok:
        record.measure(f"baseline_{check}_time", base.seconds, "s")
    rule, base_seen, cand_seen = observations(cand, base, bound_of(check, nspawn_run.bounds))
    if base_seen is not None:
        record.observe(check, "baseline", base_seen)
    record.observe(check, "candidate", cand_seen)
    delta = record.compare(check, rule, title=cand.operation)
    said = f"{cand.operation}: {delta.detail}"
    if delta.status is DeltaStatus.FIXED:
        record.finding(f"{OPERATIONS[check]} ({check}): fixed on the candidate", said)
    if not cand.ok and delta.status is not DeltaStatus.INCONCLUSIVE:
        kind = {DeltaStatus.REGRESSION: "regression",
                DeltaStatus.ALSO_FAILS_ON_BASELINE: "fails on the promoted image too "
                                                    "(not a regression)"}[delta.status]
        record.finding(
            f"{OPERATIONS[check]} ({check}) broken on the candidate: {kind}", said,
            data={"check": check, "status": str(delta.status), "operation": cand.operation,
                  "expected": cand.expected, "exit_code": cand.got.exit_code,
                  "stdout": cand.got.stdout[-2000:], "stderr": cand.got.stderr[-2000:],
                  "detail": cand.detail, "host_journal": list(cand.host_journal),
                  "container_journal": list(cand.container_journal),
                  "baseline": base.summary() if base is not None else None})
    assert cand.ok or delta.status is DeltaStatus.INCONCLUSIVE, (
        f"{said} — candidate: {cand.summary()}; baseline: "
        f"{base.summary() if base is not None else 'did not run'}")
