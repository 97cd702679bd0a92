"""The run plan: what a gate run means to do, written to ``reports/<run>/plan.json`` before
anything runs.

The gate collects the selected suites in a separate pytest process first (nothing is built or
booted for that): the test ids after selection, and the collection errors. A suite named on the
command line that collects nothing is an input error; a collection error makes the run
inconclusive before any VM starts. After the run, every planned test must have a result: one
without is *error* ("no result").
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distrogate import paths
from distrogate.errors import InfraError, InputError
from distrogate.fsutil import atomic_write_json

log = logging.getLogger(__name__)

PLAN_VERSION = 1
COLLECT_TIMEOUT = 300.0
_XDIST_OPTIONS = ("-n", "--numprocesses", "--dist", "--maxprocesses", "--tx")


@dataclass(frozen=True)
class CollectionError:
    """A test file that could not be collected, and the first line of why."""

    path: str
    error: str


@dataclass(frozen=True)
class Plan:
    """The tests a run will run (after selection), per target, and what could not be collected."""

    tests: tuple[str, ...]
    per_target: dict[str, int] = field(default_factory=dict)  # target path -> collected tests
    collection_errors: tuple[CollectionError, ...] = ()
    run: dict[str, Any] = field(default_factory=dict)  # images, suites, policy: set by the gate

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        doc = asdict(self)
        doc["plan_version"] = PLAN_VERSION
        return doc


def write_plan(path: Path, plan: Plan) -> None:
    """Write plan.json atomically."""
    atomic_write_json(path, plan.to_dict())


def load_plan(path: Path) -> Plan | None:
    """Read a plan.json; None when there is none. A damaged one is an input error."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        return Plan(tests=tuple(doc["tests"]), per_target=dict(doc.get("per_target", {})),
                    collection_errors=tuple(CollectionError(**e)
                                            for e in doc.get("collection_errors", [])),
                    run=dict(doc.get("run", {})))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputError(f"{path}: not a readable plan: {exc}") from None


def without_xdist(args: list[str]) -> list[str]:
    """``args`` without xdist's options (collection runs in one process)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        name = arg.split("=", 1)[0]
        if name in _XDIST_OPTIONS:
            skip = "=" not in arg
            continue
        if (arg.startswith("-n") and arg[2:].isdigit()) or arg in ("-nauto", "-nlogical"):
            continue
        out.append(arg)
    return out


def collect(targets: list[Path], pytest_args: list[str], *, workdir: Path,
            env: dict[str, str] | None = None) -> Plan:
    """Collect ``targets`` with ``pytest_args`` in a pytest process of its own (no VM, no
    image) and return the plan. Raises :class:`InfraError` if pytest cannot even start."""
    out = workdir / "collected.json"
    argv = [sys.executable, "-m", "pytest", "--collect-only", "-q",
            "-p", "no:cacheprovider", f"--dg-collect-to={out}",
            *without_xdist(pytest_args), *[str(t) for t in targets]]
    run_env = dict(env or os.environ)
    run_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(paths.repo_root()), run_env.get("PYTHONPATH", "")) if p)
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=COLLECT_TIMEOUT,
                              check=False, env=run_env, cwd=Path.cwd())
    except subprocess.TimeoutExpired:
        raise InfraError(f"collecting the suites took more than {COLLECT_TIMEOUT:g}s") from None
    if not out.exists():
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise InputError("cannot collect the suites (pytest exit "
                         f"{done.returncode}): {' | '.join(tail) or 'no output'}")
    doc = json.loads(out.read_text())
    out.unlink()
    per_target = {str(t): sum(1 for n in doc["paths"] if _under(Path(n), t))
                  for t in targets}
    return Plan(tests=tuple(doc["tests"]), per_target=per_target,
                collection_errors=tuple(CollectionError(**e) for e in doc["errors"]))


def _under(path: Path, target: Path) -> bool:
    resolved = target.resolve()
    return path == resolved or path.is_relative_to(resolved)
