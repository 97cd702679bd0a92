"""One run of the DNF suite: the lab, the mirror, both guests, every cell, the speed runs.

:func:`run_dnf_suite` realises two nodes (the promoted image and the candidate) on one
isolated network with IPv4, gives the host side of that network's bridge an address inside
the lab's namespace, starts the mirror there (:class:`~distrogate.dnf.mirrorctl.Mirror`),
prepares both guests and runs every cell on both at the same time (each guest is its own
client of the mirror, with its own script), then the clean-mirror speed runs and ``dnf
history``. Everything it started (mirror, address, nodes) is gone when it returns or raises.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from distrogate import proc
from distrogate.dnf.faults import check_id, scenario
from distrogate.dnf.guest import GuestDnf
from distrogate.dnf.mirrorctl import Mirror
from distrogate.dnf.repo import Repository, build_repository
from distrogate.dnf.settings import DnfSettings
from distrogate.errors import InfraError
from distrogate.images.artifact import ImageArtifact
from distrogate.lab.lab import Lab
from distrogate.lab.network import LabNetwork
from distrogate.lab.run import LabRun
from distrogate.lab.topology import NetworkSpec, NodeSpec, TopologySpec, realise

log = logging.getLogger(__name__)

ROLES = ("baseline", "candidate")
NETWORK = "dnf"
MIRROR_HOST = 250  # the host side's address on the network: <prefix>.250
SPEC = TopologySpec(networks=(NetworkSpec(NETWORK, ipv4=True),),
                    nodes=(NodeSpec("dnfbase", "baseline", (NETWORK,)),
                           NodeSpec("dnfcand", "candidate", (NETWORK,))))
NODES = {"baseline": "dnfbase", "candidate": "dnfcand"}
#: the dnf command a target's faults hit: metadata faults makecache, the rest an install
STEPS = {"repomd": "makecache", "metadata": "makecache", "packages": "install",
         "mirrorlist": "install"}


@dataclass
class DnfRun:
    """What the suite observed: ``cells[cell][role][mode]`` observations, speed samples,
    history checks, versions, the wall time and the files written."""

    cells: dict[str, dict[str, dict[str, dict[str, Any]]]] = field(default_factory=dict)
    speed: dict[str, dict[str, list[float]]] = field(default_factory=dict)
    history: dict[str, tuple[bool, str]] = field(default_factory=dict)
    versions: dict[str, dict[str, str]] = field(default_factory=dict)
    wall_seconds: float = 0.0
    workdir: Path = Path()
    mirror_log: Path = Path()


@contextlib.contextmanager
def bridge_address(lab: Lab, network: LabNetwork) -> Iterator[str]:
    """The host side's address on ``network``'s bridge (inside the lab's namespace) for the
    body; removed afterwards."""
    if network.ipv4 is None:
        raise InfraError(f"network {network.name} has no IPv4 prefix for the mirror")
    address = ipaddress.IPv4Interface(
        f"{network.ipv4.network_address + MIRROR_HOST}/{network.ipv4.prefixlen}")
    proc.run(lab.host_argv(["ip", "addr", "add", str(address), "dev", network.bridge]),
             timeout=30)
    try:
        yield str(address.ip)
    finally:
        proc.run(lab.host_argv(["ip", "addr", "del", str(address), "dev", network.bridge]),
                 timeout=30, check=False)


def _run_cells(guest: GuestDnf, settings: DnfSettings) -> dict[str, dict[str, dict[str, Any]]]:
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for fault_class, target in settings.cells:
        script = scenario(fault_class, target, settings.faults)
        step = STEPS.get(target, "install")
        raw = guest.cell(script, "raw", step)
        observed = {"raw": raw.observation()}
        if raw.ok and settings.wrapper_runs == "on_raw_failure":
            implied = dict(observed["raw"])
            implied["skipped"] = "plain dnf survived: the wrapper's first attempt is that run"
            observed["wrapper"] = implied
        else:
            observed["wrapper"] = guest.cell(script, "wrapper", step).observation()
        found[check_id(fault_class, target)] = observed
    return found


def run_dnf_suite(lab_run: LabRun, images: Mapping[str, ImageArtifact], settings: DnfSettings,
                  workdir: Path, *, repo: Repository | None = None,
                  on_guests: Callable[[dict[str, GuestDnf]], None] | None = None) -> DnfRun:
    """Run the suite (see the module). ``on_guests`` is called once the guests are
    prepared (the bench measures the mirror's throughput there). Raises
    :class:`~distrogate.errors.InputError` when the policy's wrapper is not in an image."""
    started = time.monotonic()
    workdir.mkdir(parents=True, exist_ok=True)
    repo = repo or build_repository()
    result = DnfRun(workdir=workdir)
    net = realise(lab_run, SPEC, images)
    try:
        network = net.network(NETWORK)
        with bridge_address(lab_run.lab, network) as address, \
                Mirror(repo.root, address, workdir / "mirror",
                       argv_wrap=lab_run.lab.host_argv) as mirror:
            result.mirror_log = mirror.log_path
            guests = {role: GuestDnf(role, net.node(NODES[role]),
                                     str(net.node(NODES[role]).ip(NETWORK, family=4)), mirror,
                                     settings) for role in ROLES}
            with ThreadPoolExecutor(max_workers=2, thread_name_prefix="dnf") as pool:
                for prepared in [pool.submit(g.prepare, repo, images[r].name)
                                 for r, g in guests.items()]:
                    prepared.result()
                result.versions = {r: g.versions for r, g in guests.items()}
                if on_guests is not None:
                    on_guests(guests)
                observed = {r: pool.submit(_run_cells, g, settings) for r, g in guests.items()}
                per_role = {r: f.result() for r, f in observed.items()}
                if settings.speed:
                    lockstep = threading.Barrier(len(guests))
                    speeds = {r: pool.submit(g.speed, lockstep) for r, g in guests.items()}
                    try:
                        for role, timed in speeds.items():
                            makecache, install = timed.result()
                            result.speed[role] = {"makecache": makecache, "install": install}
                    except threading.BrokenBarrierError as exc:
                        raise InfraError("dnf speed runs: the two guests' runs fell out of "
                                         "step (one run exceeded twice the command "
                                         "timeout)") from exc
                histories = {r: pool.submit(g.history) for r, g in guests.items()}
                result.history = {r: f.result() for r, f in histories.items()}
            for cell in per_role["baseline"]:
                result.cells[cell] = {r: per_role[r][cell] for r in ROLES}
            for role, guest in guests.items():
                (workdir / f"dnf-{role}.log").write_text("\n".join(guest.transcripts))
    finally:
        net.close()
    result.wall_seconds = time.monotonic() - started
    (workdir / "cells.json").write_text(json.dumps(
        {"cells": result.cells, "speed": result.speed, "versions": result.versions,
         "history_ok": {r: h[0] for r, h in result.history.items()}}, indent=1) + "\n")
    return result
