"""The roll-forward suite's figures, written to bench/results/rollforward.json:

* ``rolling_replace_s``: ``distrogate scenario run scenarios/rolling-replace.yaml`` on the
  default pair with warm caches (images, templates, the container tree), end to end (the
  real run only: the gate runs a control too, so the suite takes about twice this); target
  ≤ 8 min on this 2-core machine; median of ``--runs`` runs after one warm-up run;
* ``setup_s`` and ``steps_s``: the cluster's start (3 nodes, data, backup, standbys restored)
  and the steps, from ``run.json``;
* ``write_throughput_per_s``: acknowledged writes per second of the client load over the
  steps, with the acknowledged, failed and indeterminate counts and ``lost``;
* ``step_times``: each step's time and what it measured (the lag before a switchover, the
  unavailability window).

Run (wrap it in the VM lock on a shared machine):
    .venv/bin/python bench/bench_rollforward.py [--runs N] [--scenario FILE] [--no-warm-up]
        [--log FILE]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import gaterun

OUT = Path(__file__).resolve().parent / "results" / "rollforward.json"
REPO = Path(__file__).resolve().parent.parent
TARGETS = {"rolling_replace_s": 480.0}


def _run(scenario: Path, out: Path, log: Path | None = None) -> dict[str, Any]:
    """One ``distrogate scenario run``: its wall time and what run.json says (its log, with
    every nested step's time, appended to ``log``)."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "distrogate.cli", "scenario", "run",
                           str(scenario), "--out", str(out)], cwd=REPO, timeout=3600,
                          check=False, capture_output=True, text=True)
    wall = time.monotonic() - started
    if log is not None:
        with log.open("a") as file:
            file.write(done.stdout + done.stderr)
    run = json.loads((out / "real" / "run.json").read_text())
    steps = sum(s["seconds"] for s in run["steps"])
    acked = run["writes"].get("acknowledged", 0)
    lost = run["checks"].get("no_lost_writes", {}).get("primary", {}).get("lost_count")
    return {"wall": wall, "exit": done.returncode, "setup": run["setup_seconds"],
            "steps": steps, "writes": run["writes"], "lost": lost,
            "throughput": acked / steps if steps else 0.0,
            "step_times": [{"step": s["text"], "seconds": s["seconds"], "ok": s["ok"],
                            **{k: v for k, v in s.get("detail", {}).items()
                               if isinstance(v, int | float | str)}}
                           for s in run["steps"]],
            "stderr_tail": done.stderr[-1500:]}


def main() -> int:
    """Measure and write the figures."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--scenario", type=Path,
                        default=REPO / "scenarios" / "rolling-replace.yaml")
    parser.add_argument("--no-warm-up", action="store_true",
                        help="the caches are warm already: skip the warm-up run")
    parser.add_argument("--log", type=Path,
                        help="append each run's log (every nested step, timed) to this file")
    args = parser.parse_args()
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-rollforward-") as tmp:
        if not args.no_warm_up:
            _run(args.scenario, Path(tmp) / "warm-up", args.log)
        runs = [_run(args.scenario, Path(tmp) / f"run{i}", args.log) for i in range(args.runs)]
    figures = {"rolling_replace_s": gaterun.summary([r["wall"] for r in runs]),
               "setup_s": gaterun.summary([r["setup"] for r in runs]),
               "steps_s": gaterun.summary([r["steps"] for r in runs]),
               "write_throughput_per_s": gaterun.summary([r["throughput"] for r in runs]),
               "writes": [r["writes"] for r in runs], "lost": [r["lost"] for r in runs],
               "exit_codes": [r["exit"] for r in runs], "scenario": args.scenario.name,
               "step_times": [r["step_times"] for r in runs]}
    result = gaterun.write_result(OUT, figures, TARGETS, load_at_start)
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
