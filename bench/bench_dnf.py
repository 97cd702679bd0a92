"""The DNF suite's figures, written to bench/results/dnf.json:

* ``gate_suite_dnf_s``: ``distrogate gate --suite dnf`` on the default pair with a warm cache
  (images, templates, repository), end to end; target ≤ 3 min on this 2-core machine; and
  ``dnf_suite_wall_time_s``, the suite's own time (nodes, mirror, every cell, speed runs);
  median of ``--runs`` runs after one warm-up run;
* ``mirror_throughput_mib_s``: the mirror's throughput to one guest (the promoted image), the
  24 MiB package fetched with Python's urllib in the guest (timed there), median of
  ``--fetches``, to show the mirror is not what makes dnf slow.

Run (wrap it in the VM lock on a shared machine):
    .venv/bin/python bench/bench_dnf.py [--runs N] [--fetches N] [--skip-gate]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import gaterun

from distrogate.dnf.guest import GuestDnf
from distrogate.dnf.mirrorctl import Mirror
from distrogate.dnf.repo import build_repository
from distrogate.dnf.settings import DnfSettings
from distrogate.dnf.suite import NETWORK, bridge_address
from distrogate.images.resolve import resolve_image
from distrogate.lab.lab import Lab
from distrogate.lab.run import LabRun
from distrogate.lab.topology import NetworkSpec, NodeSpec, TopologySpec, realise

OUT = Path(__file__).resolve().parent / "results" / "dnf.json"
REPO = Path(__file__).resolve().parent.parent
TARGETS = {"gate_suite_dnf_s": 180.0}
BIG = "dg-data"


def _gate(reports: Path) -> tuple[float, float, str]:
    """One gate run: (wall seconds, the suite's own seconds, the decision)."""
    wall, own, _, decision = gaterun.gate("dnf", reports)
    return wall, own, decision


def _throughput(fetches: int, workdir: Path) -> dict[str, object]:
    """MiB/s of the mirror to one guest (see the module)."""
    repo = build_repository()
    image = resolve_image("promoted")
    spec = TopologySpec(networks=(NetworkSpec(NETWORK, ipv4=True),),
                        nodes=(NodeSpec("bench", "baseline", (NETWORK,)),))
    lab = Lab.start()
    try:
        with LabRun(lab) as run:
            net = realise(run, spec, {"baseline": image})
            try:
                with bridge_address(lab, net.network(NETWORK)) as address, \
                        Mirror(repo.root, address, workdir / "mirror",
                               argv_wrap=lab.host_argv) as mirror:
                    machine = net.node("bench")
                    guest = GuestDnf("baseline", machine, str(machine.ip(NETWORK, family=4)),
                                     mirror, DnfSettings())
                    guest.prepare(repo, image.name)
                    path = f"packages/{BIG}-1.0-1.noarch.rpm"
                    rates = []
                    for _ in range(fetches):
                        size, seconds = guest.fetch(path)
                        rates.append(size / (1 << 20) / seconds)
                    return {"file": path, "bytes": size, **gaterun.summary(rates)}
            finally:
                net.close()
    finally:
        lab.teardown()


def main() -> int:
    """Measure and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fetches", type=int, default=5)
    parser.add_argument("--skip-gate", action="store_true", help="only the throughput")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    figures: dict[str, object] = {}
    with tempfile.TemporaryDirectory(prefix="bench-dnf-") as tmp:
        figures["mirror_throughput_mib_s"] = _throughput(args.fetches, Path(tmp))
        if not args.skip_gate:
            reports = Path(tmp) / "reports"
            _gate(reports)  # warm-up: templates and the repository
            runs = [_gate(reports) for _ in range(args.runs)]
            figures.update({"gate_suite_dnf_s": gaterun.summary([r[0] for r in runs]),
                            "dnf_suite_wall_time_s": gaterun.summary([r[1] for r in runs]),
                            "decisions": sorted({r[2] for r in runs})})
    result = gaterun.write_result(OUT, figures, TARGETS, load_at_start)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
