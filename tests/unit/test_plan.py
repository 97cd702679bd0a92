"""The run plan: images by role round-trip through plan.json, the pytest fixtures load them
from the plan (never resolving again, in xdist workers too), ``--image`` parsing, and
results.json naming the planned images. No VM: the "images" are small raw files."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from distrogate.errors import InputError
from distrogate.images.artifact import ImageArtifact
from distrogate.plan import (
    Plan,
    PlannedImage,
    RunSpec,
    load_plan,
    parse_image_options,
    write_plan,
)
from fixtures import HARNESS_PLUGINS

REPO = Path(__file__).resolve().parents[2]


def fake_image(directory: Path, name: str) -> ImageArtifact:
    """An imported-image artifact over a 64 KiB raw file (never booted here)."""
    directory.mkdir(parents=True)
    disk = directory / f"{name}.raw"
    data = bytearray(65536)
    data[510:512] = b"\x55\xaa"
    data[:len(name)] = name.encode()
    disk.write_bytes(bytes(data))
    stat = disk.stat()
    manifest = {"kind": "imported", "name": name, "boot": "firmware", "source": str(disk),
                "release": None, "glibc": None, "kernel": None, "has_guest_agent": None,
                "imported_at": "2026-01-01T00:00:00+00:00",
                "disk": {"path": str(disk), "format": "raw",
                         "sha256": hashlib.sha256(bytes(data)).hexdigest(),
                         "virtual_size": len(data), "size": stat.st_size,
                         "mtime_ns": stat.st_mtime_ns}}
    (directory / "manifest.json").write_text(json.dumps(manifest))
    return ImageArtifact.load(directory)


def a_plan(tmp_path: Path, tests: tuple[str, ...] = ()) -> Plan:
    images = {role: PlannedImage.of(role, f"{role}.qcow2", fake_image(tmp_path / role, role))
              for role in ("candidate", "baseline", "mirror")}
    return Plan(tests=tests, per_target={"suites": len(tests)}, run=RunSpec(
        images=images, suites={"smoke": None, "collation": {"corpus": "quick"}},
        policy="default.yaml", policy_sha256="ab" * 32,
        lab={"uri": None, "dir": "/x", "private": True}))


def test_plan_round_trip(tmp_path: Path) -> None:
    plan = a_plan(tmp_path, ("suites/test_smoke.py::test_a",))
    write_plan(tmp_path / "plan.json", plan)
    assert load_plan(tmp_path / "plan.json") == plan
    doc = json.loads((tmp_path / "plan.json").read_text())
    assert doc["plan_version"] == 2
    assert doc["run"]["images"]["mirror"]["directory"] == str((tmp_path / "mirror").resolve())
    assert doc["run"]["suites"]["collation"] == {"corpus": "quick"}


def test_a_version_1_plan_gives_its_tests_and_no_run(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps({"plan_version": 1, "tests": ["a::b"], "run": {
        "images": {"candidate": {"name": "c", "digest": "d"}}, "suites": ["smoke"]}}))
    plan = load_plan(path)
    assert plan is not None and plan.tests == ("a::b",) and plan.run is None


def test_a_planned_image_loads_without_resolving_and_checks_its_digest(tmp_path: Path) -> None:
    image = fake_image(tmp_path / "img", "cand")
    planned = PlannedImage.of("candidate", "cand.raw", image)
    assert planned.load() == image
    other = PlannedImage.from_dict({**planned.__dict__, "digest": "0" * 64})
    with pytest.raises(InputError, match="changed after it was planned"):
        other.load()
    image.disk.write_bytes(image.disk.read_bytes() + b"x")
    with pytest.raises(InputError, match="modified after it was planned"):
        planned.load()


def test_image_options() -> None:
    assert parse_image_options(["mirror=promoted", "prev = images/x.yaml"]) == {
        "mirror": "promoted", "prev": "images/x.yaml"}
    assert parse_image_options(None) == {}


@pytest.mark.parametrize(("value", "problem"), [
    ("mirror", "expected NAME=IMAGE"),
    ("=promoted", "expected NAME=IMAGE"),
    ("mirror=", "expected NAME=IMAGE"),
    ("Mirror!=promoted", "must be 1-32 characters"),
    ("candidate=promoted", "given with --candidate"),
])
def test_bad_image_options(value: str, problem: str) -> None:
    with pytest.raises(InputError, match=problem) as raised:
        parse_image_options([value])
    assert str(raised.value).startswith(f"--image {value}:")


def test_an_image_given_twice_is_refused() -> None:
    with pytest.raises(InputError, match="'mirror' is given twice"):
        parse_image_options(["mirror=a", "mirror=b"])


PROBE = '''
import json, os
from pathlib import Path
import fixtures.session

def _no_resolving(ref):
    with open(os.environ["DG_RESOLVED"], "a") as out:
        out.write(ref + "\\n")
    return _real(ref)

_real = fixtures.session.resolve_image
fixtures.session.resolve_image = _no_resolving

def _write(name, data):
    Path(os.environ["DG_OUT"], f"{name}-{os.getpid()}.json").write_text(json.dumps(data))

def test_roles(candidate_image, baseline_image, image):
    _write("roles", {"candidate": candidate_image.digest, "baseline": baseline_image.digest,
                     "mirror": image("mirror").digest, "same": image("candidate") is candidate_image})

def test_no_record(candidate_image):
    _write("norecord", {"candidate": candidate_image.name})

def test_unknown_role(image):
    image("nosuch")
'''


def run_probe(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    """Run the probe tests in a pytest process of their own, with the harness plugins."""
    (tmp_path / "probe").mkdir()
    (tmp_path / "probe" / "test_probe.py").write_text(PROBE)
    out = tmp_path / "out"
    out.mkdir()
    home = tmp_path / "home"
    home.mkdir()
    argv = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-c",
            str(REPO / "pyproject.toml"), f"--rootdir={tmp_path / 'probe'}",
            f"--reports-dir={tmp_path / 'reports'}", "--run-id=unit-plan", "-q",
            *[a for p in HARNESS_PLUGINS for a in ("-p", p)], *args,
            str(tmp_path / "probe" / "test_probe.py")]
    env = dict(os.environ, DISTROGATE_HOME=str(home), DG_OUT=str(out),
               DG_RESOLVED=str(tmp_path / "resolved.txt"),
               PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False,
                          env=env, cwd=tmp_path)
    return done, out


def _outputs(out: Path, name: str) -> list[dict[str, object]]:
    return [json.loads(p.read_text()) for p in sorted(out.glob(f"{name}-*.json"))]


@pytest.mark.parametrize("workers", [[], ["-n", "2"]], ids=["one-process", "xdist"])
def test_the_fixtures_load_the_images_from_the_plan(tmp_path: Path, workers: list[str]) -> None:
    plan = a_plan(tmp_path)
    write_plan(tmp_path / "plan.json", plan)
    done, out = run_probe(tmp_path, f"--dg-plan={tmp_path / 'plan.json'}",
                          "--candidate=never-resolved.qcow2", *workers)
    assert "1 failed, 2 passed" in done.stdout, done.stdout[-3000:]
    assert "no 'nosuch' image in this run's plan" in done.stdout
    assert plan.run is not None
    assert _outputs(out, "roles") == [{role: plan.run.images[role].digest
                                       for role in ("candidate", "baseline", "mirror")}
                                      | {"same": True}]
    assert not (tmp_path / "resolved.txt").exists()  # nothing resolved, in any process
    results = json.loads((tmp_path / "reports" / "unit-plan" / "results.json").read_text())
    for role in ("candidate", "baseline"):
        assert results["run"][role] == plan.run.images[role].summary
    assert results["run"]["candidate"]["digest"] != "unknown"
    outcomes = {t["nodeid"].rsplit("::", 1)[-1]: t["outcome"] for t in results["records"]}
    assert outcomes == {"test_roles": "passed", "test_no_record": "passed",
                        "test_unknown_role": "error"}


def test_without_a_plan_each_image_is_resolved_once_for_all_workers(tmp_path: Path) -> None:
    cand = fake_image(tmp_path / "c", "cand").disk
    base = fake_image(tmp_path / "b", "base").disk
    mirror = fake_image(tmp_path / "m", "mirror").disk
    done, out = run_probe(tmp_path, f"--candidate={cand}", f"--baseline={base}",
                          f"--image=mirror={mirror}", "-n", "2")
    assert "1 failed, 2 passed" in done.stdout, done.stdout[-3000:]
    resolved = (tmp_path / "resolved.txt").read_text().splitlines()
    assert sorted(resolved) == sorted([str(cand), str(base), str(mirror)])
    images = json.loads((tmp_path / "reports" / "unit-plan" / "images.json").read_text())
    assert sorted(images) == ["baseline", "candidate", "mirror"]
    assert _outputs(out, "roles")[0]["mirror"] == images["mirror"]["digest"]
    results = json.loads((tmp_path / "reports" / "unit-plan" / "results.json").read_text())
    assert results["run"]["candidate"]["digest"] == images["candidate"]["digest"]
    assert results["run"]["baseline"]["name"] == "base"
