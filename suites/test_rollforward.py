"""Roll-forward: replace a replicated PostgreSQL cluster's nodes with the candidate, lose nothing.

Every node of a cluster is replaced by one booted from the new image: the new node restores
from the backup (pgBackRest) and catches up by streaming replication, there is a controlled
switchover, the old node leaves. Each scenario in ``scenarios/`` runs twice on the same lab:
a *control* (the baseline rolled onto the baseline) and the *real* run (the baseline rolled
onto the candidate), under a client load that records every write as acknowledged, failed or
indeterminate (:mod:`distrogate.scenario.writer`). The control plays the baseline's side of
every comparison, so that a step that fails in both is not a regression.

Per scenario: ``test_steps`` (each step ran), ``test_no_lost_writes`` (the history against
the final primary and a point-in-time restore), ``test_replicas_converge``,
``test_amcheck_clean``, ``test_collation_versions`` (old against new nodes; the action is
REINDEX) and ``test_step_times`` (steps and unavailability windows far longer than the
control's). Settings: the policy's ``suites: {rollforward: {...}}``
(:mod:`distrogate.scenario.settings`).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from distrogate.differential import DeltaStatus, Exact, Value
from distrogate.errors import InputError, LabError
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.run import LabRun
from distrogate.nspawn.tree import ContainerArtifact, build_container
from distrogate.scenario.images import check_images
from distrogate.scenario.judge import FarLonger
from distrogate.scenario.model import ServiceSource, as_control
from distrogate.scenario.pgnode import container_spec
from distrogate.scenario.runner import ScenarioRun, StepResult, run_scenario
from distrogate.scenario.settings import RollforwardSettings
from fixtures.recording import Recorder
from fixtures.session import record_input_error
from fixtures.suites import parametrize_selected, suite_settings

# roll-forward VM runs take 5-30 min here: make nightly, not make test
pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.nightly]
log = logging.getLogger(__name__)

RUNS = {"baseline": "control", "candidate": "real"}  # the comparison's side → the run


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One test of each kind per scenario the policy selects (``suites.rollforward.
    scenarios``; every file in ``scenarios/`` by default)."""
    if "scenario" in metafunc.fixturenames:
        settings = suite_settings(metafunc.config, "rollforward")
        assert isinstance(settings, RollforwardSettings)
        parametrize_selected(metafunc, "scenario", tuple(s.name for s in settings.scenarios))


class Runs:
    """Each scenario's control and real runs, run on first use and kept for the module."""

    def __init__(self, lab_run: LabRun, images: dict[str, ImageArtifact],
                 settings: RollforwardSettings, workdir: Path) -> None:
        self.lab_run = lab_run
        self.images = images
        self.settings = settings
        self.workdir = workdir
        self.done: dict[str, dict[str, ScenarioRun]] = {}
        self._tree: ContainerArtifact | None = None

    def tree(self) -> ContainerArtifact:
        """The container tree PostgreSQL runs from (container mode), built once."""
        if self._tree is None:
            self._tree = build_container(container_spec())
        return self._tree

    def get(self, name: str) -> dict[str, ScenarioRun]:
        """``{"baseline": control run, "candidate": real run}`` of scenario ``name``."""
        if name not in self.done:
            scenario = self.settings.scenario(name)
            container = scenario.service.source is ServiceSource.CONTAINER
            tree = self.tree() if container else None
            found = {}
            for side, label in RUNS.items():
                plan = as_control(scenario) if label == "control" else scenario
                found[side] = run_scenario(
                    self.lab_run, plan, self.images, run=label, tree=tree,
                    workdir=self.workdir / name / label)
                if found[side].lab_error:
                    break  # nothing to compare the real run with: it is not run
            self.done[name] = found
        return self.done[name]


