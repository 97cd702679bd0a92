"""``distrogate gate`` and ``distrogate verdict``: run the suites, decide, write the reports.

``gate`` works in this order, so that bad input is found before anything is built or booted:

1. load the policy and validate every suite's settings (exit 3 on any problem);
2. find the suites and collect their tests in a pytest process of its own, then write the plan
   (``reports/<run-id>/plan.json``): a suite that collects nothing is exit 3, a file that cannot
   be collected makes the run inconclusive (exit 2) naming it;
3. build or import every image once (candidate, baseline, ``--image`` helpers; a bad image is
   exit 3 before any VM starts) and add them to the plan, with the suites' typed settings, the
   policy's digest and the lab;
4. run pytest on the plan (``--dg-plan``: its processes load the planned images and never
   resolve them again) in a child process (JUnit XML, a journal and results.json), so that a
   test that kills its process still leaves a verdict naming it;
5. decide with the policy: verdict.json, summary.html, ``reports/latest``, the history database,
   and the verdict's exit code. verdict.json and the exit code always agree.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

from distrogate import paths
from distrogate.errors import InputError
from distrogate.logsteps import step

log = logging.getLogger(__name__)

EXIT_INCONCLUSIVE = 2
EXIT_INTERRUPTED = 130
EXIT_INPUT = 3
INPUT_ERROR_FILE = "input-error.txt"  # a suite's bad input found once it started


def input_error_of(run_dir: Path) -> str | None:
    """The input error a suite left in ``run_dir`` (see
    :func:`fixtures.session.record_input_error`), or None."""
    path = run_dir / INPUT_ERROR_FILE
    if not path.exists():
        return None
    return path.read_text(errors="replace").strip() or "input error"


def suite_paths(names: list[str] | None, suites_dir: Path) -> list[Path]:
    """The test files or folders of the named suites (all of ``suites/`` if none).

    A name is a shipped suite or one of its aliases (``smoke`` for ``suites/test_smoke.py``,
    ``machinectl`` for ``suites/test_nspawn.py``; see :mod:`distrogate.suites`), another suite
    of ``suites/``, or the path of a test file or folder of your own
    (``./my_suites/test_kafka.py``).
    """
    from distrogate.suites import REGISTRY, known_names, suite_file

    if not names:
        return [suites_dir]
    chosen = []
    for name in names:
        own = Path(name)
        if ("/" in name or name.endswith(".py")) and not own.exists():
            raise InputError(f"--suite {name}: no such file or directory")
        shipped = suite_file(name, suites_dir)
        if shipped is not None:
            chosen.append(shipped)
            continue
        for candidate in (suites_dir / f"test_{name}.py", suites_dir / name,
                          suites_dir / f"{name}.py", own.resolve()):
            if candidate.exists():
                chosen.append(candidate)
                break
        else:
            files = {s.test_file for s in REGISTRY}
            known = known_names() + sorted(p.stem.removeprefix("test_")
                                           for p in suites_dir.glob("test_*.py")
                                           if p.name not in files)
            raise InputError(f"--suite {name}: no such suite (known: {', '.join(known)})")
    return chosen


def suite_names(targets: list[Path]) -> list[str]:
    """The suites the targets hold, by name: a folder of the repository's suites gives every
    suite in it, a file (or a folder of your own) its own name."""
    from distrogate.results import suite_of

    repo = paths.repo_root()
    names: list[str] = []
    for target in targets:
        resolved = target.resolve()
        if resolved.is_dir() and resolved.is_relative_to(repo):
            found = [suite_of(p.relative_to(repo).as_posix())
                     for p in sorted(resolved.rglob("test_*.py"))]
            names += [n for n in found if n != "harness"] or [_suite_name(target)]
        else:
            names.append(_suite_name(target))
    return list(dict.fromkeys(names))


def _rootdir(targets: list[Path]) -> Path:
    """The repository for its own suites; for suites elsewhere, the folder that holds them
    (test ids then read ``test_kafka.py::test_x``, which is what waivers and reports name)."""
    repo = paths.repo_root()
    if all(t.resolve().is_relative_to(repo) for t in targets):
        return repo
    return Path(os.path.commonpath([t.resolve() if t.is_dir() else t.resolve().parent
                                    for t in targets]))


def decide_and_report(run_dir: Path, policy_path: Path | None, *, today: date | None = None,
                      history_db: Path | None = None) -> int:
    """Read run_dir/results.json (and plan.json), write verdict.json + summary.html, print
    the verdict."""
    from distrogate.plan import load_plan
    from distrogate.policy import load_policy, today_utc
    from distrogate.report.history import record_run, write_trends
    from distrogate.report.html import write_html
    from distrogate.results import load_results
    from distrogate.verdict import decide, write_verdict

    policy = load_policy(policy_path)
    results = load_results(run_dir / "results.json")
    plan = load_plan(run_dir / "plan.json")
    verdict = decide(results, policy, today or today_utc(),
                     planned=plan.tests if plan is not None else ())
    write_verdict(run_dir / "verdict.json", verdict)
    html = write_html(run_dir, results, verdict)
    if history_db is not None:
        record_run(history_db, results, verdict)
        write_trends(history_db, history_db.parent / "trends.html")
    print(f"verdict: {str(verdict.decision).upper()} (exit {verdict.exit_code})")
    for reason in verdict.reasons:
        print(f"  - {reason}")
    for waiver in verdict.waivers_applied:
        items = f" items {', '.join(waiver.items)}" if waiver.items else ""
        print(f"  waived: {waiver.pattern}{items} ({waiver.reason}; {waiver.tracker}; until "
              f"{waiver.expires})")
    for waiver in verdict.unused_waivers:
        print(f"  unused waiver: {waiver.pattern}: {waiver.why}")
    for line in verdict.baseline_failures:
        print(f"  note: {line}")
    print(f"report: {html}")
    return verdict.exit_code


def _inconclusive(run_dir: Path, why: str, exit_code: int = EXIT_INCONCLUSIVE) -> int:
    """Write and print an inconclusive verdict with no test results behind it."""
    from distrogate.fsutil import atomic_write_json

    atomic_write_json(run_dir / "verdict.json", {"decision": "inconclusive",
                                                 "exit_code": exit_code, "reasons": [why]})
    print(f"verdict: INCONCLUSIVE (exit {exit_code})\n  - {why}")
    return exit_code


def _point_latest(reports: Path, run_dir: Path) -> None:
    latest = reports / "latest"
    tmp = reports / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, latest)


def _suite_name(target: Path) -> str:
    from distrogate.results import suite_of

    repo = paths.repo_root()
    resolved = target.resolve()
    if resolved.is_relative_to(repo):
        return suite_of(resolved.relative_to(repo).as_posix() + "::x")
    return resolved.stem.removeprefix("test_")


def _pytest_args(args: argparse.Namespace, targets: list[Path], run_id: str, run_dir: Path,
                 reports: Path) -> list[str]:
    """The options every pytest process of this gate run gets (collection and the run)."""
    from fixtures import HARNESS_PLUGINS

    argv = [f"--candidate={args.candidate}", f"--baseline={args.baseline}",
            *[f"--image={name}={ref}" for name, ref in helpers(args).items()],
            f"--run-id={run_id}", f"--reports-dir={reports}", f"--rootdir={_rootdir(targets)}",
            "-c", str(paths.repo_root() / "pyproject.toml"), "-p", "no:cacheprovider"]
    for plugin in HARNESS_PLUGINS:
        argv += ["-p", plugin]
    for flag, value in (("--libvirt-uri", args.libvirt_uri), ("--lab-dir", args.lab_dir),
                        ("--policy", args.policy)):
        if value:
            argv.append(f"{flag}={value}")
    if args.keep_vms:
        argv.append("--keep-vms")
    extra = list(args.pytest_args)
    return argv + (extra[1:] if extra and extra[0] == "--" else extra)


def helpers(args: argparse.Namespace) -> dict[str, str]:
    """The helper images of ``--image NAME=IMAGE``, by name (InputError if malformed)."""
    from distrogate.plan import parse_image_options

    return parse_image_options(getattr(args, "image", None))


def cmd_gate(args: argparse.Namespace) -> int:
    """Validate, plan, build both images, run the suites, decide, report."""
    from distrogate.images.resolve import resolve_image
    from distrogate.plan import PlannedImage, RunSpec, collect, write_plan
    from distrogate.policy import load_policy
    from distrogate.suites import options_from_args, plain, validate_settings

    started = time.monotonic()
    if str(paths.repo_root()) not in sys.path:  # the harness plugins, also for suites elsewhere
        sys.path.insert(0, str(paths.repo_root()))
    policy = load_policy(args.policy)
    refs = {"candidate": args.candidate, "baseline": args.baseline, **helpers(args)}
    targets = suite_paths(args.suite, paths.repo_root() / "suites")
    names = suite_names(targets)
    settings = validate_settings(policy, names, options_from_args(args.pytest_args))
    reports: Path = args.reports_dir
    run_id = paths.new_run_id()
    run_dir = reports / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    common = _pytest_args(args, targets, run_id, run_dir, reports)
    with step("plan: collect %s", ", ".join(t.name for t in targets)):
        plan = collect(targets, common, workdir=run_dir)
    for name, target in zip(args.suite or [], targets, strict=False):
        if plan.per_target.get(str(target), 0) == 0 and not plan.collection_errors:
            raise InputError(f"--suite {name}: collects no tests ({target})")
    write_plan(run_dir / "plan.json", plan)
    log.info("plan: %d tests in %s", len(plan.tests), run_dir / "plan.json")
    if plan.collection_errors:
        _point_latest(reports, run_dir)
        return _inconclusive(run_dir, "could not collect the suites: " + "; ".join(
            f"{e.path}: {e.error}" for e in plan.collection_errors))
    planned: dict[str, PlannedImage] = {}
    with step("prepare images"):
        # helpers first: a bad helper image is found before the pair is built
        for role, ref in sorted(refs.items(), key=lambda r: r[0] in ("candidate", "baseline")):
            try:
                image = resolve_image(ref)
            except InputError as exc:
                if role in ("candidate", "baseline"):
                    raise
                raise InputError(f"--image {role}={ref}: {exc}") from None
            planned[role] = PlannedImage.of(role, ref, image)
            log.info("%s: %s (%s, glibc %s, %s)", role, image.name, image.release,
                     image.glibc, image.digest[:12])
    lab = {"uri": args.libvirt_uri or None,
           "dir": str(args.lab_dir or paths.labs_dir() / f"run-{run_id}"),
           "private": not args.lab_dir and not args.libvirt_uri}
    write_plan(run_dir / "plan.json", replace(plan, run=RunSpec(
        images={r: planned[r] for r in refs}, suites={n: plain(settings.get(n)) for n in names},
        policy=policy.source, policy_sha256=policy_digest(args.policy), lab=lab)))
    images = {role: p.summary for role, p in planned.items()}
    argv = [*common, f"--junitxml={run_dir / 'junit.xml'}", f"--dg-plan={run_dir / 'plan.json'}",
            "-v", "-o", "log_cli=true", "--log-cli-level=INFO",
            "--log-cli-format=%(asctime)s %(message)s", "--log-cli-date-format=%H:%M:%S",
            *[str(t) for t in targets]]
    with step("run suites %s", ", ".join(t.name for t in targets)):
        code = run_pytest(argv, run_dir)
    _point_latest(reports, run_dir)
    log.info("gate run %s took %.0fs", run_id, time.monotonic() - started)
    problem = input_error_of(run_dir)
    if problem is not None:
        from distrogate.fsutil import atomic_write_json

        atomic_write_json(run_dir / "verdict.json", {"decision": "inconclusive",
                                                     "exit_code": EXIT_INPUT,
                                                     "reasons": [f"input error: {problem}"]})
        raise InputError(problem)
    if not (run_dir / "results.json").exists():
        salvage_results(run_dir, plan.tests, images, run_id, code)
    return decide_and_report(run_dir, args.policy, history_db=reports / "history.sqlite")


def policy_digest(path: Path | None) -> str:
    """The sha256 of the policy file (of the packaged default without one)."""
    import hashlib
    from importlib import resources

    from distrogate.policy import DEFAULT_POLICY_NAME

    data = (Path(path).read_bytes() if path is not None else
            resources.files("distrogate").joinpath(DEFAULT_POLICY_NAME).read_bytes())
    return hashlib.sha256(data).hexdigest()


PYTEST_STOP_TIMEOUT = 240.0  # a stopped run removes its VMs and lab; then it is killed


def run_pytest(argv: list[str], run_dir: Path) -> int:
    """Run pytest in a child process and return its exit code.

    An interrupt (Ctrl-C reaches both processes; SIGTERM reaches the gate only and is passed
    on) lets the child remove its VMs and lab, within a bound; the gate then writes an
    inconclusive verdict and re-raises, so the CLI exits 130."""
    import signal
    import subprocess

    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(paths.repo_root()), env.get("PYTHONPATH", "")) if p)
    child = subprocess.Popen([sys.executable, "-m", "pytest", *argv], env=env)
    try:
        return child.wait()
    except KeyboardInterrupt:
        try:
            child.wait(timeout=3)  # a Ctrl-C reached the child too
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=PYTEST_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait(timeout=30)
        _inconclusive(run_dir, "the run was interrupted", EXIT_INTERRUPTED)
        raise


def salvage_results(run_dir: Path, planned: tuple[str, ...], images: dict[str, Any],
                    run_id: str, code: int) -> None:
    """The pytest process died without writing results.json: build it from the journal (the
    tests that finished) and the plan (the test that was running, and those never reached),
    and remove whatever the dead process left in the lab."""
    from datetime import UTC, datetime

    from distrogate.lab.reaper import gc
    from distrogate.results import (
        RunInfo,
        journal_records,
        journal_starts,
        missing_records,
        write_results,
    )

    journal = run_dir / "journal.jsonl"
    records = journal_records(journal)
    records += missing_records(planned, records, journal_starts(journal))
    log.error("the test process ended without results (exit %d); %d of %d planned tests "
              "finished", code, len(records) - sum(r.message.startswith("no result")
                                                   for r in records), len(planned))
    now = datetime.now(UTC).isoformat(timespec="seconds")
    run = RunInfo(run_id=run_id, started=now, finished=now, candidate=images["candidate"],
                  baseline=images["baseline"], suites=sorted({r.suite for r in records}),
                  argv=list(sys.argv), lab={"salvaged": True}, host={})
    write_results(run_dir / "results.json", run, records)
    for removed in gc():
        log.info("removed what the dead run left: %s", removed)


def cmd_verdict(args: argparse.Namespace) -> int:
    """Decide on an existing run directory (no VMs)."""
    today = None
    if args.today:
        try:
            today = date.fromisoformat(args.today)
        except ValueError:
            raise InputError(f"--today {args.today}: not a date (expected YYYY-MM-DD)") from None
    return decide_and_report(Path(args.run_dir), args.policy, today=today)


def cmd_trends(args: argparse.Namespace) -> int:
    """Write the nightly trends page from the history database."""
    from distrogate.report.history import write_trends

    out = write_trends(args.db, args.out)
    print(f"trends: {out}")
    return 0


def add_commands(sub: Any, lab_options: Callable[[argparse.ArgumentParser], None]) -> None:
    """Register gate, verdict and trends on the top-level parser."""
    p = sub.add_parser("gate", help="gate a candidate against a baseline: build, boot, run the "
                       "suites, decide (exit 0 promote, 1 reject, 2 inconclusive)")
    p.add_argument("--candidate", default="candidate", help="IMAGE (default: candidate)")
    p.add_argument("--baseline", default="promoted", help="IMAGE (default: promoted)")
    p.add_argument("--image", action="append", metavar="NAME=IMAGE",
                   help="a helper image the suites ask for by NAME (repeatable; e.g. "
                   "mirror=promoted); resolved once, like the candidate and the baseline")
    p.add_argument("--suite", action="append", metavar="NAME",
                   help="run only this suite (repeatable; default: all of suites/)")
    p.add_argument("--policy", type=Path, help="policy file (default: the packaged policy)")
    p.add_argument("--reports-dir", type=Path, default=Path("reports"),
                   help="where reports/<run-id>/ and reports/latest go (default: ./reports)")
    p.add_argument("pytest_args", nargs=argparse.REMAINDER, help="-- extra pytest arguments")
    lab_options(p)
    p.set_defaults(func=cmd_gate)

    p = sub.add_parser("verdict", help="decide on reports/<run-id> (writes verdict.json; "
                       "exit 0 promote, 1 reject, 2 inconclusive)")
    p.add_argument("run_dir", help="a run directory holding results.json")
    p.add_argument("--policy", type=Path, help="policy file (default: the packaged policy)")
    p.add_argument("--today", help="judge waiver expiry as of this date (YYYY-MM-DD)")
    p.set_defaults(func=cmd_verdict)

    p = sub.add_parser("trends", help="write the trends page from the history database")
    p.add_argument("--db", type=Path, default=Path("reports/history.sqlite"))
    p.add_argument("--out", type=Path, default=Path("reports/trends.html"))
    p.set_defaults(func=cmd_trends)
