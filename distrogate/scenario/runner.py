"""Run one roll-forward scenario on the lab: the cluster, the client load, the steps, the checks.

:func:`run_scenario` starts the scenario's cluster on the baseline image
(:class:`~distrogate.scenario.cluster.Cluster`), loads the data, starts the client load
(:class:`~distrogate.scenario.writer.WriterProcess`, inside the lab's namespace), runs the
steps in order, each timed, and then the final checks (:mod:`.checks`). A step that fails
ends the steps (the later ones depend on it); the final checks still run on what is left, so
that the finding says what was lost or corrupted. Everything started is removed on return,
on an error and on an interrupt.

``progress`` receives one line per step (its time, and the writers' acknowledged, failed and
indeterminate counts): ``distrogate scenario run`` prints it, the suite logs it.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distrogate.errors import is_lab_fault
from distrogate.fsutil import atomic_write_text
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.run import LabRun
from distrogate.nspawn.tree import ContainerArtifact
from distrogate.scenario import sql
from distrogate.scenario.checks import final_checks, node_collations
from distrogate.scenario.cluster import APP_DATABASE, APP_USER, Cluster
from distrogate.scenario.history import unavailability
from distrogate.scenario.model import (
    AddStep,
    CatchUpStep,
    CheckStep,
    FaultKind,
    FaultStep,
    RemoveStep,
    Scenario,
    Step,
    SwitchoverStep,
)
from distrogate.scenario.pgnode import PG_PORT
from distrogate.scenario.writer import WriterProcess

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
LOAD_SETTLE_SECONDS = 3.0  # the load runs this long before the first step and after the last


@dataclass
class StepResult:
    """One step as it ran: its text, time, outcome and what it measured."""

    index: int
    kind: str
    text: str
    seconds: float = 0.0
    ok: bool = True
    error: str = ""
    lab_fault: bool = False
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class ScenarioRun:
    """What one run of a scenario observed (``run``: ``control`` or ``real``)."""

    scenario: str
    run: str
    images: dict[str, str]
    steps: list[StepResult] = field(default_factory=list)
    setup_seconds: float = 0.0
    wall_seconds: float = 0.0
    setup_error: str = ""
    writes: dict[str, int] = field(default_factory=dict)
    checks: dict[str, Any] = field(default_factory=dict)
    collations: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: dict[str, dict[str, str]] = field(default_factory=dict)
    workdir: str = ""

    @property
    def failed_step(self) -> StepResult | None:
        """The step that failed, if one did."""
        return next((s for s in self.steps if not s.ok), None)

    @property
    def lab_error(self) -> str:
        """Why this run says nothing about the image, or "": its set-up failed (the set-up
        boots only the baseline), or a step failed because the lab did (see
        :func:`~distrogate.errors.is_lab_fault`)."""
        if self.setup_error:
            return f"the cluster's set-up on the baseline failed: {self.setup_error}"
        step = self.failed_step
        if step is not None and step.lab_fault:
            return f"step {step.index} ({step.text}) failed on the lab: {step.error}"
        return ""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary (``run.json``)."""
        return asdict(self)


def _describe(step: Step) -> str:
    if isinstance(step, AddStep):
        return f"add {step.node} ({step.image})"
    if isinstance(step, CatchUpStep):
        return f"catch up {step.node} (lag <= {step.max_lag_bytes} B)"
    if isinstance(step, SwitchoverStep):
        return f"switchover to {step.to}"
    if isinstance(step, RemoveStep):
        return f"remove {step.node}"
    if isinstance(step, FaultStep):
        where = f" {step.node}" if step.node else ""
        return f"fault {step.fault}{where}"
    assert isinstance(step, CheckStep)
    return "check " + ", ".join(str(c) for c in step.what)


class _Steps:
    """The steps' dispatch: one method per step kind, on the cluster and the load."""

    def __init__(self, cluster: Cluster, writer: WriterProcess, run: ScenarioRun,
                 scenario: Scenario) -> None:
        self.cluster = cluster
        self.writer = writer
        self.run = run
        self.scenario = scenario

    def hosts(self) -> None:
        self.writer.set_hosts([address for address, _ in self.cluster.hosts()])

    def do(self, step: Step, result: StepResult) -> None:
        if isinstance(step, AddStep):
            node = self.cluster.add(step.node, str(step.image))
            self.run.collations[step.node] = node_collations(node, str(step.image))
            self.hosts()
        elif isinstance(step, CatchUpStep):
            result.detail["lag_bytes"] = self.cluster.catch_up(
                step.node, max_lag_bytes=step.max_lag_bytes, timeout=step.timeout)
        elif isinstance(step, SwitchoverStep):
            old = self.cluster.primary.name
            leaves = any(isinstance(s, RemoveStep) and s.node == old for s in self.scenario.steps)
            # an old primary the scenario removes later stays down (no rejoin to undo)
            switched = self.cluster.switchover(step.to, rejoin=not leaves)
            result.detail.update(old=switched.old, new=switched.new,
                                 lag_bytes_before=switched.lag_bytes_before,
                                 stop_seconds=switched.stop_seconds)
            self.hosts()
        elif isinstance(step, RemoveStep):
            self.cluster.remove(step.node)
            self.hosts()
        elif isinstance(step, FaultStep):
            self.fault(step, result)
        else:
            assert isinstance(step, CheckStep)
            found = final_checks(self.cluster, self.writer.history, step.what,
                                 pitr=False, collations=self.run.collations, live=True)
            result.detail["checks"] = found
            problems = [k for k, v in found.items() if not v.get("ok", True)]
            if problems:
                raise AssertionError(f"check failed mid-scenario: {', '.join(problems)}")

    def fault(self, step: FaultStep, result: StepResult) -> None:
        node = step.node or self.cluster.primary.name
        if step.fault is FaultKind.KILL_PRIMARY:
            result.detail["down_seconds"] = self.cluster.kill_primary(restart=True)
        elif step.fault is FaultKind.CRASH:
            self.cluster.crash(node)
        elif step.fault is FaultKind.REBOOT:
            self.cluster.reboot(node)
        elif step.fault is FaultKind.PARTITION:
            self.cluster.partition(node, step.seconds)
        else:
            self.cluster.link_loss(node, 30, step.seconds)


