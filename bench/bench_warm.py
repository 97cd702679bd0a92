"""Warm-everywhere benchmarks, medians of at least 5 runs, written to bench/results/warm.json:

- a node with a data disk restored from its warm template, to a usable machine (identity and
  addresses applied): target 1.5 s;
- a 4-node topology on 2 networks (2 images, one node with 2 NICs and a data disk), all
  warm, ready: target 12 s;
- ``distrogate run promoted -- true`` end to end, as a user runs it (a new private lab each
  time, the template cache warm): target 3 s;
- with ``--gate``: the full default gate (``distrogate gate``, warm cache), fewer runs
  unless ``--gate-runs`` says otherwise, because one takes about 10 minutes here.

Templates are made once before measuring (that is what "warm cache" means). Run:
    .venv/bin/python bench/bench_warm.py [--runs N] [--gate] [--gate-runs N]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

from distrogate.fsutil import atomic_write_json
from distrogate.images.resolve import resolve_image
from distrogate.lab.lab import Lab
from distrogate.lab.run import DataDisk, LabRun
from distrogate.lab.topology import NetworkSpec, NodeSpec, TopologySpec, realise

OUT = Path(__file__).resolve().parent / "results" / "warm.json"
REPO = Path(__file__).resolve().parent.parent
TARGETS = {"data_disk_node_restore_s": 1.5, "four_node_topology_ready_s": 12.0,
           "cli_run_true_s": 3.0}
TOPOLOGY = TopologySpec(
    networks=(NetworkSpec("front", ipv4=True), NetworkSpec("back")),
    nodes=(NodeSpec("db1", "baseline", ("front", "back"), (DataDisk("pgdata", 256),)),
           NodeSpec("db2", "candidate", ("front",)),
           NodeSpec("db3", "baseline", ("back",)),
           NodeSpec("db4", "candidate", ("back",))))


def _median(values: list[float]) -> dict[str, object]:
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "runs": len(values)}


def _timed_cli(args: list[str], timeout: float) -> float:
    started = time.monotonic()
    subprocess.run([sys.executable, "-m", "distrogate.cli", "-q", *args], check=True,
                   capture_output=True, timeout=timeout, cwd=REPO)
    return time.monotonic() - started


def main() -> int:
    """Measure and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gate", action="store_true", help="also time the full default gate")
    parser.add_argument("--gate-runs", type=int, default=5)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    load_at_start = os.getloadavg()
    images = {"baseline": resolve_image("promoted"), "candidate": resolve_image("candidate")}
    figures: dict[str, object] = {}
    lab = Lab.start()
    try:
        with LabRun(lab) as run:
            disk = (DataDisk("pgdata", 256),)
            run.destroy(run.boot(images["baseline"], role="warmup", data_disks=disk))
            topology = realise(run, TOPOLOGY, images)  # makes every template it needs
            topology.close()
            restores = []
            for _ in range(args.runs):
                started = time.monotonic()
                machine = run.boot(images["baseline"], role="disk", data_disks=disk)
                restores.append(time.monotonic() - started)
                assert machine.restored
                run.destroy(machine)
            ready = []
            for _ in range(args.runs):
                started = time.monotonic()
                topology = realise(run, TOPOLOGY, images)
                ready.append(time.monotonic() - started)
                assert all(m.restored for m in topology.nodes.values())
                topology.close()
        figures["data_disk_node_restore_s"] = _median(restores)
        figures["four_node_topology_ready_s"] = _median(ready)
    finally:
        lab.teardown()
    _timed_cli(["run", "promoted", "--", "true"], 900)  # the template for 1 NIC, no disks
    figures["cli_run_true_s"] = _median(
        [_timed_cli(["run", "promoted", "--", "true"], 300) for _ in range(args.runs)])
    if args.gate:
        figures["default_gate_warm_s"] = _median(
            [_timed_gate() for _ in range(args.gate_runs)])
    result = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "host": {"node": platform.node(), "kernel": platform.release(),
                       "cpus": os.cpu_count(), "load_average_at_start": load_at_start},
              "figures": figures, "targets": TARGETS}
    if OUT.exists() and not args.gate:  # keep the last gate figure when it was not re-run
        previous = json.loads(OUT.read_text()).get("figures", {})
        if "default_gate_warm_s" in previous:
            figures["default_gate_warm_s"] = previous["default_gate_warm_s"]
    atomic_write_json(OUT, result)
    print(json.dumps(result, indent=2))
    return 0


def _timed_gate() -> float:
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "distrogate.cli", "-q", "gate", "--candidate",
                           "candidate", "--baseline", "promoted"], capture_output=True,
                          timeout=3600, cwd=REPO, check=False)
    if done.returncode > 2:  # 0 promote, 1 reject, 2 inconclusive are verdicts
        raise SystemExit(f"gate failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    return time.monotonic() - started


if __name__ == "__main__":
    raise SystemExit(main())
