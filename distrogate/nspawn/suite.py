"""Run the nspawn checks on images: boot with the tree disk, install, check, compare.

Usable without pytest (``suites/test_nspawn.py`` and the fault tests are thin users of this).
One VM at a time: each image's VM is removed before the next boots.

The two images run one after the other, so a host that is busier while the candidate runs
(another job's guests starting) can make the candidate alone run out of a time bound. A
regression that rests only on such a timeout is therefore confirmed before it is reported:
both images run again, back to back, and the second pair is judged (the first is kept as
evidence). A candidate that is really slow or hangs runs out of time again; a lab that was
slow for a moment does not make it a regression. An image's run that the lab broke (a guest
that crashed, libvirt) runs once more on a fresh VM.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from distrogate.differential import Delta, DeltaStatus
from distrogate.errors import is_lab_fault
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.run import LabRun, boot_judged
from distrogate.logsteps import step
from distrogate.nspawn.checks import CHECK_NAMES, COMMAND_TIMEOUT, Bounds, Box, CheckResult, run_checks
from distrogate.nspawn.compare import deltas, timed_out
from distrogate.nspawn.install import install, tree_disk
from distrogate.nspawn.tree import ContainerArtifact, ContainerSpec, build_container

log = logging.getLogger(__name__)

CONFIG_KEYS = {"container", "start_timeout_s", "service_timeout_s", "poweroff_timeout_s",
               "journal_timeout_s", "checks"}


@dataclass(frozen=True)
class SuiteConfig:
    """The suite's settings (policy ``suites: {nspawn: {...}}``)."""

    container: ContainerSpec
    bounds: Bounds
    checks: tuple[str, ...] | None = None  # None: all

    @classmethod
    def from_mapping(cls, config: dict[str, Any]) -> SuiteConfig:
        """Parse and validate the policy's mapping (unknown keys are an error)."""
        unknown = sorted(set(config) - CONFIG_KEYS)
        if unknown:
            raise ValueError(f"suites.nspawn: unknown key {unknown[0]!r} "
                             f"(known: {', '.join(sorted(CONFIG_KEYS))})")
        checks = config.get("checks")
        if checks is not None and (not isinstance(checks, list)
                                   or not all(isinstance(c, str) for c in checks)):
            raise ValueError("suites.nspawn.checks: expected a list of check names")
        unknown_checks = sorted(set(checks or ()) - set(CHECK_NAMES))
        if unknown_checks:
            raise ValueError(f"suites.nspawn.checks: unknown check {unknown_checks[0]!r} "
                             f"(known: {', '.join(CHECK_NAMES)})")
        return cls(ContainerSpec.from_config(config), Bounds.from_config(config),
                   tuple(checks) if checks is not None else None)


