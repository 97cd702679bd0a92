"""The fio suite's figures, written to bench/results/fio.json:

* ``gate``: ``distrogate gate --suite fio`` (quick profile) on the default pair, end to end,
  and the suite's own time (``fio_suite_wall_time``); target: ≤ 4 min on this 2-core machine;
  the decision and every job's median ratios with their intervals (bookworm → trixie);
* ``aa``: the A/A calibration (:mod:`distrogate.fio.calibrate`): the promoted image against
  itself, ``--aa`` repetitions of the quick profile's interleaved runs, judged as the suite
  judges: the false-positive rate (target 0 at the default threshold), the inconclusive rate,
  the noise (robust CV) of every job's metric, and the quick profile's power at that noise.

Run (wrap it in the VM lock on a shared machine; the A/A part takes ~4 min per repetition):
    .venv/bin/python bench/bench_fio.py [--gate-runs N] [--aa N] [--order sequential|parallel]
    .venv/bin/python bench/bench_fio.py --rejudge   # the stored A/A samples, current rules
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gaterun

from distrogate.differential import Sample
from distrogate.fio.calibrate import Repetition, calibrate, summarise
from distrogate.fio.judge import judge_metric, rule_for
from distrogate.fio.power import simulate
from distrogate.fio.settings import FioSettings, parse
from distrogate.images.resolve import resolve_image
from distrogate.lab.lab import Lab
from distrogate.lab.run import LabRun

OUT = Path(__file__).resolve().parent / "results" / "fio.json"
REPO = Path(__file__).resolve().parent.parent
TARGETS = {"gate_suite_fio_quick_s": 240.0, "aa_false_positive_rate": 0.0}


def _gate(reports: Path) -> dict[str, Any]:
    """One gate run on the default pair: wall time, suite time, decision, every job's ratios."""
    wall, own, results, decision = gaterun.gate("fio", reports)
    ratios = {d["id"]: {"status": d["status"], "detail": d["detail"]}
              for r in results["records"] for d in r.get("deltas", [])}
    return {"wall_s": round(wall, 1), "suite_s": None if math.isnan(own) else round(own, 1),
            "decision": decision, "deltas": ratios}


def _aa_figures(reps: list[Repetition], settings: FioSettings, started: float
                ) -> dict[str, Any]:
    figures = summarise(reps, settings)
    figures["seconds"] = round(time.monotonic() - started, 1)
    powers = {}
    for key, cv in figures["median_cv"].items():
        metric = key.split(":", 1)[1]
        power = simulate(rule_for(metric, settings), settings.runs, max(cv, 1e-6), 0.20,
                         simulations=200)
        powers[key] = round(power.detected, 2)
    figures["power_20pct_at_measured_cv"] = powers
    figures["samples"] = [  # every repetition's raw samples: the figures can be judged again
        {f"{j.job}:{j.metric}": [list(j.delta.baseline.values),  # type: ignore[union-attr]
                                 list(j.delta.candidate.values)]  # type: ignore[union-attr]
         for j in rep.judged} for rep in reps]
    return figures


def _rejudge(stored: dict[str, Any], order: str) -> dict[str, Any]:
    """The A/A figures judged again, by the current rules, from the samples a calibration
    stored (``--rejudge``: no VM runs); its measuring time and date are kept."""
    settings = parse({"order": order}, {}, "suites.fio")
    reps = []
    for rep in stored["samples"]:
        judged = []
        for key, (base, cand) in rep.items():
            job, metric = key.split(":", 1)
            judged.append(judge_metric(job, metric, Sample(tuple(base), ""),
                                       Sample(tuple(cand), ""), settings))
        reps.append(Repetition(judged, []))
    figures = _aa_figures(reps, settings, time.monotonic())
    figures["seconds"] = stored.get("seconds")
    figures["samples_measured_at"] = stored.get("samples_measured_at")
    figures["rejudged"] = "judged again from the stored samples by the current rules"
    return figures


def _aa(repetitions: int, order: str, keep: Callable[[dict[str, Any]], None]) -> None:
    """The A/A calibration; ``keep`` gets the figures after every repetition."""
    settings = parse({"order": order}, {}, "suites.fio")
    image = resolve_image("promoted")
    lab = Lab.start()
    started = time.monotonic()
    try:
        with LabRun(lab) as run:
            calibrate(run, image, settings, repetitions,
                      lambda reps: keep(_aa_figures(reps, settings, started)))
    finally:
        lab.teardown()


def main() -> int:
    """Measure and write the figures (each part kept from the last file when skipped)."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--gate-runs", type=int, default=1)
    parser.add_argument("--aa", type=int, default=5, help="A/A repetitions (0: skip)")
    parser.add_argument("--order", default="sequential", choices=("sequential", "parallel"))
    parser.add_argument("--rejudge", action="store_true",
                        help="judge the stored A/A samples again by the current rules "
                             "(no VM runs; implies --gate-runs 0 --aa 0)")
    parser.add_argument("--reports-dir", type=Path, default=None,
                        help="keep the gate runs' reports here (default: a temporary folder)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    previous = json.loads(OUT.read_text()) if OUT.exists() else {}
    figures: dict[str, Any] = dict(previous.get("figures", {}))
    load_at_start = os.getloadavg()
    if args.rejudge:
        args.gate_runs = args.aa = 0
        key = f"aa_{args.order}"
        figures[key] = _rejudge(figures[key], args.order)
        figures[key]["samples_measured_at"] = figures[key].get("samples_measured_at") \
            or previous.get("measured_at")
        load_at_start = tuple(previous.get("host", {}).get("load_average_at_start",
                                                             load_at_start))
    if args.gate_runs:
        with tempfile.TemporaryDirectory(prefix="bench-fio-") as tmp:
            where = args.reports_dir or Path(tmp)
            runs = [_gate(where / f"r{i}") for i in range(args.gate_runs)]
        figures["gate_suite_fio_quick_s"] = {
            "median": statistics.median(r["wall_s"] for r in runs),
            "suite_median": statistics.median(r["suite_s"] or 0.0 for r in runs),
            "runs": len(runs), "decisions": sorted({r["decision"] for r in runs}),
            "last_deltas": runs[-1]["deltas"]}
    def write() -> dict[str, Any]:
        return gaterun.write_result(OUT, figures, TARGETS, load_at_start)

    def keep(aa: dict[str, Any]) -> None:
        figures[f"aa_{args.order}"] = aa
        write()

    if args.aa:
        _aa(args.aa, args.order, keep)
    print(json.dumps(write(), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