@pytest.fixture(scope="module")
def runs(lab_run: LabRun, candidate_image: ImageArtifact, baseline_image: ImageArtifact,
         suite_config: RollforwardSettings, run_dir: Path) -> Runs:
    """The scenarios' runs (see :class:`Runs`). An image-mode scenario on an image without
    PostgreSQL ends the run as an input error (exit 3) before anything boots."""
    images = {"baseline": baseline_image, "candidate": candidate_image}
    try:
        check_images(suite_config.scenarios, images)
    except InputError as exc:
        record_input_error(run_dir, str(exc))
        pytest.exit(f"input error: {exc}", returncode=3)
    return Runs(lab_run, images, suite_config, run_dir / "rollforward")


def _runs(runs: Runs, scenario: str, record: Recorder) -> dict[str, ScenarioRun]:
    found = runs.get(scenario)
    for side, run in found.items():
        path = Path(run.workdir) / "run.json"
        record.artifact(f"{scenario}: {RUNS[side]} run (JSON)", path, "json")
        history = Path(run.workdir) / "load" / "history.jsonl"
        if history.exists():
            record.artifact(f"{scenario}: {RUNS[side]} write history", history, "json")
    for side, run in found.items():
        # a run the lab broke is no evidence either way: the test errors (inconclusive)
        if run.lab_error:
            raise LabError(f"{scenario}: the {RUNS[side]} run cannot be judged: "
                           f"{run.lab_error}")
    return found


def _logs(run: ScenarioRun) -> Path:
    path = Path(run.workdir) / "logs.json"
    path.write_text(json.dumps(run.logs, indent=1) + "\n")
    return path


def _judge_checks(record: Recorder, scenario: str, found: dict[str, ScenarioRun], check: str,
                  title: str, describe: Any) -> None:
    for side, run in found.items():
        result = run.checks.get(check)
        record.observe(check, side, Value(bool(result and result.get("ok"))))
    delta = record.compare(check, Exact(expected=Value(True), wanted=title),
                           title=f"{scenario}: {title}")
    if delta.status is DeltaStatus.REGRESSION:
        real = found["candidate"]
        record.finding(f"{scenario}: {title}: not on the candidate", describe(real.checks
                       .get(check, {"error": "the check did not run"})),
                       {"scenario": scenario, "check": check,
                        "control": found["baseline"].checks.get(check),
                        "real": real.checks.get(check)}, artifact=_logs(real))
    assert delta.status is not DeltaStatus.REGRESSION, delta.detail


def _key(step: StepResult) -> str:
    """``3:add n4``: a step's index and what it does, the same on both runs (its text names
    the image, which is the baseline in the control and the candidate in the real run)."""
    return f"{step.index}:{step.text.split(' (')[0]}"


def test_steps(scenario: str, runs: Runs, record: Recorder) -> None:
    """Every step ran on the real run as on the control (a step failing in both is not a
    regression); the writers' counts and the step times are measured. A run whose set-up
    (on the baseline) or a step failed because of the lab is not judged: the test errors."""
    found = _runs(runs, scenario, record)
    regressions = []
    for side, run in found.items():
        for step in run.steps:
            record.observe(f"step{_key(step)}", side, Value(step.ok))
        for name, count in run.writes.items():
            record.measure(f"{RUNS[side]}_writes_{name}", count, "writes")
        record.measure(f"{RUNS[side]}_wall_time", run.wall_seconds, "s")
    control = {s.index: s for s in found["baseline"].steps}
    for step in found["candidate"].steps:
        check_id = f"step{_key(step)}"
        if step.index not in control:
            record.observe(check_id, "baseline", Value(None))
        delta = record.compare(check_id, Exact(expected=Value(True), wanted="the step ran"),
                               title=f"{scenario}: step {step.index} ({step.text})")
        if delta.status is DeltaStatus.REGRESSION:
            regressions.append(f"step {step.index} ({step.text}): {step.error}")
            record.finding(f"{scenario}: step {step.index} ({step.text}) failed on the "
                           "candidate", step.error, {"scenario": scenario, "step": step.text},
                           artifact=_logs(found["candidate"]))
    assert not regressions, "; ".join(regressions)


