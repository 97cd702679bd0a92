"""Interleaved measured runs: baseline, candidate, baseline, candidate, ...

A slow drift of the host (another tenant, a warming disk) then touches both images alike
instead of all of one image's runs. ``order`` ``sequential`` runs one machine at a time, the
other one paused (under TCG an idle guest still takes a quarter of a host core: its timer
interrupts are emulated); ``parallel`` starts the two machines' runs together (each pair of
runs ends before the next starts). Which is less noisy on a machine is what the A/A calibration measures
(``bench/bench_fio.py``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Protocol

from distrogate.differential import ROLES, Sample
from distrogate.fio.guest import MeasuredRun, measured_run
from distrogate.fio.jobs import METRICS
from distrogate.fio.settings import FioSettings
from distrogate.guest.machine import Machine

log = logging.getLogger(__name__)


class Pausable(Protocol):
    """A VM that can be paused while the other one measures (:class:`~distrogate.lab.vm.VM`)."""

    def pause(self, timeout: float = 30.0) -> None:
        """Stop its virtual CPUs."""

    def resume(self, timeout: float = 30.0) -> None:
        """Continue it."""


@dataclass(frozen=True)
class Side:
    """One image's machine in the measurement, the ioengine it runs, and its VM (paused while
    the other side measures; None: never paused)."""

    role: str
    machine: Machine
    device: str
    engine: str
    vm: Pausable | None = None


@contextlib.contextmanager
def paused(vms: list[Pausable]) -> Iterator[None]:
    """Pause ``vms`` for the block; every one paused is resumed, also on failure."""
    done: list[Pausable] = []
    try:
        for vm in vms:
            vm.pause()
            done.append(vm)
        yield
    finally:
        for vm in done:
            vm.resume()


def plan(runs: int) -> list[tuple[int, str]]:
    """The order of measured runs: ``(index, role)``, baseline first in every pair."""
    return [(index, role) for index in range(runs) for role in ROLES]


def measure(sides: Mapping[str, Side], settings: FioSettings,
            on_run: Callable[[MeasuredRun], None] | None = None) -> list[MeasuredRun]:
    """Every measured run of ``settings`` on both sides, interleaved (see the module);
    ``on_run`` sees each run as it ends (to keep its JSON as an artifact)."""

    def one(index: int, role: str) -> MeasuredRun:
        side = sides[role]
        quiet = [s.vm for r, s in sides.items()
                 if r != role and s.vm is not None and settings.order == "sequential"]
        with paused(quiet):
            done = measured_run(side.machine, side.device, role=role, index=index,
                                jobs=settings.jobs, engine=side.engine,
                                runtime=settings.runtime, ramp=settings.ramp,
                                size_mib=settings.disk_mib)
        if on_run is not None:
            on_run(done)
        return done

    if settings.order == "sequential":
        return [one(index, role) for index, role in plan(settings.runs)]
    out: list[MeasuredRun] = []
    with ThreadPoolExecutor(max_workers=len(ROLES), thread_name_prefix="fio") as pool:
        for index in range(settings.runs):
            futures = [pool.submit(one, index, role) for role in ROLES]
            out.extend(f.result() for f in futures)
    return out


def samples(runs: list[MeasuredRun], role: str, job: str, metric: str,
            note: str = "") -> Sample:
    """One side's sample of one job's metric over its runs (in run order)."""
    values = [r.result.jobs[job][metric] for r in sorted(runs, key=lambda r: r.index)
              if r.role == role and job in r.result.jobs]
    return Sample.of(values, METRICS[metric].unit, note)
