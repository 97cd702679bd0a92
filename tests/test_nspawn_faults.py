"""The nspawn checks catch real breakage: images derived from the promoted spec with
systemd-machined masked, and with ``machinectl shell`` denied by D-Bus policy, fail the checks
of the broken operation (as regressions, naming it), while the promoted image passes them all.

One VM at a time: the promoted image's run, then each faulty image's.
"""

from __future__ import annotations

import pytest

from distrogate import paths
from distrogate.differential import DeltaStatus
from distrogate.images.build import build_image
from distrogate.images.spec import load_spec
from distrogate.lab.run import LabRun
from distrogate.nspawn.checks import CHECK_NAMES, Bounds
from distrogate.nspawn.compare import deltas
from distrogate.nspawn.suite import ImageRun, run_on_image
from distrogate.nspawn.tree import ContainerArtifact, ContainerSpec, build_container
from fixtures.recording import Recorder

pytestmark = [pytest.mark.vm, pytest.mark.slow]

IMAGES = paths.repo_root() / "images"
FAULTS = paths.repo_root() / "tests" / "images"
SHELL_CHECKS = ("shell_output", "shell_exit_code", "shell_setenv")
BOUNDS = Bounds(start=90.0, service=120.0, poweroff=60.0)


@pytest.fixture(scope="module")
def tree() -> ContainerArtifact:
    """The default container tree (cached)."""
    return build_container(ContainerSpec())


@pytest.fixture(scope="module")
def promoted_run(lab_run: LabRun, tree: ContainerArtifact) -> ImageRun:
    """Every check on the promoted image: the control for the faulty images."""
    image = build_image(load_spec(IMAGES / "promoted.yaml"))
    return run_on_image(lab_run, image, tree, role="promoted", bounds=BOUNDS)


def _faulty(lab_run: LabRun, tree: ContainerArtifact, spec: str,
            only: tuple[str, ...] | None = None) -> ImageRun:
    image = build_image(load_spec(FAULTS / spec))
    return run_on_image(lab_run, image, tree, role="faulty", bounds=BOUNDS, only=only)


def test_promoted_passes_every_check(promoted_run: ImageRun) -> None:
    """The control: with nothing broken, every check passes on the promoted image."""
    assert [r.check for r in promoted_run.results] == list(CHECK_NAMES)
    failed = [r.summary() for r in promoted_run.results if not r.ok]
    assert not failed, failed


def test_masked_machined_fails_machinectl_start(lab_run: LabRun, tree: ContainerArtifact,
                                                promoted_run: ImageRun,
                                                record: Recorder) -> None:
    """systemd-machined masked: ``machinectl start`` is the broken operation, a regression;
    the checks that need a running container are reported as not attempted."""
    faulty = _faulty(lab_run, tree, "nspawn-no-machined.yaml")
    items = {d.id: d for d in deltas(faulty.results, promoted_run.results)}
    results = {r.check: r for r in faulty.results}
    start = items["start"]
    record.add_delta(start)
    record.finding("fault detected: machined masked", f"{start.title}: {start.detail}")
    assert start.status is DeltaStatus.REGRESSION, start.detail
    assert start.title == f"machinectl start {tree.machine}"
    # what came back and the host's journal explain why
    assert results["start"].got.exit_code not in (0, None) or results["start"].detail
    assert any("machine" in line.lower() for line in results["start"].host_journal), \
        results["start"].host_journal
    others = [r for name, r in results.items() if name != "start"]
    assert all(r.not_attempted == "machinectl start failed" for r in others)


def test_denied_shell_fails_machinectl_shell_only(lab_run: LabRun, tree: ContainerArtifact,
                                                  promoted_run: ImageRun,
                                                  record: Recorder) -> None:
    """machined's shell methods denied: the three ``machinectl shell`` checks fail as
    regressions naming ``machinectl shell``; start, systemd-run and poweroff still pass."""
    only = ("start", *SHELL_CHECKS, "systemd_run", "poweroff")
    faulty = _faulty(lab_run, tree, "nspawn-broken-shell.yaml", only=only)
    items = {d.id: d for d in deltas(faulty.results, promoted_run.results)}
    assert sorted(items) == sorted(only)
    for name in SHELL_CHECKS:
        item = items[name]
        record.add_delta(item)
        record.finding(f"fault detected: {name}", f"{item.title}: {item.detail}")
        assert item.status is DeltaStatus.REGRESSION, item.detail
        assert item.title.startswith("machinectl shell"), item.title
        assert "the baseline gives it" in item.detail
    denied = {r.check: r for r in faulty.results}["shell_output"]
    said = (denied.got.stderr + denied.got.stdout).lower()
    assert "denied" in said or "rejected" in said, denied.got  # the bus refused the call
    assert "denied" in items["shell_output"].detail.lower() \
        or "rejected" in items["shell_output"].detail.lower()  # the observation shows it
    for name in ("start", "systemd_run", "poweroff"):
        assert items[name].status is DeltaStatus.UNCHANGED, items[name].detail
