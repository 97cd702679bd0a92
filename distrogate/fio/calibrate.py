"""A/A calibration: the same image on both sides, measured and judged as the suite does, to
find the false-positive rate of the statistics on this machine (target: 0 at the default
threshold), how often it cannot decide, and the noise (CV) of every job's metrics.

Two machines of one image, each with its own data disk; ``repetitions`` times, the suite's
interleaved runs on both, judged per job and metric. A regression here is a false positive;
an inconclusive delta would make a real gate run an error.
"""

from __future__ import annotations

import logging
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from distrogate.differential import ROLES, DeltaStatus
from distrogate.fio import guest
from distrogate.fio.disk import DEVICE, data_disk
from distrogate.fio.guest import MeasuredRun
from distrogate.fio.judge import Judged, judge_metric
from distrogate.fio.power import cv_of
from distrogate.fio.schedule import Side, measure, samples
from distrogate.fio.settings import FioSettings
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.run import LabRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Repetition:
    """One A/A repetition: every job's metrics judged, and its runs."""

    judged: list[Judged]
    runs: list[MeasuredRun]

    def count(self, status: DeltaStatus) -> int:
        """How many deltas got ``status``."""
        return sum(j.status is status for j in self.judged)


def judge_all(runs: list[MeasuredRun], settings: FioSettings) -> list[Judged]:
    """Every selected job's metrics judged (candidate against baseline)."""
    return [judge_metric(job, metric, samples(runs, "baseline", job, metric),
                         samples(runs, "candidate", job, metric), settings)
            for job in settings.jobs for metric in settings.metrics]


def calibrate(lab_run: LabRun, image: ImageArtifact, settings: FioSettings,
              repetitions: int,
              on_repetition: Callable[[list[Repetition]], None] | None = None
              ) -> list[Repetition]:
    """``repetitions`` A/A measurements of ``image`` against itself (see the module);
    ``on_repetition`` sees the repetitions so far after each one (to keep figures of a long
    calibration that is interrupted)."""
    disk = data_disk(settings.disk_mib)
    machines = {role: lab_run.boot(image, role=f"aa{role}", data_disks=[disk]) for role in ROLES}
    try:
        setups = {role: guest.setup(machines[role], DEVICE) for role in ROLES}
        sides = {role: Side(role, machines[role], DEVICE, setups[role].engine,
                            lab_run.node_of(machines[role])[0]) for role in ROLES}
        out: list[Repetition] = []
        for index in range(repetitions):
            runs = measure(sides, settings)
            judged = judge_all(runs, settings)
            out.append(Repetition(judged, runs))
            if on_repetition is not None:
                on_repetition(out)
            log.info("A/A repetition %d: %d regression(s), %d inconclusive", index + 1,
                     sum(j.status is DeltaStatus.REGRESSION for j in judged),
                     sum(j.status is DeltaStatus.INCONCLUSIVE for j in judged))
        return out
    finally:
        for machine in machines.values():
            lab_run.destroy(machine)


def decision(rep: Repetition, *, noise_advises: bool) -> str:
    """What a gate run of ``rep``'s deltas decides: reject on a regression; else, where a
    comparison too noisy to decide blocks (``noise: blocking``), inconclusive on one; else
    promote (the packaged policy's fio rule: ``noise: advisory``)."""
    if rep.count(DeltaStatus.REGRESSION):
        return "reject"
    if not noise_advises and rep.count(DeltaStatus.INCONCLUSIVE):
        return "inconclusive"
    return "promote"


def summarise(reps: list[Repetition], settings: FioSettings) -> dict[str, Any]:
    """The calibration figures: false-positive rate per delta and per run, inconclusive
    rates, the median CV of every job's metric (both sides' samples), and each repetition's
    decision under ``noise: advisory`` and ``noise: blocking``."""
    deltas = sum(len(r.judged) for r in reps)
    false = sum(r.count(DeltaStatus.REGRESSION) for r in reps)
    undecided = sum(r.count(DeltaStatus.INCONCLUSIVE) for r in reps)
    cvs: dict[str, list[float]] = {}
    for rep in reps:
        for j in rep.judged:
            for obs in (j.delta.baseline, j.delta.candidate):
                if obs is not None and hasattr(obs, "values"):
                    cvs.setdefault(f"{j.job}:{j.metric}", []).append(cv_of(obs))  # type: ignore[arg-type]
    return {
        "repetitions": len(reps), "deltas": deltas,
        "threshold": settings.threshold, "alpha": settings.alpha,
        "runs_per_image": settings.runs, "order": settings.order,
        "false_positives": false,
        "false_positive_rate": false / deltas if deltas else 0.0,
        "runs_with_a_false_reject": sum(r.count(DeltaStatus.REGRESSION) > 0 for r in reps),
        "inconclusive": undecided,
        "inconclusive_rate": undecided / deltas if deltas else 0.0,
        "runs_with_an_inconclusive": sum(r.count(DeltaStatus.INCONCLUSIVE) > 0 for r in reps),
        "decisions": {"noise_advisory": [decision(r, noise_advises=True) for r in reps],
                      "noise_blocking": [decision(r, noise_advises=False) for r in reps]},
        "median_cv": {k: round(statistics.median(v), 4) for k, v in sorted(cvs.items())},
        "regressions": [f"rep {i + 1}: {j.job}:{j.metric} ratio "
                        f"{j.effect.ratio:.3f}" if j.effect else f"rep {i + 1}: {j.job}:{j.metric}"
                        for i, r in enumerate(reps) for j in r.judged
                        if j.status is DeltaStatus.REGRESSION],
        "inconclusives": [f"rep {i + 1}: {j.job}:{j.metric} ratio "
                          f"{j.effect.ratio:.3f}" if j.effect else f"rep {i + 1}: {j.job}:{j.metric}"
                          for i, r in enumerate(reps) for j in r.judged
                          if j.status is DeltaStatus.INCONCLUSIVE],
    }
