"""DNF: package installs from the fleet's mirror while the mirror misbehaves.

On every node start the management agent refreshes the image's packages with dnf from the
fleet's mirror. A candidate whose dnf (or librepo, or curl, or dnf.conf defaults) handles a
transient fault worse than the promoted image's fails node starts fleet-wide.

The suite builds signed RPMs and their metadata on the host (:mod:`distrogate.dnf.repo`),
serves them from a fault-injecting HTTP mirror inside the lab's network namespace
(:mod:`distrogate.dnf.mirror`), and on each image runs, for every fault class on a target
(``repomd``, ``metadata``, ``packages``; the quick profile: the one where the class bites, the
nightly profile: every one): ``dnf makecache`` (faults on the metadata) or ``dnf install`` of
a package set (faults on the packages), plain and through the fleet's retry wrapper. Each
cell records the outcome (or dnf's exit status and the error class read from its output),
the time, the requests per path from the mirror's log, and whether anything was left
half-applied (``rpm -V``; ``dnf history``).

Judging (:mod:`distrogate.dnf.judge`): a class the promoted image survives and the candidate
does not, raw or through the wrapper, is a regression; one both fail raw and survive through
the wrapper is "needs the wrapper". Clean-mirror speed (makecache, install) is compared with
the statistical rule. The matrix (class × image × raw/wrapper) is the report's artifact.

Settings: the policy's ``suites: {dnf: {...}}`` (:mod:`distrogate.dnf.settings`);
``--dnf-profile quick|nightly``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from distrogate.differential import DeltaStatus, Direction, Exact, Numeric, Sample, Value
from distrogate.dnf.faults import check_id
from distrogate.dnf.judge import CellRule, closing_note, matrix_html
from distrogate.dnf.settings import DnfSettings
from distrogate.dnf.suite import DnfRun, run_dnf_suite
from distrogate.errors import InputError
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.run import LabRun
from fixtures.recording import Recorder
from fixtures.session import record_input_error
from fixtures.suites import parametrize_selected, suite_settings

pytestmark = [pytest.mark.vm, pytest.mark.slow]
log = logging.getLogger(__name__)



def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """One ``test_fault_class`` per class and one ``test_speed`` per speed step the policy
    selects (``suites.dnf.classes``, ``suites.dnf.speed``): what it leaves out is not a
    test, rather than a skipped or an empty one."""
    settings = suite_settings(metafunc.config, "dnf")
    assert isinstance(settings, DnfSettings)
    if "fault_class" in metafunc.fixturenames:
        parametrize_selected(metafunc, "fault_class", settings.classes)
    if "step" in metafunc.fixturenames:
        parametrize_selected(metafunc, "step", settings.speed)


@pytest.fixture(scope="module")
def dnf_run(lab_run: LabRun, candidate_image: ImageArtifact, baseline_image: ImageArtifact,
            suite_config: DnfSettings, run_dir: Path) -> DnfRun:
    """Both images, every cell, the speed runs; the mirror and the nodes are gone when this
    returns. A wrapper command missing from an image ends the run as an input error (exit 3)."""
    try:
        result = run_dnf_suite(lab_run, {"candidate": candidate_image,
                                         "baseline": baseline_image},
                               suite_config, run_dir / "dnf")
    except InputError as exc:
        record_input_error(run_dir, str(exc))
        pytest.exit(f"input error: {exc}", returncode=3)
    (run_dir / "dnf" / "matrix.html").write_text(matrix_html(
        result.cells, result.versions, "DNF: fault class × image × raw or wrapper"))
    return result


def test_matrix(dnf_run: DnfRun, suite_config: DnfSettings, record: Recorder) -> None:
    """Every cell observed on both images, raw and through the wrapper; the matrix, the
    mirror's request log and dnf's transcripts are artifacts; the wall time is measured."""
    record.measure("dnf_suite_wall_time", dnf_run.wall_seconds, "s",
                   note="2 nodes (warm), every cell, speed runs")
    workdir = dnf_run.workdir
    record.artifact("DNF fault matrix", workdir / "matrix.html", "html")
    record.artifact("DNF cells (JSON)", workdir / "cells.json", "json")
    record.artifact("mirror request and fault log (JSON lines)", dnf_run.mirror_log, "json")
    for role in ("baseline", "candidate"):
        record.artifact(f"dnf transcripts ({role})", workdir / f"dnf-{role}.log", "text")
        note = closing_note(dnf_run.cells, role)
        versions = ", ".join(f"{k} {v}" for k, v in sorted(dnf_run.versions.get(role, {})
                                                            .items()))
        log.info("%s (%s)", note, versions)
        record.measure(f"dnf_cells_survived_raw_{role}",
                       sum(1 for s in dnf_run.cells.values() if s[role]["raw"].get("ok")),
                       "cells", note=f"{note} ({versions})")
    want = [check_id(c, t) for c, t in suite_config.cells]
    assert sorted(dnf_run.cells) == sorted(want), "cells missing"


def test_fault_class(fault_class: str, dnf_run: DnfRun, suite_config: DnfSettings,
                     record: Recorder) -> None:
    """One fault class on each target, judged against the promoted image: a regression names
    the class, the target and what each image did (raw and through the wrapper)."""
    regressions = []
    for cell, sides in dnf_run.cells.items():
        if cell.split("@")[0] != fault_class:
            continue
        record.observe(cell, "baseline", Value(sides["baseline"]))
        record.observe(cell, "candidate", Value(sides["candidate"]))
        delta = record.compare(cell, CellRule(cell), title=f"dnf under {cell}")
        if delta.status is DeltaStatus.REGRESSION:
            regressions.append(delta.detail)
            record.finding(f"fault class {cell}: the candidate's dnf does not survive it",
                           delta.detail, {"cell": cell, **sides},
                           artifact=dnf_run.workdir / "dnf-candidate.log")
    assert not regressions, "; ".join(regressions)


def test_speed(step: str, dnf_run: DnfRun, suite_config: DnfSettings,
               record: Recorder) -> None:
    """Plain dnf on a clean mirror (``makecache``; ``install`` of the package set): the
    candidate must not be much slower, by the statistical rule."""
    for role in ("baseline", "candidate"):
        record.observe(f"speed:{step}", role,
                       Sample.of(dnf_run.speed[role][step], "s", note=f"dnf {step}, clean"))
    delta = record.compare(f"speed:{step}", Numeric(direction=Direction.LOWER_IS_BETTER,
                                                    threshold=suite_config.slowdown,
                                                    metrics=len(suite_config.speed)),
                           title=f"dnf {step} on a clean mirror")
    assert delta.status is not DeltaStatus.REGRESSION, delta.detail


def test_history_complete(dnf_run: DnfRun, record: Recorder) -> None:
    """After every cell, ``dnf history`` lists no transaction left incomplete."""
    for role in ("baseline", "candidate"):
        ok, text = dnf_run.history[role]
        path = dnf_run.workdir / f"history-{role}.txt"
        path.write_text(text)
        record.artifact(f"dnf history ({role})", path, "text")
        record.observe("dnf_history", role, Value(ok))
    delta = record.compare("dnf_history", Exact(expected=Value(True),
                                                 wanted="every transaction complete"),
                           title="dnf history complete")
    assert delta.status is not DeltaStatus.REGRESSION, delta.detail

