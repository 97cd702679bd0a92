"""The run plan: what a gate run means to do, written to ``reports/<run>/plan.json`` before
anything runs.

The gate collects the selected suites in a separate pytest process first (nothing is built or
booted for that): the test ids after selection, and the collection errors. A suite named on the
command line that collects nothing is an input error; a collection error makes the run
inconclusive before any VM starts. After the run, every planned test must have a result: one
without is *error* ("no result").

Before the run the gate resolves every image once (a spec name, a spec file or an image file:
built, taken from the cache or imported) and adds the :class:`RunSpec` to the plan: roles →
images (digest, summary and the artifact's store directory, so that pytest and its xdist
workers load the artifact without resolving it again), the suites with their typed settings as
plain data, the policy and its sha256, and the lab. ``candidate`` and ``baseline`` are always
there; helper images (``--image mirror=IMAGE``) have roles of their own.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from distrogate import paths
from distrogate.errors import InfraError, InputError
from distrogate.fsutil import atomic_write_json
from distrogate.images.artifact import ImageArtifact

log = logging.getLogger(__name__)

PLAN_VERSION = 2
#: The two roles every run has (``--candidate``, ``--baseline``); helpers come with ``--image``.
ROLES = ("candidate", "baseline")
_ROLE_RE = re.compile(r"^[a-z][a-z0-9_-]{0,31}$")
COLLECT_TIMEOUT = 300.0
_XDIST_OPTIONS = ("-n", "--numprocesses", "--dist", "--maxprocesses", "--tx")


@dataclass(frozen=True)
class CollectionError:
    """A test file that could not be collected, and the first line of why."""

    path: str
    error: str


@dataclass(frozen=True)
class PlannedImage:
    """One role's image as the gate resolved it: enough to load the artifact without
    resolving it again (its store directory holds ``manifest.json``), and its identity."""

    role: str
    ref: str  # what was asked for: a spec name, a spec file or an image file
    name: str
    digest: str  # sha256 of the disk file
    directory: str  # the artifact's store directory (manifest.json)
    summary: dict[str, str] = field(default_factory=dict)  # how reports name the image

    @classmethod
    def of(cls, role: str, ref: str, image: ImageArtifact) -> PlannedImage:
        """The plan entry of a resolved ``image``."""
        return cls(role=role, ref=str(ref), name=image.name, digest=image.digest,
                   directory=str(image.directory.resolve()), summary=image.summary())

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PlannedImage:
        """Read an entry of plan.json."""
        return cls(role=str(doc["role"]), ref=str(doc["ref"]), name=str(doc["name"]),
                   digest=str(doc["digest"]), directory=str(doc["directory"]),
                   summary={str(k): str(v) for k, v in dict(doc.get("summary", {})).items()})

    def load(self) -> ImageArtifact:
        """The artifact, read from its manifest (nothing is built, imported or hashed).

        Raises :class:`InputError` when the manifest no longer records this digest, or the
        disk file is gone or (an imported file) has another size or mtime than when it was
        imported: the image changed after the gate resolved it."""
        image = ImageArtifact.load(Path(self.directory))
        where = f"{self.role} image {self.name} ({self.directory})"
        if image.digest != self.digest:
            raise InputError(f"{where}: the manifest records sha256 {image.digest[:12]}, the "
                             f"plan {self.digest[:12]}: the image changed after it was planned")
        disk = image.manifest["disk"]
        try:
            stat = image.disk.stat()
        except OSError as exc:
            raise InputError(f"{where}: disk {image.disk}: {exc.strerror}") from None
        if image.manifest.get("kind") == "imported" and (
                stat.st_size != disk.get("size") or stat.st_mtime_ns != disk.get("mtime_ns")):
            raise InputError(f"{where}: {image.disk} was modified after it was planned")
        return image


@dataclass(frozen=True)
class RunSpec:
    """What the gate fixed before the run: images by role, suites with their settings (plain
    data), the policy and its digest, the lab."""

    images: dict[str, PlannedImage]
    suites: dict[str, Any] = field(default_factory=dict)  # name -> settings as plain data
    policy: str = ""
    policy_sha256: str = ""
    lab: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> RunSpec:
        """Read the ``run`` part of plan.json."""
        images = {str(role): PlannedImage.from_dict(entry)
                  for role, entry in dict(doc["images"]).items()}
        return cls(images=images, suites=dict(doc.get("suites", {})),
                   policy=str(doc.get("policy", "")),
                   policy_sha256=str(doc.get("policy_sha256", "")), lab=dict(doc.get("lab", {})))


@dataclass(frozen=True)
class Plan:
    """The tests a run will run (after selection), per target, and what could not be collected;
    with ``run`` once the gate has resolved the images."""

    tests: tuple[str, ...]
    per_target: dict[str, int] = field(default_factory=dict)  # target path -> collected tests
    collection_errors: tuple[CollectionError, ...] = ()
    run: RunSpec | None = None  # images, suites, policy, lab: set by the gate

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data."""
        doc = asdict(self)
        doc["plan_version"] = PLAN_VERSION
        return doc


def write_plan(path: Path, plan: Plan) -> None:
    """Write plan.json atomically."""
    atomic_write_json(path, plan.to_dict())


def load_plan(path: Path) -> Plan | None:
    """Read a plan.json; None when there is none. A damaged one is an input error. A plan of
    version 1 (before images were planned) gives its tests and no ``run``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
        run_doc = doc.get("run") or None
        run = (RunSpec.from_dict(run_doc) if run_doc and doc.get("plan_version", 1) >= 2
               else None)
        return Plan(tests=tuple(doc["tests"]), per_target=dict(doc.get("per_target", {})),
                    collection_errors=tuple(CollectionError(**e)
                                            for e in doc.get("collection_errors", [])),
                    run=run)
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"{path}: not a readable plan: {exc}") from None


def parse_image_options(values: list[str] | None, option: str = "--image") -> dict[str, str]:
    """Helper images from ``--image NAME=IMAGE`` (repeatable), by role name. A malformed value,
    a name given twice, or ``candidate``/``baseline`` (they have options of their own) is an
    :class:`InputError` naming the option."""
    found: dict[str, str] = {}
    for value in values or []:
        name, sep, ref = value.partition("=")
        name, ref = name.strip(), ref.strip()
        if not sep or not name or not ref:
            raise InputError(f"{option} {value}: expected NAME=IMAGE (e.g. mirror=promoted)")
        if not _ROLE_RE.match(name):
            raise InputError(f"{option} {value}: the name {name!r} must be 1-32 characters "
                             "a-z, 0-9, '-' or '_', starting with a letter")
        if name in ROLES:
            raise InputError(f"{option} {value}: the {name} image is given with --{name}")
        if name in found:
            raise InputError(f"{option} {value}: the image {name!r} is given twice")
        found[name] = ref
    return found


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
