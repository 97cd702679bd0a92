"""A lab-heavy module runs alone under pytest-xdist (fixtures/heavy.py): a real ``pytest -n 2``
run of four modules, two of them heavy, one with a ``vm`` test and one without, timed by what
they record. No heavy module overlaps another or a VM module; under ``loadscope`` (make test's
mode) the heavy ones share one worker, and the module without VMs runs beside them."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures.heavy import SCOPE, marks_module_heavy, marks_module_vm, run_order

REPO = Path(__file__).resolve().parents[2]

MODULE = """
import os
import time
from pathlib import Path
import pytest
{mark}

def test_busy():
    started = time.time()
    time.sleep(2)
    with Path({log!r}).open("a") as log:
        log.write(f"{name} {{started}} {{time.time()}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")
"""


@pytest.mark.parametrize("dist", ["loadscope", "load"])
def test_heavy_modules_overlap_no_other_vm_module(tmp_path: Path, dist: str) -> None:
    log = tmp_path / "spans.txt"
    marks = {"a": "pytestmark = pytest.mark.lab_heavy", "b": "pytestmark = pytest.mark.lab_heavy",
             "c": "pytestmark = pytest.mark.vm", "d": ""}
    for name, mark in marks.items():
        (tmp_path / f"test_{name}.py").write_text(MODULE.format(mark=mark, log=str(log),
                                                                name=name))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-W", "ignore::pytest.PytestUnknownMarkWarning",
                           "-p", "fixtures.heavy", "-n", "2", "--dist", dist,
                           "--basetemp", str(tmp_path / "base"), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    spans = {name: (float(start), float(end), worker)
             for name, start, end, worker in map(str.split, log.read_text().splitlines())}
    assert set(spans) == set(marks), spans

    def apart(x: str, y: str) -> bool:
        return spans[x][1] <= spans[y][0] or spans[y][1] <= spans[x][0]

    assert apart("a", "b") and apart("a", "c") and apart("b", "c"), spans
    if dist == "loadscope":  # one work unit: one worker runs both heavy modules
        assert spans["a"][2] == spans["b"][2], spans
        # handed out first, with the module that boots no VM next: that one runs beside them
        assert not (apart("d", "a") and apart("d", "b")), spans


@pytest.mark.parametrize(("source", "heavy", "vm"), [
    ("pytestmark = pytest.mark.lab_heavy", True, False),
    ("pytestmark = [pytest.mark.vm, pytest.mark.lab_heavy]", True, True),
    ("pytestmark: list[pytest.MarkDecorator] = [pytest.mark.lab_heavy]", True, False),
    ("pytestmark = pytest.mark.vm", False, True),
    ("other = pytest.mark.lab_heavy", False, False),
    ("def f():\n    pytestmark = pytest.mark.lab_heavy", False, False),
    ("@pytest.mark.vm\ndef test_x():\n    pass", False, True),
    ("pytestmark = [pytest.mark.slow, pytest.mark.vm]", False, True),
    ("vm = 1\ndef test_x():\n    assert vm", False, False),
    ("pytestmark = (", False, True),  # unparsable: left to the lock, treated as booting VMs
])
def test_the_controller_reads_the_markings_from_the_source(tmp_path: Path, source: str,
                                                           heavy: bool, vm: bool) -> None:
    module = tmp_path / "test_m.py"
    module.write_text(f"import pytest\n{source}\n")
    assert marks_module_heavy(module) is heavy
    assert marks_module_vm(module) is vm


def test_the_heavy_unit_goes_first_then_the_units_without_vms() -> None:
    scopes = ["t/test_a.py", "t/test_unit.py", SCOPE, "t/test_b.py", "t/test_unit2.py"]
    order = run_order(scopes, lambda scope: "unit" not in scope)
    assert order == [SCOPE, "t/test_unit.py", "t/test_unit2.py", "t/test_a.py", "t/test_b.py"]
