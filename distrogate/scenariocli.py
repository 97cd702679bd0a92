"""``distrogate scenario``: run or check one roll-forward scenario on its own.

``distrogate scenario run FILE --candidate X --baseline Y`` loads and checks the scenario
(a bad one is exit 3 naming the file, the key and the problem), resolves both images (a
scenario that runs PostgreSQL from the image on an image without it is exit 3), then runs it
with live progress on stderr: each step with its time and the writers' acknowledged, failed
and indeterminate counts. ``--control`` runs the control (baseline onto baseline) first, as
the gate does. The run's files (``run.json``, the write history, the cluster's logs) go to
``--out``. Exit 0 when every step ran and every check passed, 1 when not, 3 for bad input,
4 when the lab failed (also when a run's set-up or a step failed because of the lab: a node
that crashed, or one neither image boots as; see ``ScenarioRun.lab_error``), 130 on an
interrupt (everything started is removed).

``distrogate scenario check FILE...`` only loads and checks scenario files.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_LAB = 4  # as the top-level CLI's EXIT_INFRA: the lab failed, nothing said of the image


def _say(line: str) -> None:
    sys.stderr.write(line + "\n")
    sys.stderr.flush()


def cmd_scenario_check(args: argparse.Namespace) -> int:
    """Load and check each scenario file; one line per file."""
    from distrogate.scenario.schema import load

    for path in args.files:
        scenario = load(Path(path))
        _say(f"{path}: ok ({scenario.name}: {scenario.cluster.nodes} nodes, "
             f"{len(scenario.steps)} steps)")
    return EXIT_OK


def cmd_scenario_run(args: argparse.Namespace, lab_run: Callable[[argparse.Namespace], Any],
                     ) -> int:
    """Run one scenario (see the module)."""
    from distrogate.images.resolve import resolve_image
    from distrogate.nspawn.tree import build_container
    from distrogate.scenario.images import check_images
    from distrogate.scenario.model import ServiceSource, as_control
    from distrogate.scenario.pgnode import container_spec
    from distrogate.scenario.runner import run_scenario
    from distrogate.scenario.schema import load

    scenario = load(Path(args.file))
    images = {"baseline": resolve_image(args.baseline),
              "candidate": resolve_image(args.candidate)}
    check_images([scenario], images)
    tree = (build_container(container_spec())
            if scenario.service.source is ServiceSource.CONTAINER else None)
    out = Path(args.out or f"scenario-{scenario.name}-{time.strftime('%Y%m%d-%H%M%S')}")
    runs = [("control", as_control(scenario))] if args.control else []
    runs.append(("real", scenario))
    failed = lab_failed = False
    with lab_run(args) as lab:
        for label, plan in runs:
            done = run_scenario(lab, plan, images, run=label, tree=tree, workdir=out / label,
                                progress=_say)
            lab_failed = bool(done.lab_error)
            bad = [f"step {s.index} ({s.text}): {s.error}" for s in done.steps if not s.ok]
            bad += [f"{name}: {result.get('error') or 'failed'}"
                    for name, result in done.checks.items() if not result.get("ok")]
            if done.setup_error:
                bad.insert(0, f"set-up: {done.setup_error}")
            lost = done.checks.get("no_lost_writes", {}).get("primary", {})
            _say(f"{scenario.name} ({label}): {'FAILED' if bad else 'ok'} in "
                 f"{done.wall_seconds:.0f}s; writes {done.writes}; lost "
                 f"{lost.get('lost_count', '?')}; {out / label / 'run.json'}")
            for line in bad:
                _say(f"  {line[:500]}")
            failed = failed or bool(bad)
            if lab_failed:
                _say(f"{scenario.name} ({label}): the lab failed, so this run says nothing "
                     f"about the image: {done.lab_error[:500]}")
                break  # a real run after a broken control has nothing to be compared with
    return EXIT_LAB if lab_failed else EXIT_FAILED if failed else EXIT_OK


def add_commands(sub: Any, lab_options: Callable[[argparse.ArgumentParser], None],
                 lab_run: Callable[[argparse.Namespace], Any]) -> None:
    """Register ``scenario run`` and ``scenario check`` on the top-level parser."""
    scenario = sub.add_parser("scenario", help="run or check one roll-forward scenario",
                              description=__doc__,
                              formatter_class=argparse.RawDescriptionHelpFormatter)
    scenario_sub = scenario.add_subparsers(dest="scenario_command", required=True,
                                           metavar="ACTION")
    p = scenario_sub.add_parser(
        "run", help="run a scenario file with live progress (exit 0 ok, 1 a step or check "
        "failed, 4 the lab failed)")
    p.add_argument("file", help="the scenario file (scenarios/*.yaml)")
    p.add_argument("--candidate", default="candidate",
                   help="IMAGE the added nodes boot from (default: candidate)")
    p.add_argument("--baseline", default="promoted",
                   help="IMAGE the initial nodes boot from (default: promoted)")
    p.add_argument("--control", action="store_true",
                   help="run the control (baseline onto baseline) first, as the gate does")
    p.add_argument("--out", help="directory for run.json, the write history and the logs "
                   "(default: ./scenario-<name>-<time>)")
    lab_options(p)
    p.set_defaults(func=lambda args: cmd_scenario_run(args, lab_run))
    p = scenario_sub.add_parser("check", help="load and check scenario files (exit 3 naming "
                                "the file, the key and the problem)")
    p.add_argument("files", nargs="+", help="scenario files")
    p.set_defaults(func=cmd_scenario_check)
