"""The IPsec suite's wall time on the default pair with a warm cache, written to
bench/results/ipsec.json: ``distrogate gate --suite ipsec`` end to end (target: 2 min on this
2-core machine) and the suite's own time (``ipsec_suite_wall_time``: the three pairs realised
and every step run), median of ``--runs`` runs after one warm-up run that makes the templates;
``phase_seconds``: each phase's wall time per pair (the pairs run side by side), from the
last run's ``ipsec/pairs.json``: where the time goes.

Run (wrap it in the VM lock on a shared machine):
    .venv/bin/python bench/bench_ipsec.py [--runs N] [--no-warm-up]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

import gaterun

OUT = Path(__file__).resolve().parent / "results" / "ipsec.json"
REPO = Path(__file__).resolve().parent.parent
TARGETS = {"gate_suite_ipsec_s": 120.0}


def _gate(reports: Path) -> tuple[float, float, str]:
    """One gate run: (wall seconds, the suite's own seconds, the decision)."""
    wall, own, _, decision = gaterun.gate("ipsec", reports)
    return wall, own, decision


def _phases(reports: Path) -> dict[str, dict[str, float]]:
    """Each pair's phase times of the latest run (``ipsec/pairs.json``)."""
    pairs = json.loads((reports / "latest" / "ipsec" / "pairs.json").read_text())
    return {pair: doc.get("seconds", {}) for pair, doc in pairs.items()}


def main() -> int:
    """Measure and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--no-warm-up", action="store_true",
                        help="the caches are warm already: skip the warm-up run")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-ipsec-") as tmp:
        reports = Path(tmp)
        if not args.no_warm_up:
            _gate(reports)  # warm-up: templates of every image and NIC layout
        runs = [_gate(reports) for _ in range(args.runs)]
        phases = _phases(reports)
    figures = {"gate_suite_ipsec_s": gaterun.summary([r[0] for r in runs]),
               "ipsec_suite_wall_time_s": gaterun.summary([r[1] for r in runs]),
               "decisions": sorted({r[2] for r in runs}),
               "phase_seconds": phases}
    result = gaterun.write_result(OUT, figures, TARGETS, load_at_start)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
