"""pytest's own outcome agrees with the verdict for an inconclusive comparison: an error
where the test blocks (the verdict would be inconclusive), an xfail "advisory (policy)"
where the policy makes it advisory (the verdict ignores it), and an xfail naming the noise
rule where the policy's rule blocks on regressions but lets noise advise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOISY = '''
from distrogate.differential import Direction, Numeric, Sample


def test_timing(record):
    record.observe("t", "baseline", Sample.of([1, 5, 2, 9, 3], "s"))
    record.observe("t", "candidate", Sample.of([2, 8, 1, 4, 9], "s"))
    record.compare("t", Numeric(direction=Direction.LOWER_IS_BETTER, threshold=0.1))
'''


@pytest.mark.parametrize(("mode", "returncode", "shown"), [
    ("blocking", 1, "FAILED test_noisy.py::test_timing - inconclusive"),
    ("advisory", 0, "XFAIL test_noisy.py::test_timing - advisory (policy): inconclusive"),
    ("blocking, noise: advisory", 0,
     "XFAIL test_noisy.py::test_timing - too noisy to decide; advisory by the policy's rule"),
])
def test_an_inconclusive_comparison_fails_the_run_only_where_it_blocks(
        tmp_path: Path, mode: str, returncode: int, shown: str) -> None:
    (tmp_path / "conftest.py").write_text("from fixtures import HARNESS_PLUGINS\n"
                                          "pytest_plugins = HARNESS_PLUGINS\n")
    (tmp_path / "test_noisy.py").write_text(NOISY)
    policy = tmp_path / "policy.yaml"
    policy.write_text(f'rules:\n  - {{pattern: "test_noisy.py::*", mode: {mode}}}\n')
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfEx", "--policy",
         str(policy), "--reports-dir", str(tmp_path / "reports"), "test_noisy.py"],
        cwd=tmp_path, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin",
                           "DISTROGATE_HOME": str(tmp_path / "home")},
        capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == returncode, done.stdout[-3000:] + done.stderr[-2000:]
    assert shown in done.stdout, done.stdout[-3000:]