def test_no_lost_writes(scenario: str, runs: Runs, record: Recorder) -> None:
    """No acknowledged write is lost, none duplicated, none out of nowhere: on the final
    primary and on a fresh point-in-time restore of the backup."""
    found = _runs(runs, scenario, record)

    def describe(result: dict[str, Any]) -> str:
        lines = [line for source in ("primary", "restored")
                 for line in result.get(source, {}).get("findings", [])]
        return "; ".join(lines) or str(result.get("error", "the check failed"))

    for side, run in found.items():
        primary = run.checks.get("no_lost_writes", {}).get("primary", {})
        if primary:
            log.info("%s (%s): %s", scenario, RUNS[side], primary.get("summary"))
            record.measure(f"{RUNS[side]}_lost", primary.get("lost_count", 0), "writes",
                           note=primary.get("summary", ""))
    _judge_checks(record, scenario, found, "no_lost_writes", "no acknowledged write lost",
                  describe)


def test_replicas_converge(scenario: str, runs: Runs, record: Recorder) -> None:
    """Every remaining node holds the same table checksums as the final primary."""
    _judge_checks(record, scenario, _runs(runs, scenario, record), "converge",
                  "every node converges to the same checksums",
                  lambda r: json.dumps(r.get("checksums", r.get("error")))[:2000])


def test_amcheck_clean(scenario: str, runs: Runs, record: Recorder) -> None:
    """``pg_amcheck --all --heapallindexed`` is clean on every node."""
    _judge_checks(record, scenario, _runs(runs, scenario, record), "amcheck",
                  "pg_amcheck --heapallindexed clean on every node",
                  lambda r: "; ".join(f"{n}: {v['output'][:1500]}"
                                      for n, v in r.get("nodes", {}).items()
                                      if not v.get("clean")) or str(r.get("error")))


def test_collation_versions(scenario: str, runs: Runs, record: Recorder) -> None:
    """The old and the new nodes' C libraries report the same collation versions (a
    mismatch: REINDEX, or logical replication instead of physical)."""
    _judge_checks(record, scenario, _runs(runs, scenario, record), "collation_versions",
                  "the same collation versions on old and new nodes",
                  lambda r: "; ".join(r.get("mismatches", [])) + (
                      f"; action: {r['action']}" if r.get("action") else ""))


def test_step_times(scenario: str, runs: Runs, suite_config: RollforwardSettings,
                    record: Recorder) -> None:
    """No step, and no unavailability window (switchover, fault), takes far longer on the
    real run than in the control (see :class:`~distrogate.scenario.judge.FarLonger`)."""
    found = _runs(runs, scenario, record)
    rule = FarLonger(suite_config.slowdown, suite_config.slack_seconds)
    regressions = []
    for side, run in found.items():
        for step in run.steps:
            record.observe(f"time:{_key(step)}", side, Value(step.seconds))
            if "window_seconds" in step.detail:
                record.observe(f"window:{_key(step)}", side,
                               Value(step.detail["window_seconds"]))
                record.measure(f"{RUNS[side]}_window_{step.index}",
                               step.detail["window_seconds"], "s", note=step.text)
            if "lag_bytes_before" in step.detail:
                record.measure(f"{RUNS[side]}_lag_before_{step.index}",
                               step.detail["lag_bytes_before"], "bytes", note=step.text)
    for check_id in sorted({k for run in found.values() for k in
                            [f"time:{_key(s)}" for s in run.steps]
                            + [f"window:{_key(s)}" for s in run.steps
                               if "window_seconds" in s.detail]}):
        delta = record.compare(check_id, rule, title=f"{scenario}: {check_id}")
        if delta.status is DeltaStatus.REGRESSION:
            regressions.append(f"{check_id}: {delta.detail}")
    assert not regressions, "; ".join(regressions)
