"""Benchmark the collation comparison: time per locale per image, for both corpus sizes.

Targets (DESIGN.md / issue 4): every shipped locale with the quick corpus in <= 5 minutes for
the pair; the full corpus (>= 2 million strings) for 10 locales in <= 5 minutes per image.

    .venv/bin/python bench/bench_collation.py [--runs 5] [--lab-dir DIR] [--sizes quick,full]

Writes bench/results/collation.json: for each size, every run's wall time for the pair and per
image, the median per locale per image (seconds of the in-guest sort of that locale), and the
strcoll_l verification's share (seconds and pairs checked per locale, ``--strcoll-stride``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from distrogate.collation.compare import STRCOLL_STRIDE, Comparison, Survey, compare_images
from distrogate.collation.corpus import build_corpus
from distrogate.fsutil import atomic_write_json
from distrogate.images.resolve import resolve_image
from distrogate.lab.lab import Lab
from distrogate.lab.run import LabRun

log = logging.getLogger("bench.collation")

FULL_LOCALES = ["C.UTF-8", "en_US.UTF-8", "de_DE.UTF-8", "fr_FR.UTF-8", "sv_SE.UTF-8",
                "tr_TR.UTF-8", "lv_LV.UTF-8", "th_TH.UTF-8", "ja_JP.UTF-8", "zh_CN.UTF-8"]
OUT = Path(__file__).resolve().parent / "results" / "collation.json"


def _per_locale(runs: list[Comparison], side: str, field: str = "seconds") -> dict[str, float]:
    """Median of a sorter ``field`` per locale (a grouped locale shows its group's figure)."""
    names = runs[0].locales
    out = {}
    for name in names:
        values = [getattr(getattr(r, side).results[name], field) for r in runs]
        out[name] = round(statistics.median(values), 4)
    return out


def bench_size(run: LabRun, size: str, runs: int, refs: dict[str, str],
               save: Callable[[dict[str, Any]], None], *, parallel: bool = True,
               strcoll_stride: int = STRCOLL_STRIDE) -> None:
    """Boot both images (``refs``: baseline and candidate) and run the comparison ``runs``
    times; ``save`` receives the figures after every run (a lab failure keeps the runs done)."""
    corpus = build_corpus(size)
    base = run.boot(resolve_image(refs["baseline"]), role="benchbase")
    cand = run.boot(resolve_image(refs["candidate"]), role="benchcand")
    locales = None if size == "quick" else FULL_LOCALES
    dedupe = size == "quick"
    done: list[Comparison] = []
    walls: list[float] = []
    try:
        for index in range(runs):
            started = time.monotonic()
            done.append(compare_images(base, cand, corpus, locales, dedupe=dedupe,
                                       parallel=parallel, strcoll_stride=strcoll_stride))
            walls.append(time.monotonic() - started)
            log.info("%s run %d/%d: %.1fs for the pair", size, index + 1, runs, walls[-1])
            last = done[-1]
            save({
                "corpus": corpus.summary(),
                "locales": len(last.locales),
                "dedupe": dedupe,
                "images_sorted": "in parallel" if parallel else "one after the other",
                "strcoll_stride": strcoll_stride,
                "runs": len(done),
                "pair_seconds": [round(w, 1) for w in walls],
                "pair_seconds_median": round(statistics.median(walls), 1),
                **{side: _side(done, side, ref) for side, ref in refs.items()},
                "changed": [o.locale for o in last.by_status("changed")],
                "missing": [o.locale for o in last.by_status("missing")],
                "strcoll": {o.locale: str(o.strcoll_status()) for o in last.strcoll_findings()},
            })
    finally:
        run.destroy(base)
        run.destroy(cand)


def _side(done: list[Comparison], side: str, ref: str) -> dict[str, Any]:
    """One image's figures over the runs ``done``."""
    surveys = [getattr(r, side) for r in done]
    return {
        "image": ref,
        "survey_seconds": [round(s.seconds, 1) for s in surveys],
        "sort_seconds": [round(s.sort_seconds, 1) for s in surveys],
        "sort_seconds_median": round(statistics.median(s.sort_seconds for s in surveys), 1),
        "distinct_collations": len(set(surveys[-1].representative.values())),
        "per_locale_seconds_median": _per_locale(done, side),
        "per_locale_strcoll_seconds_median": _per_locale(done, side, "strcoll_seconds"),
        "per_locale_pairs_checked": _per_locale(done, side, "pairs_checked"),
        "strcoll_seconds_sum_distinct_median": round(statistics.median(
            _distinct_sum(r, side) for r in done), 1),
    }


def _distinct_sum(comparison: Comparison, side: str) -> float:
    """Seconds the strcoll verification took on one image, each distinct collation once."""
    survey: Survey = getattr(comparison, side)
    reps = {survey.representative[n]: n for n in survey.representative}
    return float(sum(survey.results[n].strcoll_seconds for n in reps.values()))


def main() -> int:
    """Run the benchmark and write :data:`OUT`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="quick,full")
    parser.add_argument("--lab-dir", type=Path, default=None)
    parser.add_argument("--baseline", default="promoted")
    parser.add_argument("--candidate", default="candidate")
    parser.add_argument("--strcoll-stride", type=int, default=STRCOLL_STRIDE,
                        help="strcoll_l verification: 1 every pair, 0 none (default %(default)s)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    lab = Lab.ensure(args.lab_dir)
    figures: dict[str, Any] = {}
    if OUT.is_file():
        figures = json.loads(OUT.read_text())
    figures["host"] = {"cpus": os.cpu_count(), "machine": platform.machine(),
                       "load_average_at_start": os.getloadavg()}
    try:
        with LabRun(lab) as run:
            for size in args.sizes.split(","):

                def save(data: dict[str, Any], size: str = size) -> None:
                    figures[size] = dict(data, taken=time.strftime("%Y-%m-%dT%H:%M:%S"))
                    atomic_write_json(OUT, figures)

                # quick: the target is for the pair, sorted at once; full: per image, so each
                # image sorts with the host to itself
                bench_size(run, size, args.runs,
                           {"baseline": args.baseline, "candidate": args.candidate}, save,
                           parallel=size == "quick", strcoll_stride=args.strcoll_stride)
    finally:
        if lab.owned_by_me:
            lab.teardown()
    log.info("wrote %s", OUT)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
