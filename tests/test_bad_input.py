"""Bad input gets a one-line error naming the input, within a bounded time, and leaves nothing
behind: missing file, corrupt qcow2, no guest agent, kernel panic, malformed spec."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest

from tests.conftest import Cli

TEST_IMAGES = Path(__file__).resolve().parent / "images"


def error_line(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.startswith("distrogate: error")]
    assert len(lines) == 1, f"expected one error line, got stderr: {result.stderr[-2000:]}"
    assert "Traceback" not in result.stderr
    return lines[0]


def test_missing_image_file(cli: Cli) -> None:
    result = cli("run", "/nonexistent/image.qcow2", "--", "true", timeout=60)
    assert result.returncode == 3
    assert "/nonexistent/image.qcow2: no such file" in error_line(result)


def test_corrupt_qcow2(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "corrupt.qcow2"
    bad.write_bytes(os.urandom(4 << 20))
    before = bad.read_bytes()
    result = cli("run", str(bad), "--", "true", timeout=120)
    assert result.returncode == 3
    line = error_line(result)
    assert str(bad) in line and "not a bootable disk image" in line
    assert bad.read_bytes() == before


def test_truncated_qcow2_header(cli: Cli, tmp_path: Path) -> None:
    bad = tmp_path / "broken.qcow2"
    bad.write_bytes(b"QFI\xfb" + os.urandom(1000))
    result = cli("image", "import", str(bad), timeout=120)
    assert result.returncode == 3
    assert str(bad) in error_line(result)


@pytest.mark.parametrize(("content", "key"), [
    ("release: bookworm\npackages: notalist\n", "packages"),
    ("release: hamm\n", "release"),
    ("release: bookworm\nfiles:\n  - path: relative\n    content: x\n", "files[0].path"),
    ("release: bookworm\npackagez: [a]\n", "packagez"),
    ("release: [unclosed\n", "line"),
])
def test_malformed_spec_names_file_and_key(cli: Cli, tmp_path: Path, content: str, key: str) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text(content)
    result = cli("image", "build", str(spec), timeout=60)
    assert result.returncode == 3
    line = error_line(result)
    assert str(spec) in line and key in line


@pytest.mark.vm
@pytest.mark.slow
def test_image_without_guest_agent(cli: Cli) -> None:
    started = time.monotonic()
    result = cli("run", str(TEST_IMAGES / "no-agent.yaml"), "--", "true", timeout=900)
    assert result.returncode == 4
    line = error_line(result)
    assert "qemu-guest-agent" in line and "console log:" in line
    log_path = Path(line.rsplit("console log: ", 1)[1].rstrip(")"))
    assert log_path.exists() and b"login:" in log_path.read_bytes()
    assert time.monotonic() - started < 600
    cli.assert_nothing_left()


@pytest.mark.vm
@pytest.mark.slow
def test_kernel_panic_is_reported_with_console_log(cli: Cli) -> None:
    result = cli("run", str(TEST_IMAGES / "panic.yaml"), "--", "true", timeout=900)
    assert result.returncode == 4
    line = error_line(result)
    assert "kernel panic" in line.lower() and "console log:" in line
    log_path = Path(line.rsplit("console log: ", 1)[1].rstrip(")"))
    assert b"Kernel panic" in log_path.read_bytes()
    cli.assert_nothing_left()


@pytest.mark.vm
def test_run_exits_with_the_guest_commands_exit_code(cli: Cli) -> None:
    result = cli("run", "promoted", "--", "sh", "-c", "echo out; echo err >&2; exit 7")
    assert result.returncode == 7, result.stderr[-2000:]
    assert result.stdout == "out\n"
    assert "err" in result.stderr
    cli.assert_nothing_left()
