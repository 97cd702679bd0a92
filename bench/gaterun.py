"""What the suites' benches share: one `distrogate gate --suite NAME` run on the default pair,
and a summary of repeated figures."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from distrogate.fsutil import atomic_write_json

REPO = Path(__file__).resolve().parent.parent


def summary(values: list[float]) -> dict[str, object]:
    """Median, min, max and the number of runs."""
    return {"median": round(statistics.median(values), 3), "min": round(min(values), 3),
            "max": round(max(values), 3), "runs": len(values)}


def gate(suite: str, reports: Path) -> tuple[float, float, dict[str, Any], str]:
    """One gate run: (wall seconds, the suite's own ``<suite>_suite_wall_time``, results.json,
    the decision); a gate that ends in bad input or a lab failure (exit > 2) stops the bench."""
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "distrogate.cli", "-q", "gate", "--suite",
                           suite, "--reports-dir", str(reports)], capture_output=True,
                          timeout=3600, cwd=REPO, check=False)
    wall = time.monotonic() - started
    if done.returncode > 2:  # 0 promote, 1 reject, 2 inconclusive are verdicts
        raise SystemExit(f"gate failed ({done.returncode}): {done.stderr.decode()[-500:]}")
    run_dir = (reports / "latest").resolve()
    results = json.loads((run_dir / "results.json").read_text())
    key = f"{suite}_suite_wall_time"
    own = [r["measurements"][key]["value"] for r in results["records"]
           if key in r.get("measurements", {})]
    decision = json.loads((run_dir / "verdict.json").read_text())["decision"]
    return wall, (own[0] if own else float("nan")), results, decision


def write_result(out: Path, figures: dict[str, Any], targets: dict[str, float],
                 load_at_start: tuple[float, float, float]) -> dict[str, Any]:
    """Write a bench's JSON (when, the host, the figures, the targets) atomically to ``out``
    and return it."""
    result = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "host": {"node": platform.node(), "kernel": platform.release(),
                       "cpus": os.cpu_count(), "load_average_at_start": load_at_start},
              "figures": figures, "targets": targets}
    atomic_write_json(out, result)
    return result
