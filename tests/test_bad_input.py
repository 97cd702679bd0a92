"""Bad input gets a one-line error naming the input, within a bounded time, and leaves nothing
behind: missing file, corrupt qcow2, no guest agent, kernel panic, malformed spec."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
TEST_IMAGES = REPO / "tests" / "images"


def distrogate(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    """Run the CLI as a user would."""
    return subprocess.run([sys.executable, "-m", "distrogate.cli", *args], capture_output=True,
                          text=True, timeout=timeout, check=False, cwd=REPO)


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("distrogate: error")]
    assert len(lines) == 1, f"expected one error line, got stderr: {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr
    return lines[0]


def assert_lab_clean() -> None:
    status = json.loads(distrogate("lab", "status", "--json").stdout)
    for lab in status["labs"]:
        if lab["directory"].rsplit("/", 1)[-1].startswith("run-") and lab["owner_pid"] in (
                None, os.getpid()):
            continue
        if "/run-" in lab["directory"]:
            assert not lab["domains"] and not lab["networks"] and not lab["overlays"], lab


def test_missing_image_file() -> None:
    result = distrogate("run", "/nonexistent/image.qcow2", "--", "true", timeout=60)
    assert result.returncode == 3
    assert "/nonexistent/image.qcow2: no such file" in error_line(result)


def test_corrupt_qcow2(tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.qcow2"
    bad.write_bytes(os.urandom(4 << 20))
    before = bad.read_bytes()
    result = distrogate("run", str(bad), "--", "true", timeout=120)
    assert result.returncode == 3
    line = error_line(result)
    assert str(bad) in line and "not a bootable disk image" in line
    assert bad.read_bytes() == before


def test_truncated_qcow2_header(tmp_path: Path) -> None:
    bad = tmp_path / "broken.qcow2"
    bad.write_bytes(b"QFI\xfb" + os.urandom(1000))
    result = distrogate("image", "import", str(bad), timeout=120)
    assert result.returncode == 3
    assert str(bad) in error_line(result)


@pytest.mark.parametrize(("content", "key"), [
    ("release: bookworm\npackages: notalist\n", "packages"),
    ("release: hamm\n", "release"),
    ("release: bookworm\nfiles:\n  - path: relative\n    content: x\n", "files[0].path"),
    ("release: bookworm\npackagez: [a]\n", "packagez"),
    ("release: [unclosed\n", "line"),
])
def test_malformed_spec_names_file_and_key(tmp_path: Path, content: str, key: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(content)
    result = distrogate("image", "build", str(spec), timeout=60)
    assert result.returncode == 3
    line = error_line(result)
    assert str(spec) in line and key in line


@pytest.mark.vm
@pytest.mark.slow
def test_image_without_guest_agent() -> None:
    started = time.monotonic()
    result = distrogate("run", str(TEST_IMAGES / "no-agent.yaml"), "--", "true", timeout=900)
    assert result.returncode == 4
    line = error_line(result)
    assert "qemu-guest-agent" in line and "console log:" in line
    log_path = Path(line.rsplit("console log: ", 1)[1].rstrip(")"))
    assert log_path.exists() and b"login:" in log_path.read_bytes()
    assert time.monotonic() - started < 600
    assert_lab_clean()


@pytest.mark.vm
@pytest.mark.slow
def test_kernel_panic_is_reported_with_console_log() -> None:
    result = distrogate("run", str(TEST_IMAGES / "panic.yaml"), "--", "true", timeout=900)
    assert result.returncode == 4
    line = error_line(result)
    assert "kernel panic" in line.lower() and "console log:" in line
    log_path = Path(line.rsplit("console log: ", 1)[1].rstrip(")"))
    assert b"Kernel panic" in log_path.read_bytes()
    assert_lab_clean()


@pytest.mark.vm
def test_run_exits_with_the_guest_commands_exit_code() -> None:
    result = distrogate("run", "promoted", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert result.returncode == 7, result.stderr[-2000:]
    assert result.stdout == "out\n"
    assert "err" in result.stderr
    assert_lab_clean()
