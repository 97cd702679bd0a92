"""Lab-heavy modules never run side by side under pytest-xdist (fixtures/heavy.py): a real
``pytest -n 2`` run of three modules, two of them marked, timed by what they record."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

MODULE = """
import time
from pathlib import Path
import pytest
{mark}

def test_busy():
    started = time.time()
    time.sleep(2)
    with Path({log!r}).open("a") as log:
        log.write(f"{name} {{started}} {{time.time()}}\\n")
"""


def test_two_marked_modules_run_one_after_the_other_beside_an_unmarked_one(
        tmp_path: Path) -> None:
    log = tmp_path / "spans.txt"
    for name, marked in (("a", True), ("b", True), ("c", False)):
        (tmp_path / f"test_{name}.py").write_text(MODULE.format(
            mark="pytestmark = pytest.mark.lab_heavy" if marked else "", log=str(log),
            name=name))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           "-p", "fixtures.heavy", "-n", "2", "--dist", "loadscope",
                           "--basetemp", str(tmp_path / "base"), str(tmp_path)],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    spans = {line.split()[0]: (float(line.split()[1]), float(line.split()[2]))
             for line in log.read_text().splitlines()}
    (a0, a1), (b0, b1) = spans["a"], spans["b"]
    assert a1 <= b0 or b1 <= a0, spans  # the marked ones never overlap
    assert "c" in spans