@dataclass(frozen=True)
class ImageRun:
    """The checks on one image, and how long the parts took."""

    role: str
    image: ImageArtifact
    results: tuple[CheckResult, ...]
    boot_seconds: float
    install_seconds: float
    seconds: float

    def failed(self) -> list[CheckResult]:
        """The checks that failed (not attempted ones included)."""
        return [r for r in self.results if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form (for the run's artifacts)."""
        return {"role": self.role, "image": self.image.summary(),
                "boot_seconds": self.boot_seconds, "install_seconds": self.install_seconds,
                "seconds": self.seconds, "results": [r.to_dict() for r in self.results]}


def run_on_image(lab_run: LabRun, image: ImageArtifact, tree: ContainerArtifact, *, role: str,
                 bounds: Bounds, only: Sequence[str] | None = None,
                 control: ImageArtifact | None = None) -> ImageRun:
    """Boot ``image`` with the tree disk, install the container, run the checks, remove the VM.

    With ``control`` (the baseline), a candidate that does not boot is judged on the same lab
    (:func:`~distrogate.lab.run.boot_judged`)."""
    started = time.monotonic()
    with step("nspawn checks on %s (%s)", role, image.name):
        disks = [tree_disk(tree)]
        machine = (lab_run.boot(image, role=role, extra_disks=disks) if control is None
                   else boot_judged(lab_run, image, control=control, role=role, extra_disks=disks))
        try:
            booted = time.monotonic()
            installed = install(machine, tree)
            results = run_checks(machine, Box(installed, bounds), only)
        finally:
            lab_run.destroy(machine)
    return ImageRun(role, image, tuple(results), round(booted - started, 2), installed.seconds,
                    round(time.monotonic() - started, 2))


@dataclass(frozen=True)
class SuiteRun:
    """Both images' checks and their comparison (one delta per check)."""

    candidate: ImageRun
    baseline: ImageRun
    deltas: tuple[Delta, ...]
    wall_seconds: float
    bounds: Bounds
    first_try: tuple[ImageRun, ImageRun] | None = None  # (candidate, baseline), re-run since

    def delta(self, check: str) -> Delta:
        """The delta of one check (KeyError: the check was not selected)."""
        for delta in self.deltas:
            if delta.id == check:
                return delta
        raise KeyError(check)

    def results(self, check: str) -> tuple[CheckResult, CheckResult | None]:
        """The candidate's and the baseline's result of one check (KeyError: not run)."""
        cand = {r.check: r for r in self.candidate.results}[check]
        return cand, {r.check: r for r in self.baseline.results}.get(check)


def run_suite(lab_run: LabRun, candidate: ImageArtifact, baseline: ImageArtifact,
              config: SuiteConfig) -> SuiteRun:
    """Build (or reuse) the container tree, run the checks on the baseline and the candidate
    one after the other, and compare them."""
    started = time.monotonic()
    tree = build_container(config.container)

    def one(image: ImageArtifact, role: str, control: ImageArtifact | None) -> ImageRun:
        try:
            return run_on_image(lab_run, image, tree, role=role, bounds=config.bounds,
                                only=config.checks, control=control)
        except Exception as exc:
            if not is_lab_fault(exc):
                raise
            # a guest that crashed (a TCG guest restored from its warm template now and then
            # dies with a kernel panic a minute later) or libvirt failing: the lab's, so the
            # image runs once more on a fresh VM; a second failure is the lab's to report
            log.warning("nspawn: the %s's run broke because of the lab (%s); running it once "
                        "more on a fresh VM", role, exc)
            return run_on_image(lab_run, image, tree, role=role, bounds=config.bounds,
                                only=config.checks, control=control)

    def both() -> tuple[ImageRun, ImageRun, list[Delta]]:
        base = one(baseline, "baseline", None)
        cand = one(candidate, "candidate", baseline)
        return cand, base, deltas(cand.results, base.results,
                                  lambda check: bound_of(check, config.bounds))

    cand, base, found = both()
    first_try = None
    slow = timeout_regressions(cand.results, found)
    if slow:
        log.warning("nspawn: the candidate alone ran out of time at %s; running both images "
                    "again, back to back, before judging (a busy host is not a regression)",
                    ", ".join(slow))
        first_try = (cand, base)
        cand, base, found = both()
    return SuiteRun(cand, base, tuple(found), round(time.monotonic() - started, 2),
                    config.bounds, first_try)


def timeout_regressions(candidate: Sequence[CheckResult], found: Sequence[Delta]) -> list[str]:
    """The checks judged a regression where the candidate's result is a timeout (it ran out
    of its bound, or a command of it did): what a run of both images again confirms."""
    by_name = {r.check: r for r in candidate}
    return [d.id for d in found
            if d.status is DeltaStatus.REGRESSION and d.id in by_name and timed_out(by_name[d.id])]


def bound_of(check: str, bounds: Bounds) -> float:
    """The time bound a check waits within (seconds)."""
    return {"start": bounds.start, "service": bounds.service, "persistence": bounds.service,
            "poweroff": bounds.poweroff, "journal": bounds.journal,
            "host_journal": bounds.journal}.get(check, COMMAND_TIMEOUT)
