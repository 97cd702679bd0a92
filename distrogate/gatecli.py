"""``distrogate gate`` and ``distrogate verdict``: run the suites, decide, write the reports.

``gate`` builds or imports both images (so a bad image is a clear input error before any VM
starts), runs pytest on the selected suites (JUnit XML and results.json into
``reports/<run-id>/``), then decides with the policy and writes verdict.json and summary.html,
points ``reports/latest`` at the run, records it in the history database and exits with the
verdict's code. Anything that keeps the suites from producing results is *inconclusive*.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from datetime import date
from pathlib import Path
from typing import Any

from distrogate import paths
from distrogate.errors import InputError
from distrogate.logsteps import step

log = logging.getLogger("distrogate")

EXIT_INCONCLUSIVE = 2


def suite_paths(names: list[str] | None, suites_dir: Path) -> list[Path]:
    """The test files or folders of the named suites (all of ``suites/`` if none).

    A name is a suite of ``suites/`` (``smoke`` for ``suites/test_smoke.py``) or the path of a
    test file or folder of your own (``./my_suites/test_kafka.py``).
    """
    if not names:
        return [suites_dir]
    chosen = []
    for name in names:
        own = Path(name)
        if ("/" in name or name.endswith(".py")) and not own.exists():
            raise InputError(f"--suite {name}: no such file or directory")
        for candidate in (suites_dir / f"test_{name}.py", suites_dir / name,
                          suites_dir / f"{name}.py", own.resolve()):
            if candidate.exists():
                chosen.append(candidate)
                break
        else:
            known = sorted(p.stem.removeprefix("test_") for p in suites_dir.glob("test_*.py"))
            raise InputError(f"--suite {name}: no such suite (known: {', '.join(known)})")
    return chosen


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
    """Read run_dir/results.json, write verdict.json + summary.html, print the verdict."""
    from distrogate.policy import load_policy
    from distrogate.report.history import record_run, write_trends
    from distrogate.report.html import write_html
    from distrogate.results import load_results
    from distrogate.verdict import decide, write_verdict

    results = load_results(run_dir / "results.json")
    policy = load_policy(policy_path)
    verdict = decide(results, policy, today or date.today())
    write_verdict(run_dir / "verdict.json", verdict)
    html = write_html(run_dir, results, verdict)
    if history_db is not None:
        record_run(history_db, results, verdict)
        write_trends(history_db, history_db.parent / "trends.html")
    print(f"verdict: {str(verdict.decision).upper()} (exit {verdict.exit_code})")
    for reason in verdict.reasons:
        print(f"  - {reason}")
    for waiver in verdict.waivers_applied:
        print(f"  waived: {waiver.pattern} ({waiver.reason}; {waiver.tracker}; until "
              f"{waiver.expires})")
    print(f"report: {html}")
    return verdict.exit_code


def _inconclusive(run_dir: Path, why: str) -> int:
    from distrogate.fsutil import atomic_write_json

    atomic_write_json(run_dir / "verdict.json", {"decision": "inconclusive", "exit_code": 2,
                                                 "reasons": [why]})
    print(f"verdict: INCONCLUSIVE (exit 2)\n  - {why}")
    return EXIT_INCONCLUSIVE


def _point_latest(reports: Path, run_dir: Path) -> None:
    latest = reports / "latest"
    tmp = reports / f".latest-{os.getpid()}"
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(run_dir.name)
    os.replace(tmp, latest)


def cmd_gate(args: argparse.Namespace) -> int:
    """Build both images, run the suites, decide, report."""
    import pytest

    from distrogate.images.resolve import resolve_image

    started = time.monotonic()
    with step("prepare images"):
        for role, ref in (("candidate", args.candidate), ("baseline", args.baseline)):
            image = resolve_image(ref)
            log.info("%s: %s (%s, glibc %s, %s)", role, image.name, image.release,
                     image.glibc, image.digest[:12])
    reports: Path = args.reports_dir
    run_id = paths.new_run_id()
    run_dir = reports / run_id
    run_dir.mkdir(parents=True, exist_ok=True)
    targets = suite_paths(args.suite, paths.repo_root() / "suites")
    extra = list(args.pytest_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    pytest_args = [str(t) for t in targets] + [
        f"--candidate={args.candidate}", f"--baseline={args.baseline}", f"--run-id={run_id}",
        f"--reports-dir={reports}", f"--junitxml={run_dir / 'junit.xml'}",
        f"--rootdir={_rootdir(targets)}", "-c", str(paths.repo_root() / "pyproject.toml"),
        "-p", "no:cacheprovider", "-v",
        # progress on the console as it happens: which VM boots, each step and its time
        "-o", "log_cli=true", "--log-cli-level=INFO", "--log-cli-format=%(asctime)s %(message)s",
        "--log-cli-date-format=%H:%M:%S",
    ]
    if str(paths.repo_root()) not in sys.path:  # the harness plugins, also for suites elsewhere
        sys.path.insert(0, str(paths.repo_root()))
    from fixtures import HARNESS_PLUGINS

    for plugin in HARNESS_PLUGINS:
        pytest_args += ["-p", plugin]
    for flag, value in (("--libvirt-uri", args.libvirt_uri), ("--lab-dir", args.lab_dir),
                        ("--policy", args.policy)):
        if value:
            pytest_args.append(f"{flag}={value}")
    if args.keep_vms:
        pytest_args.append("--keep-vms")
    with step("run suites %s", ", ".join(t.name for t in targets)), _pytest_owns_the_console():
        code = pytest.main(pytest_args + extra)
    _point_latest(reports, run_dir)
    log.info("gate run %s took %.0fs", run_id, time.monotonic() - started)
    if code == pytest.ExitCode.INTERRUPTED:
        _inconclusive(run_dir, "the run was interrupted")
        raise KeyboardInterrupt
    if not (run_dir / "results.json").exists():
        return _inconclusive(run_dir, f"the suites produced no results (pytest exit {code})")
    if code in (pytest.ExitCode.INTERNAL_ERROR, pytest.ExitCode.USAGE_ERROR):
        return _inconclusive(run_dir, f"pytest failed to run the suites (exit {int(code)})")
    return decide_and_report(run_dir, args.policy, history_db=reports / "history.sqlite")


@contextlib.contextmanager
def _pytest_owns_the_console() -> Iterator[None]:
    """Detach the command's own log handlers while pytest runs: its live log shows every line
    once, in sections, and captured output does not repeat the captured log."""
    root = logging.getLogger()
    saved = root.handlers[:]
    root.handlers[:] = []
    try:
        yield
    finally:
        root.handlers[:] = saved


def cmd_verdict(args: argparse.Namespace) -> int:
    """Decide on an existing run directory (no VMs)."""
    today = date.fromisoformat(args.today) if args.today else None
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
