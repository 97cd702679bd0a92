"""Lab-heavy modules never run side by side under pytest-xdist (fixtures/heavy.py): a real
``pytest -n 2`` run of three modules, two of them marked, timed by what they record. Under
``loadscope`` (make test's mode) the marked ones share one worker and the unmarked one runs
beside them on the other; under any other mode the lock keeps them apart."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.heavy import marks_module_heavy

REPO = Path(__file__).resolve().parents[2]

MODULE = """
import os
import time
from pathlib import Path
import pytest

from fixtures.heavy import marks_module_heavy
{mark}

def test_busy():
    started = time.time()
    time.sleep(2)
    with Path({log!r}).open("a") as log:
        log.write(f"{name} {{started}} {{time.time()}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")
"""


@pytest.mark.parametrize("dist", ["loadscope", "load"])
def test_two_marked_modules_run_one_after_the_other_beside_an_unmarked_one(
        tmp_path: Path, dist: str) -> None:
    log = tmp_path / "spans.txt"
    for name, marked in (("a", True), ("b", True), ("c", False)):
        (tmp_path / f"test_{name}.py").write_text(MODULE.format(
            mark="pytestmark = pytest.mark.lab_heavy" if marked else "", log=str(log),
            name=name))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "fixtures.heavy", "-n", "2", "--dist", dist,
                           "--basetemp", str(tmp_path / "base"), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    spans = {name: (float(start), float(end), worker)
             for name, start, end, worker in map(str.split, log.read_text().splitlines())}
    (a0, a1, a_worker), (b0, b1, b_worker) = spans["a"], spans["b"]
    assert a1 <= b0 or b1 <= a0, spans  # the marked ones never overlap
    c0, c1, c_worker = spans["c"]
    if dist == "loadscope":  # one work unit: one worker, and the other one is not idle
        assert a_worker == b_worker != c_worker, spans
        assert c0 < max(a1, b1) and c1 > min(a0, b0), spans


@pytest.mark.parametrize(("source", "heavy"), [
    ("pytestmark = pytest.mark.lab_heavy", True),
    ("pytestmark = [pytest.mark.vm, pytest.mark.lab_heavy]", True),
    ("pytestmark: list[pytest.MarkDecorator] = [pytest.mark.lab_heavy]", True),
    ("pytestmark = pytest.mark.vm", False),
    ("other = pytest.mark.lab_heavy", False),
    ("def f():\n    pytestmark = pytest.mark.lab_heavy", False),
    ("pytestmark = (", False),  # unparsable: left to the lock
])
def test_the_controller_reads_the_marking_from_the_source(tmp_path: Path, source: str,
                                                          heavy: bool) -> None:
    module = tmp_path / "test_m.py"
    module.write_text(f"import pytest\n{source}\n")
    assert marks_module_heavy(module) is heavy
