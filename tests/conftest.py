"""Shared helpers for the harness's own tests: the CLI run as a user would, in a private home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from distrogate import paths

REPO = Path(__file__).resolve().parent.parent


def process_table(marker: Path, *words: str) -> list[tuple[int, str]]:
    """(pid, command line) of processes that mention ``marker`` (a lab or home directory)
    and one of ``words``."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(marker) in text and any(word in text for word in words):
            found.append((int(cmdline.parent.name), text))
    return found


def qemu_process_table(marker: Path) -> list[tuple[int, str]]:
    """(pid, command line) of QEMU processes that mention ``marker`` (a lab or home directory)."""
    return process_table(marker, "qemu-system")


def qemu_processes(marker: Path) -> list[str]:
    """Command lines of QEMU processes that mention ``marker`` (a lab or home directory)."""
    return [text[:160] for _pid, text in qemu_process_table(marker)]


@dataclass(frozen=True)
class Cli:
    """The ``distrogate`` command in a DISTROGATE_HOME of its own that shares the image cache.

    Labs, consoles and runs of the command under test are private to the test, so what it
    leaves behind can be checked without being confused by labs of other xdist workers.
    """

    home: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment the command runs in."""
        return dict(os.environ, DISTROGATE_HOME=str(self.home))

    def argv(self, *args: str) -> list[str]:
        """The command line for ``distrogate ARGS``."""
        return [sys.executable, "-m", "distrogate.cli", *args]

    def __call__(self, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
        """Run ``distrogate ARGS`` to completion and capture its output."""
        return subprocess.run(self.argv(*args), capture_output=True, text=True, timeout=timeout,
                               check=False, cwd=REPO, env=self.env)

    def status(self) -> dict[str, object]:
        """``distrogate lab status --json``."""
        result = self("lab", "status", "--json", timeout=60)
        assert result.returncode == 0, result.stderr
        return json.loads(result.stdout)  # type: ignore[no-any-return]

    def assert_nothing_left(self) -> None:
        """No lab, network namespace or QEMU process of this home survives."""
        status = self.status()
        assert status["labs"] == [], status
        assert qemu_processes(self.home) == []


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    """A :class:`Cli` with a private home under ``tmp_path``."""
    home = tmp_path / "home"
    home.mkdir()
    shared = (("images", paths.image_store()), ("nspawn", paths.nspawn_store()),
              ("templates", paths.home() / "templates"),
              ("libvirt-cache", paths.home() / "libvirt-cache"),
              ("dnf-repo", paths.dnf_repo_store()))
    for name, store in shared:
        store.mkdir(parents=True, exist_ok=True)  # a link to a missing store would dangle
        (home / name).symlink_to(store)
    accel_cache = paths.home() / "accel.json"
    if accel_cache.exists():  # the KVM probe's answer holds for the whole machine
        (home / "accel.json").symlink_to(accel_cache)
    return Cli(home)