def _load_data(cluster: Cluster, scenario: Scenario) -> None:
    primary = cluster.primary
    for statement in sql.schema(scenario.data.text_index):
        primary.sql(statement, database=APP_DATABASE, timeout=300)
    primary.sql(sql.seed(scenario.data.rows), database=APP_DATABASE, timeout=600)
    primary.sql(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {APP_USER}",
                database=APP_DATABASE)


def run_scenario(lab_run: LabRun, scenario: Scenario, images: Mapping[str, ImageArtifact], *,
                 run: str, workdir: Path, tree: ContainerArtifact | None = None,
                 progress: Progress | None = None) -> ScenarioRun:
    """Run ``scenario`` (see the module) with ``images`` (``baseline``, ``candidate``: for a
    control run both the baseline). Writes ``run.json`` in ``workdir`` and returns the run;
    raises only for the lab (an infrastructure error) or an interrupt."""
    say = progress or log.info
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    result = ScenarioRun(scenario.name, run, {k: v.name for k, v in images.items()},
                         workdir=str(workdir))
    cluster = Cluster(lab_run, images, mode=str(scenario.service.source),  # type: ignore[arg-type]
                      tree=tree, locale=scenario.database.locale, workdir=workdir / "cluster",
                      ipsec=scenario.service.ipsec, volume_gib=scenario.cluster.volume_gib,
                      backup_every_s=scenario.cluster.backup_every_s)
    try:
        initial = {n: "baseline" for n in scenario.initial_nodes()}
        say(f"{scenario.name} ({run}): starting {len(initial)} nodes on the baseline")
        cluster.start(initial)
        _load_data(cluster, scenario)
        for name, node in cluster.nodes.items():
            result.collations[name] = node_collations(node, "baseline")
        result.setup_seconds = round(time.monotonic() - started, 1)
        say(f"{scenario.name} ({run}): cluster ready in {result.setup_seconds:.0f}s")
        dsn = (f"dbname={APP_DATABASE} user={APP_USER} password={cluster.app_password} "
               f"port={PG_PORT}")
        with WriterProcess(dsn, workdir / "load", writers=scenario.load.writers,
                           rate=scenario.load.rate,
                           hosts=[a for a, _ in cluster.hosts()],
                           argv_wrap=lab_run.lab.host_argv) as writer:
            time.sleep(LOAD_SETTLE_SECONDS)
            _run_steps(_Steps(cluster, writer, result, scenario), scenario, result, say)
            time.sleep(LOAD_SETTLE_SECONDS)
        history = writer.history()
        result.writes = {s: sum(1 for w in history if str(w.status) == s)
                         for s in ("acknowledged", "failed", "indeterminate")}
        for step_result in result.steps:
            if "t0" in step_result.detail:
                window = unavailability(history, step_result.detail.pop("t0"),
                                        step_result.detail.pop("t1"))
                step_result.detail["window_seconds"] = round(window.gap, 2)
        say(f"{scenario.name} ({run}): final checks")
        result.checks = final_checks(cluster, lambda: history, None, pitr=True,
                                     collations=result.collations)
        result.logs = cluster.logs()
    except Exception as exc:  # a setup failure is judged like a step failure
        if not result.steps and not result.setup_error:
            result.setup_error = f"{type(exc).__name__}: {exc}"
            log.exception("%s (%s): setup failed", scenario.name, run)
            result.logs = _logs(cluster)
        else:
            raise
    finally:
        cluster.close()
        result.wall_seconds = round(time.monotonic() - started, 1)
        atomic_write_text(workdir / "run.json",
                          json.dumps(result.to_dict(), indent=1, default=str) + "\n")
    return result


def _logs(cluster: Cluster) -> dict[str, dict[str, str]]:
    try:
        return cluster.logs()
    except Exception as exc:  # logs are evidence, never the failure itself
        return {"logs": {"error": str(exc)}}


def _run_steps(steps: _Steps, scenario: Scenario, result: ScenarioRun, say: Progress) -> None:
    for index, step in enumerate(scenario.steps, 1):
        entry = StepResult(index, str(step.kind), _describe(step))
        result.steps.append(entry)
        t0 = time.monotonic()
        try:
            steps.do(step, entry)
        except Exception as exc:  # a failed step is data for the judge
            entry.ok = False
            entry.error = f"{type(exc).__name__}: {exc}"[:2000]
            entry.lab_fault = is_lab_fault(exc)
            log.warning("%s: step %d (%s) failed: %s", scenario.name, index, entry.text,
                        entry.error)
        t1 = time.monotonic()
        entry.seconds = round(t1 - t0, 2)
        if entry.kind in ("switchover", "fault"):  # the unavailability window
            entry.detail.update(t0=t0, t1=t1)
        status = steps.writer.status()
        counts = (f"acked {status.acknowledged}, failed {status.failed}, indeterminate "
                  f"{status.indeterminate}") if status else "load status unknown"
        say(f"  [{index}/{len(scenario.steps)}] {entry.text}: "
            f"{'ok' if entry.ok else 'FAILED'} in {entry.seconds:.1f}s ({counts})")
        if not entry.ok:
            steps.run.logs = _logs(steps.cluster)
            break
